"""What one 办不成事 intake costs: AWS calls, items written, latency against a bare put.

On in-process moto (mock_aws): seed the departments and routing rules, then file N tickets
through the Chalice app (POST /tickets with an Idempotency-Key, as the mini-program does),
half routed to a department by a rule and half left for the dispatcher, and retry a few of
them (the retried POST answers the stored ticket). botocore's `_make_api_call` is wrapped to
count calls by operation and the items they write, by table. In the same run, the same client
makes N bare conditional puts (PutItem with attribute_not_exists) on the tickets table: the
intake's latency is reported as a ratio to that, which is what compares across machines.

Prints a table, then, as the last line, one JSON object with the figures.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import CallCounter, use_in_process_aws

use_in_process_aws()

INTAKES = 60
RETRIES = 10
START = datetime(2026, 11, 26, 10, 0)  # Thursday


def _intake(n: int) -> dict:
    routed = n % 2 == 0
    return {
        "kind": "not_accepted" if routed else "cross_department",
        "channel": "mini_program",
        "description": f"第{n}件：企业设立登记网上提交多次被退回",
        "contact": {"method": "phone"},
        **({"item_code": "QP-SC-101", "item_name": "企业设立登记"} if routed else {}),
    }


def run(counter: CallCounter) -> dict:
    from chalice.test import Client
    from moto import mock_aws

    with mock_aws():
        from app import app
        from chalicelib.adapters.clock import CHINA_TZ, ManualClock
        from chalicelib.bootstrap import Container, set_container
        from chalicelib.settings import get_settings
        from local.provision import provision
        from local.seed import seed
        from local.seed_applications import seed_guide_entries
        from local.seed_tickets import seed_routing_rules

        settings = get_settings()
        provision(settings)
        clock = ManualClock(START.replace(tzinfo=CHINA_TZ))
        container = Container(settings, clock=clock)
        set_container(container)
        seed(container.directory)
        seed_guide_entries(container)  # routed tickets name a guide item
        seed_routing_rules(container)
        users = ["u-citizen-zhang", "u-citizen-li", "u-enterprise-lvjing"]
        tokens = {
            u: container.dev_token_issuer.issue(
                container.directory.get_user(u).principal(), clock.now()
            )
            for u in users
        }

        def post(n: int):
            user = users[n % len(users)]
            headers = {
                "Authorization": f"Bearer {tokens[user]}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"bench-intake-{n:06d}",
            }
            return client.http.post("/tickets", headers=headers, body=json.dumps(_intake(n)))

        with Client(app) as client:
            post(-1)  # warm-up: first-use imports and clients are not the intake's cost
            counter.reset()
            counter.active = True
            routed_calls: list[int] = []
            unrouted_calls: list[int] = []
            seconds: list[float] = []
            for n in range(INTAKES):
                before = sum(counter.calls.values())
                began = time.perf_counter()
                result = post(n)
                seconds.append(time.perf_counter() - began)
                assert result.status_code == 201, result.body
                calls = sum(counter.calls.values()) - before
                (routed_calls if n % 2 == 0 else unrouted_calls).append(calls)
            counter.active = False
            intake_calls = dict(counter.calls)
            intake_written = dict(counter.written)

            counter.reset()
            counter.active = True
            retry_seconds = []
            for n in range(RETRIES):
                began = time.perf_counter()
                result = post(n)
                retry_seconds.append(time.perf_counter() - began)
                assert result.headers.get("Idempotent-Replayed") == "true", result.body
            counter.active = False
            retry_calls = dict(counter.calls)
            retry_written = dict(counter.written)

        dynamodb = container.aws.client("dynamodb")
        table = settings.resource_name("tickets")
        put_seconds = []
        for n in range(INTAKES):
            began = time.perf_counter()
            dynamodb.put_item(
                TableName=table,
                Item={"pk": {"S": f"bench-put-{n}"}, "sk": {"S": "x"}, "v": {"N": "1"}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            put_seconds.append(time.perf_counter() - began)
        set_container(None)

    intake_median = statistics.median(seconds)
    put_median = statistics.median(put_seconds)
    return {
        "intakes": INTAKES,
        "calls_per_intake": round(sum(intake_calls.values()) / INTAKES, 1),
        "calls_per_routed_intake": round(statistics.mean(routed_calls), 1),
        "calls_per_unrouted_intake": round(statistics.mean(unrouted_calls), 1),
        "items_written_per_intake": round(sum(intake_written.values()) / INTAKES, 1),
        "items_written_per_intake_by_table": {
            k: round(v / INTAKES, 2) for k, v in sorted(intake_written.items())
        },
        "calls_per_intake_by_operation": {
            k: round(v / INTAKES, 2) for k, v in sorted(intake_calls.items())
        },
        "calls_per_retry": round(sum(retry_calls.values()) / RETRIES, 1),
        "items_written_per_retry": round(sum(retry_written.values()) / RETRIES, 1),
        "intake_median_ms": round(intake_median * 1000, 2),
        "retry_median_ms": round(statistics.median(retry_seconds) * 1000, 2),
        "bare_put_median_ms": round(put_median * 1000, 3),
        "intake_to_put_ratio": round(intake_median / put_median, 1),
        "retry_to_put_ratio": round(statistics.median(retry_seconds) / put_median, 1),
    }


def main() -> None:
    counter = CallCounter()
    counter.install()
    r = run(counter)
    print(f"ticket intake: {INTAKES} POST /tickets (half routed), {RETRIES} retried POSTs")
    header = f"{'':<28} {'AWS calls':>10} {'items written':>14} {'median ms':>10} {'x put':>7}"
    print(header)
    print("-" * len(header))
    print(
        f"{'intake (all)':<28} {r['calls_per_intake']:>10} {r['items_written_per_intake']:>14} "
        f"{r['intake_median_ms']:>10} {r['intake_to_put_ratio']:>7}"
    )
    print(f"{'  routed to a department':<28} {r['calls_per_routed_intake']:>10}")
    print(f"{'  left for the dispatcher':<28} {r['calls_per_unrouted_intake']:>10}")
    print(
        f"{'retried intake (replayed)':<28} {r['calls_per_retry']:>10} "
        f"{r['items_written_per_retry']:>14} {r['retry_median_ms']:>10} "
        f"{r['retry_to_put_ratio']:>7}"
    )
    print(f"{'bare conditional put':<28} {1:>10} {1:>14} {r['bare_put_median_ms']:>10} {1.0:>7}")
    print(f"  calls per intake by operation: {r['calls_per_intake_by_operation']}")
    print(f"  items written per intake by table: {r['items_written_per_intake_by_table']}")
    print(json.dumps(r, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main()
