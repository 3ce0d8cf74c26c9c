"""Clocks. Domain code never reads the time: use cases receive one of these."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Protocol

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(CHINA_TZ)


class ManualClock:
    """A clock tests and demos move by hand. Thread-safe: the local runner shares one.
    `on_move`, if given, is called with the new time after every `advance` and `set`."""

    def __init__(
        self,
        start: datetime | None = None,
        *,
        follow_system: bool = False,
        on_move: Callable[[datetime], None] | None = None,
    ):
        self._lock = threading.Lock()
        self._follow_system = follow_system
        self._on_move = on_move
        base = start or datetime.now(CHINA_TZ)
        self._fixed = base.astimezone(CHINA_TZ) if base.tzinfo else base.replace(tzinfo=CHINA_TZ)
        self._offset = timedelta(0)

    def now(self) -> datetime:
        with self._lock:
            if self._follow_system:
                return datetime.now(CHINA_TZ) + self._offset
            return self._fixed + self._offset

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._offset += delta
        return self._moved()

    def set(self, moment: datetime) -> None:
        with self._lock:
            moment = moment if moment.tzinfo else moment.replace(tzinfo=CHINA_TZ)
            base = datetime.now(CHINA_TZ) if self._follow_system else self._fixed
            self._offset = moment - base
        self._moved()

    def _moved(self) -> datetime:
        now = self.now()
        if self._on_move is not None:
            self._on_move(now)
        return now
