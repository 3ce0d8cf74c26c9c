"""Optimistic concurrency: read, decide, write conditionally, and start over when someone else
wrote in between."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from chalicelib.domain.errors import Conflict

T = TypeVar("T")

ATTEMPTS = 3


def retry_on_conflict(attempt: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run `attempt` (which reads afresh each time) again while its write conflicts; the last
    conflict propagates."""
    for n in range(attempts):
        try:
            return attempt()
        except Conflict:
            if n == attempts - 1:
                raise
    raise AssertionError("unreachable")
