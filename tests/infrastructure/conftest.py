"""One synthesis per test run for every infrastructure test, shared by the xdist workers."""

from __future__ import annotations

import fcntl
import shutil

import pytest

from infra.packaging import build_dir
from tests.infrastructure.synthesis import Synth, load, synthesize


def shared_synth(testrun_uid: str) -> Synth:
    """The first worker that needs it synthesizes into a folder named after the run; a worker
    that comes later waits on the lock and reads what the first wrote. A folder another run
    left behind is removed."""
    builds = build_dir()
    builds.mkdir(parents=True, exist_ok=True)
    outdir = builds / f"test-assembly-{testrun_uid}"
    with open(builds / ".synth.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (outdir / "done").exists():
            return load(outdir)
        for stale in builds.glob("test-assembly-*"):
            shutil.rmtree(stale, ignore_errors=True)
        result = synthesize(outdir)
        (outdir / "done").touch()
        return result


@pytest.fixture(scope="session")
def synth(testrun_uid: str) -> Synth:
    return shared_synth(testrun_uid)
