"""AWS calls per use case, on in-process moto: what one request costs with its synchronous
effects, cold (first request of the process) and warm (caches filled).

Each use case is driven through the Chalice app as a client would (HTTP routes; the machine
pre-review through its registered SQS consumer). botocore's `_make_api_call` is wrapped
(bench/_support.py) to count every call the request and its synchronous effects make. Work
that stream and queue consumers do afterwards (audit chaining, notification delivery) is
counted apart, under "consumers", by draining the streams once after the warm runs.

    .venv/bin/python bench/request_cost.py [--trace]

`--trace` prints every call of each warm request (operation and table). Prints a table, then,
as the last line, one JSON object: {"calls": {use case: warm calls}, "cold": {...},
"goals": {...}, "consumers": {...}}.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import CallCounter, short_table, use_in_process_aws

use_in_process_aws(
    # botocore sends ARN-carrying DynamoDB Streams calls to an endpoint in-process moto lacks.
    AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
)

START = datetime(2026, 11, 26, 10, 0)  # Thursday
CITIZEN = "u-citizen-zhang"
LI = "u-citizen-li"
ENTERPRISE = "u-enterprise-lvjing"
MARKET = "u-dept-scjgj"
CLERK = "u-window-wang"
DISTRICT = "qp-district"

GOALS = {
    "ticket_intake_routed": 8,
    "ticket_transition": 6,
    "booking_create": 6,
    "application_submit": 8,
    "application_prereview": 20,
    "review_create": 6,
}

TICKET = {
    "kind": "not_accepted",
    "channel": "mini_program",
    "description": "企业设立登记网上提交多次被退回",
    "contact": {"method": "phone"},
    "item_code": "QP-SC-101",
    "item_name": "企业设立登记",
}
ACCEPT = {"contact_method": "phone", "note": "已电话联系办事人", "staff_phone": "13900001111"}


class Tracer:
    """The calls of one measured request, in order: (operation, table)."""

    def __init__(self, counter: CallCounter) -> None:
        self.counter = counter
        self.log: list[tuple[str, str]] = []

    def install(self) -> None:
        from botocore.client import BaseClient

        counted = BaseClient._make_api_call
        tracer = self

        def traced(client, operation, params):
            if tracer.counter.active:
                table = params.get("TableName") or params.get("QueueUrl", "").rsplit("/", 1)[-1]
                if operation in ("BatchWriteItem", "BatchGetItem"):
                    table = ",".join(short_table(t) for t in params.get("RequestItems", {}))
                if operation == "TransactWriteItems":
                    # Each table once, with the number of its items when more than one.
                    tables = Counter(
                        short_table(next(iter(i.values())).get("TableName", ""))
                        for i in params.get("TransactItems", [])
                    )
                    table = ",".join(f"{t}×{n}" if n > 1 else t for t, n in tables.items())
                tracer.log.append((operation, short_table(table)))
            return counted(client, operation, params)

        BaseClient._make_api_call = traced


def measure(counter: CallCounter, tracer: Tracer, action) -> tuple[int, list, object]:
    tracer.log = []
    counter.reset()
    counter.active = True
    try:
        result = action()
    finally:
        counter.active = False
    return sum(counter.calls.values()), list(tracer.log), result


def run(counter: CallCounter, tracer: Tracer) -> dict:
    from chalice.test import Client
    from moto import mock_aws

    with mock_aws():
        from app import app
        from chalicelib.adapters.cache import ReadCache
        from chalicelib.adapters.clock import CHINA_TZ, ManualClock
        from chalicelib.bootstrap import Container, set_container
        from chalicelib.settings import get_settings
        from local import pumps
        from local.provision import provision
        from local.seed import seed
        from local.seed_applications import seed_applications
        from local.seed_bookings import seed_bookings
        from local.seed_tickets import seed_routing_rules

        settings = get_settings()
        provisioned = provision(settings)
        queue_url = provisioned.queue_urls["application-prereview"]
        clock = ManualClock(START.replace(tzinfo=CHINA_TZ))
        container = Container(settings, clock=clock)
        # The bench moves the business clock by days between use cases; the read caches age on
        # wall time here, as they would in a process serving requests for a minute.
        container._read_cache = ReadCache
        set_container(container)
        seed(container.directory)
        seed_routing_rules(container)
        seed_applications(container)
        seed_bookings(container)
        sqs = container.aws.client("sqs")
        bindings = pumps.discover(app, settings)
        _sqs_pumps, stream_pumps, _schedules = pumps.build_pumps(
            bindings, container.aws, clock, settings
        )
        for pump in stream_pumps:
            pump.start()

        principals = {
            u: container.directory.get_user(u).principal()
            for u in (CITIZEN, LI, ENTERPRISE, MARKET, CLERK)
        }
        serial = iter(range(1_000_000))

        with Client(app) as client:

            def call(method: str, path: str, user: str, body=None, key: bool = False):
                headers = {
                    "Authorization": "Bearer "
                    + container.dev_token_issuer.issue(principals[user], clock.now()),
                    "Content-Type": "application/json",
                }
                if key:
                    headers["Idempotency-Key"] = f"bench-cost-{next(serial):06d}"
                payload = json.dumps(body) if body is not None else None
                response = client.http.request(method, path, headers=headers, body=payload)
                return response.status_code, json.loads(response.body or b"null")

            def intake() -> dict:
                status, body = call("POST", "/tickets", CITIZEN, TICKET, key=True)
                assert status == 201 and body["department_id"], body
                return body

            def transition() -> dict:
                ticket = intake()
                return lambda: call(
                    "POST", f"/tickets/{ticket['ticket_id']}/accept", MARKET, ACCEPT
                )

            def submit() -> object:
                status, pre = call("GET", "/items/QP-SC-103/prefill", ENTERPRISE)
                assert status == 200, pre
                values = {f["name"]: f["value"] for f in pre["fields"]}
                body = {
                    "item_code": "QP-SC-103",
                    "prefill_token": pre["prefill_token"],
                    "fields": {**values, "sale_type": "预包装食品"},
                    "materials": [],
                }
                return lambda: call("POST", "/applications", ENTERPRISE, body, key=True)

            def prereview_event() -> dict:
                messages = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=1, AttributeNames=["All"]
                ).get("Messages", [])
                assert len(messages) == 1, messages
                m = messages[0]
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
                return {
                    "Records": [
                        {
                            "messageId": m["MessageId"],
                            "receiptHandle": m["ReceiptHandle"],
                            "body": m["Body"],
                            "attributes": m.get("Attributes", {}),
                            "messageAttributes": {},
                            "md5OfBody": m["MD5OfBody"],
                            "eventSource": "aws:sqs",
                            "eventSourceARN": "arn:aws:sqs:bench",
                            "awsRegion": "us-east-1",
                        }
                    ]
                }

            def prereview() -> object:
                status, _ = submit()()
                assert status == 202
                event = prereview_event()
                return lambda: client.lambda_.invoke("prereview_applications", event).payload

            booking_days = iter(["2026-11-27", "2026-12-01"])
            booking_users = iter([CITIZEN, LI, ENTERPRISE, CITIZEN, LI, ENTERPRISE])

            def booking() -> object:
                body = {
                    "centre_id": DISTRICT,
                    "item_code": "QP-GA-601",
                    "channel": "counter",
                    "date": next(booking_days),
                    "start": "10:00",
                }
                return lambda: call("POST", "/bookings", next(booking_users), body, key=True)

            served_days = iter([(2026, 11, 27), (2026, 11, 30)])

            def served_booking(user: str) -> str:
                day = next(served_days)
                status, made = call(
                    "POST",
                    "/bookings",
                    user,
                    {
                        "centre_id": DISTRICT,
                        "item_code": "QP-SC-101",
                        "channel": "counter",
                        "date": "{:04d}-{:02d}-{:02d}".format(*day),
                        "start": "14:00",
                    },
                )
                assert status == 201, made
                booking_id = made["booking_id"]
                for step, minute in (("check-in", 50), ("call", 55), ("serve", 59)):
                    clock.set(datetime(*day, 13, minute, tzinfo=CHINA_TZ))
                    status, body = call("POST", f"/bookings/{booking_id}/{step}", CLERK, {})
                    assert status == 200, body
                clock.set(datetime(*day, 14, 30, tzinfo=CHINA_TZ))
                return booking_id

            def review(user: str) -> object:
                from chalicelib.domain.reviews import DIMENSIONS, Channel

                booking_id = served_booking(user)
                body = {
                    "handling_type": "booking",
                    "handling_id": booking_id,
                    "rating": 2,
                    "dimensions": dict.fromkeys(DIMENSIONS[Channel.OFFLINE], 2),
                    "comment": "办事人员态度差",
                }
                return lambda: call("POST", "/reviews", user, body)

            review_users = iter([CITIZEN, LI])
            use_cases = {
                "ticket_intake_routed": lambda: intake,
                "ticket_transition": transition,
                "booking_create": booking,
                "application_submit": submit,
                "application_prereview": prereview,
                "review_create": lambda: review(next(review_users)),
            }
            cold: dict[str, int] = {}
            warm: dict[str, int] = {}
            traces: dict[str, list] = {}
            for name, prepare in use_cases.items():
                cold[name], _, _ = measure(counter, tracer, prepare())
            for name, prepare in use_cases.items():
                warm[name], traces[name], _ = measure(counter, tracer, prepare())

            counter.reset()
            counter.active = True
            for pump in stream_pumps:
                pumps.drain(pump)
            counter.active = False
            consumers = dict(counter.calls)
        set_container(None)

    return {"calls": warm, "cold": cold, "traces": traces, "consumers": consumers}


def main() -> None:
    counter = CallCounter()
    counter.install()
    tracer = Tracer(counter)
    tracer.install()
    r = run(counter, tracer)
    header = f"{'use case':<24} {'cold':>6} {'warm':>6} {'goal':>6}"
    print("AWS calls per request with its synchronous effects (in-process moto)")
    print(header)
    print("-" * len(header))
    for name, warm in r["calls"].items():
        goal = GOALS.get(name)
        verdict = "" if goal is None else ("  ok" if warm <= goal else "  MISSED")
        print(f"{name:<24} {r['cold'][name]:>6} {warm:>6} {goal if goal else '-':>6}{verdict}")
    print(f"stream consumers drained afterwards, calls by operation: {r['consumers']}")
    if "--trace" in sys.argv:
        for name, log in r["traces"].items():
            print(f"\n{name}:")
            for operation, table in log:
                print(f"  {operation:<20} {table}")
            by_table = Counter(table for _, table in log)
            print(f"  by table: {dict(by_table)}")
    figures = {
        "calls": r["calls"],
        "cold": r["cold"],
        "goals": GOALS,
        "met": all(r["calls"][k] <= v for k, v in GOALS.items()),
        "consumers": r["consumers"],
    }
    print(json.dumps(figures, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main()
