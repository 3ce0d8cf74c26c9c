"""What building the monthly 好差评 report costs, as a ratio to reading the month's reviews once.

On in-process moto (mock_aws): write N reviews (default 100,000) across 40 departments and 19
centres into one month (batch writes, not timed), then, in the same run and best of `--runs`:

- read once: the month's items through the month index (MONTH_SHARDS Queries, paginated), as
  the store reads them, deserialised by PynamoDB but not mapped to domain objects;
- build: `compute_report`, the use case the monthly job and `GET /reports/reviews` run: the same
  Queries, mapping to `Review`, per-department and per-centre figures, ranking, names from the
  directory and the booking catalogue, and last month's bottom two (here an empty month).

Also times the aggregation alone (`build_report` over the reviews already in memory), so the
ratio's cause is visible: reading dominates. Prints a table, then, as the last line, one JSON
object with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import CallCounter, use_in_process_aws

use_in_process_aws()

MONTH = "2026-11"
DEPARTMENTS = 40
CENTRES = 19


def make_reviews(total: int, seed: int = 7) -> list:
    from chalicelib.domain.calendar import CHINA_TZ
    from chalicelib.domain.reviews import (
        DIMENSIONS,
        Channel,
        Handling,
        HandlingType,
        Rater,
        Rating,
        ReviewKind,
        new_review,
    )

    rng = random.Random(seed)
    start = datetime(2026, 11, 1, 9, 0, tzinfo=CHINA_TZ)
    rater = Rater("u-bench", "citizen", None, True)
    made = []
    for n in range(total):
        department = f"dept-{n % DEPARTMENTS:02d}"
        offline = n % 3 != 0
        channel = Channel.OFFLINE if offline else Channel.ONLINE
        # Good rates spread from about 80% to 99% across departments.
        bad_share = 0.01 + 0.19 * (n % DEPARTMENTS) / DEPARTMENTS
        level = rng.choice((1, 2)) if rng.random() < bad_share else rng.choice((3, 4, 5, 5))
        handling = Handling(
            HandlingType.BOOKING if offline else HandlingType.APPLICATION,
            f"h-{n:07d}",
            "u-bench",
            None,
            department,
            channel,
            True,
            centre_id=f"centre-{n % CENTRES:02d}" if offline else None,
        )
        rating = Rating(
            level, dict.fromkeys(DIMENSIONS[channel], level), ("效率",), "等候太久" * (level <= 2)
        )
        at = start + timedelta(seconds=n * 20)
        review = new_review(handling, rater, rating, ReviewKind.INITIAL, at)
        if level <= 2:
            from dataclasses import replace

            review = replace(review, rectify_on_time=rng.random() < 0.9, called_back=True)
        made.append(review)
    return made


def write(reviews: list) -> float:
    from chalicelib.adapters.dynamodb.reviews import ReviewRecord, _review_record

    began = time.perf_counter()
    with ReviewRecord.batch_write() as batch:
        for review in reviews:
            batch.save(_review_record(review))
    return time.perf_counter() - began


def best(runs: int, work) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - began)
    return min(times), result


class StoredItemsReader:
    """The store's reader over the items as DynamoDB holds them (attribute-value JSON), by
    month bucket, without an AWS endpoint: what remains when moto's own cost is taken away."""

    def __init__(self, reviews: list) -> None:
        from chalicelib.adapters.dynamodb.reviews import _review_record

        self.buckets: dict[str, list[dict]] = {}
        for review in reviews:
            record = _review_record(review)
            self.buckets.setdefault(record.month_bucket, []).append(record.serialize())

    def _items(self, month: str):
        from chalicelib.adapters.dynamodb.reviews import ReviewRecord
        from chalicelib.domain.reviews import MONTH_SHARDS

        for shard in range(MONTH_SHARDS):
            for raw in self.buckets.get(f"{month}#{shard}", ()):
                yield ReviewRecord.from_raw_data(raw)

    def raw_month(self, month: str):
        for item in self._items(month):
            yield item.data

    def reviews_in_month(self, month: str):
        from chalicelib.adapters.dynamodb.reviews import review_from_dict

        for item in self._items(month):
            yield review_from_dict(item.data)

    def get_report(self, month: str):
        return None


class Names:
    def get_department(self, key: str):
        return None

    def get_center(self, key: str):
        return None


def measure(deps, runs: int, total: int, counter=None) -> dict:
    from chalicelib.domain.reviews import build_report
    from chalicelib.service_layer.reviews import compute_report

    if counter:
        counter.reset()
        counter.active = True
    read_s, raw = best(runs, lambda: list(deps.store.raw_month(MONTH)))
    read_calls = sum(counter.calls.values()) // runs if counter else 0
    if counter:
        counter.reset()
    build_s, report = best(runs, lambda: compute_report(deps, MONTH))
    build_calls = sum(counter.calls.values()) // runs if counter else 0
    if counter:
        counter.active = False
    loaded = list(deps.store.reviews_in_month(MONTH))
    aggregate_s, _ = best(runs, lambda: build_report(MONTH, loaded, {}, {}, frozenset()))
    assert len(raw) == total, (len(raw), total)
    assert sum(1 for d in report.departments if d.rank) == DEPARTMENTS
    assert sum(d.reviews for d in report.departments) == total
    return {
        "reviews": total,
        "read_once_s": round(read_s, 3),
        "build_report_s": round(build_s, 3),
        "aggregate_in_memory_s": round(aggregate_s, 4),
        "build_to_read_ratio": round(build_s / read_s, 3),
        "read_calls": read_calls,
        "build_calls": build_calls,
    }


def run_reader(total: int, runs: int) -> dict:
    from types import SimpleNamespace

    names = Names()
    deps = SimpleNamespace(
        store=StoredItemsReader(make_reviews(total)), directory=names, bookings=names
    )
    return measure(deps, runs, total)


def run_moto(total: int, runs: int) -> dict:
    from moto import mock_aws

    counter = CallCounter()
    counter.install()
    with mock_aws():
        from chalicelib.adapters.clock import ManualClock
        from chalicelib.bootstrap import Container
        from chalicelib.domain.calendar import CHINA_TZ
        from chalicelib.service_layer.reviews import ReviewDeps
        from chalicelib.settings import get_settings
        from local.provision import provision

        settings = get_settings()
        provision(settings)
        moment = datetime(2026, 12, 1, 9, tzinfo=CHINA_TZ)
        deps = ReviewDeps.from_container(Container(settings, clock=ManualClock(moment)))
        write(make_reviews(total))
        return measure(deps, runs, total, counter)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=100_000, help="for the store's reader")
    parser.add_argument("--moto-reviews", type=int, default=3_000, help="0: skip moto")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    results = {"reader": run_reader(args.reviews, args.runs)}
    if args.moto_reviews:
        results["moto"] = run_moto(args.moto_reviews, args.runs)
    labels = {"reader": "store's reader, stored items", "moto": "in-process moto"}
    print(f"{DEPARTMENTS} departments, {CENTRES} centres, one month, best of {args.runs}")
    print(
        f"{'store':30} {'reviews':>8} {'read once s':>12} {'build s':>9} {'ratio':>6} "
        f"{'aggregate s':>12} {'calls':>6}"
    )
    for name, r in results.items():
        print(
            f"{labels[name]:30} {r['reviews']:8d} {r['read_once_s']:12.3f} "
            f"{r['build_report_s']:9.3f} {r['build_to_read_ratio']:5.2f}x "
            f"{r['aggregate_in_memory_s']:12.4f} {r['build_calls']:6d}"
        )
    print(json.dumps({"departments": DEPARTMENTS, "centres": CENTRES, **results}))


if __name__ == "__main__":
    main()
