"""One synthesis per session for every infrastructure test."""

from __future__ import annotations

import pytest

from tests.infrastructure.synthesis import Synth, synthesize


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))
