"""One synthesis per session for every infrastructure test."""

from __future__ import annotations

import fcntl

import pytest

from infra.packaging import build_dir
from tests.infrastructure.synthesis import Synth, synthesize


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Under pytest-xdist each worker that runs an infrastructure test synthesizes once; the
    syntheses take turns, so the second finds the package cache the first filled."""
    lock_path = build_dir()
    lock_path.mkdir(parents=True, exist_ok=True)
    with open(lock_path / ".synth.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return synthesize(tmp_path_factory.mktemp("cdk.out"))
