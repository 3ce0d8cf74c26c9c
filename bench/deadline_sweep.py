"""How much one due sweep reads for deadline clocks, with N open clocks of which k are due.

On in-process moto (mock_aws), for N = 1,000 and 10,000: write N open clocks and their due items
(batch writes), run a first due sweep (nothing due; it sets the cursor), move the injected clock
so that k clocks pass their warning threshold, and count, for one sweep, the AWS calls and the
DynamoDB items they read (botocore's `_make_api_call` wrapped). A third of the clocks that are
not due have a later attention time on the same day (another hour bucket or later in the same
one, where the range condition keeps them unread). The sweep must read about k items (each due
clock: its due item, the clock, its steps) plus one query per hour bucket, whatever N is.

Prints a table, then, as the last line, one JSON object with the figures.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import CallCounter, use_in_process_aws

use_in_process_aws()

SIZES = (1_000, 10_000)
DUE = 50
START = datetime(2026, 11, 26, 10, 0)  # Thursday
SWEEP_AT = datetime(2026, 11, 27, 19, 30)  # Friday: 1-day clocks warned at 19:12 are due


def build_clocks(total: int, due: int, calendar):
    from chalicelib.domain import clocks as domain
    from chalicelib.domain.calendar import CHINA_TZ
    from chalicelib.domain.clocks import LimitUnit

    start = START.replace(tzinfo=CHINA_TZ)
    late_warning = domain.Ladder(
        (replace(domain.WARNING, value=0.9), domain.URGE, domain.SUPERVISE, domain.REPORT)
    )
    departments = ["dept-scjgj", "dept-rsj", "dept-ybj"]
    for i in range(total):
        if i < due:
            limit, ladder = 1, None  # warned at 19:12 on Friday: due at the sweep
        elif i % 3 == 0:
            limit, ladder = 1, late_warning  # same bucket, warned at 21:36: not yet due
        else:
            limit, ladder = 2 + i % 14, None  # later buckets
        clock = domain.new_clock(
            clock_id=f"bench-{i:06d}",
            subject_type="ticket",
            subject_id=f"T-{i:06d}",
            kind="reply",
            limit=limit,
            unit=LimitUnit.WORKING_DAYS,
            started_at=start,
            policy=domain.policy_for("reply"),
            ladder=ladder,
            department_id=departments[i % len(departments)],
        )
        yield domain.refresh(clock, calendar, start)


def run(total: int, counter: CallCounter) -> dict:
    from moto import mock_aws

    with mock_aws():
        from chalicelib.adapters.clock import CHINA_TZ, ManualClock
        from chalicelib.bootstrap import Container, set_container
        from chalicelib.service_layer.deadlines import DeadlineDeps
        from chalicelib.service_layer.due import sweep
        from chalicelib.settings import get_settings
        from local.provision import provision
        from local.seed import seed

        settings = get_settings()
        provision(settings)
        clock = ManualClock(START.replace(tzinfo=CHINA_TZ))
        container = Container(settings, clock=clock)
        set_container(container)
        seed(container.directory)
        deps = DeadlineDeps.from_container(container)
        deps.metric = lambda *args: None

        began = time.perf_counter()
        deps.clocks.put_many(build_clocks(total, DUE, deps.calendar()), clock.now())
        write_seconds = time.perf_counter() - began

        _ = container.escalation_store  # built before counting, like a warm function's
        sweep(container.due_store, clock, container)  # sets the cursor; nothing is due yet
        clock.set(SWEEP_AT.replace(tzinfo=CHINA_TZ))

        counter.reset()
        counter.active = True
        began = time.perf_counter()
        report = sweep(container.due_store, clock, container)
        sweep_seconds = time.perf_counter() - began
        counter.active = False
        set_container(None)

    index_reads = sum(n for key, n in counter.items.items() if key.endswith("/due_index"))
    return {
        "open": total,
        "due": DUE,
        "items_read": sum(counter.items.values()),
        "due_index_items_read": index_reads,
        "aws_calls": sum(counter.calls.values()),
        "queries": counter.calls["Query"],
        "buckets": report.buckets,
        # Each ladder step taken writes one notification.
        "steps_taken": counter.written.get("notifications", 0),
        "failures": len(report.failures),
        "calls_by_operation": dict(sorted(counter.calls.items())),
        "items_by_table": dict(sorted(counter.items.items())),
        "write_seconds": round(write_seconds, 2),
        "sweep_seconds": round(sweep_seconds, 3),
    }


def main() -> None:
    counter = CallCounter()
    counter.install()
    runs = [run(total, counter) for total in SIZES]

    print("deadline sweep: one run after the clock moved past k warning thresholds")
    header = (
        f"{'open':>7} {'due':>5} {'items read':>11} {'due-index items':>16} "
        f"{'AWS calls':>10} {'queries':>8} {'steps':>6} {'sweep s':>8} {'load s':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        print(
            f"{r['open']:>7} {r['due']:>5} {r['items_read']:>11} {r['due_index_items_read']:>16} "
            f"{r['aws_calls']:>10} {r['queries']:>8} {r['steps_taken']:>6} "
            f"{r['sweep_seconds']:>8} {r['write_seconds']:>7}"
        )
    for r in runs:
        print(f"  N={r['open']}: calls {r['calls_by_operation']}")
        print(f"  N={r['open']}: items {r['items_by_table']}")
    grows = runs[-1]["items_read"] > runs[0]["items_read"]
    print("items read grow with N: " + ("YES (regression)" if grows else "no"))
    figures = {
        "runs": [
            {
                k: r[k]
                for k in (
                    "open",
                    "due",
                    "items_read",
                    "due_index_items_read",
                    "aws_calls",
                    "queries",
                    "steps_taken",
                    "failures",
                )
            }
            for r in runs
        ]
    }
    print(json.dumps(figures, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main()
