"""A per-process cache of reads that are the same for every request (departments, calendar
years, routing rules, escalation ladders, the service guide), kept for a short max age.

The age is measured on an injected clock (`now`); a write through the same adapter
invalidates its entries at once, so only writes from other processes are seen late, by at
most the max age.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_MAX_AGE_SECONDS = 30.0


def _system_now() -> datetime:
    from chalicelib.adapters.clock import SystemClock

    return SystemClock().now()


class ReadCache:
    def __init__(
        self,
        now: Callable[[], datetime] | None = None,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
    ):
        self._now = now or _system_now
        self._max_age = max_age_seconds
        self._entries: dict[Hashable, tuple[datetime, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        now = self._now()
        with self._lock:
            found = self._entries.get(key)
        if found is not None and 0 <= (now - found[0]).total_seconds() < self._max_age:
            return found[1]
        value = load()
        with self._lock:
            self._entries[key] = (now, value)
        return value

    def invalidate(self, key: Hashable | None = None) -> None:
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)
