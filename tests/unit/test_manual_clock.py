"""The manual clock tests and the local runner's demo move by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.adapters.clock import CHINA_TZ, ManualClock


def test_every_move_is_announced_with_the_new_time():
    moves: list[datetime] = []
    start = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)
    clock = ManualClock(start, on_move=moves.append)

    assert clock.advance(timedelta(minutes=5)) == start + timedelta(minutes=5)
    clock.set(start - timedelta(days=1))

    assert moves == [start + timedelta(minutes=5), start - timedelta(days=1)]
    assert clock.now() == start - timedelta(days=1)


def test_a_clock_following_the_system_announces_its_moves_too():
    moves: list[datetime] = []
    clock = ManualClock(follow_system=True, on_move=moves.append)
    before = clock.now()

    clock.advance(timedelta(days=1))

    assert len(moves) == 1 and moves[0] - before >= timedelta(days=1)
