"""Machine pre-review: applications pre-reviewed per second by the consumer, AWS calls per
submission.

On in-process moto (mock_aws): seed the demo users, items, profiles and e-licences; submit N
applications through the Chalice app (GET prefill, then POST /applications with an
Idempotency-Key, as the mini-program does): a mix of the automatically approved item, a
complete one passed to the department, one tolerated (容缺) and one sent back for 补正. Then
drain the real pre-review queue into the registered consumer in batches of 10 and time it.
botocore's `_make_api_call` is wrapped to count calls by operation.

Prints a table, then, as the last line, one JSON object with the figures.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import CallCounter, use_in_process_aws

use_in_process_aws()

APPLICATIONS = 80
START = datetime(2026, 11, 26, 10, 0)  # Thursday
ENTERPRISE = "u-enterprise-lvjing"
CITIZEN = "u-citizen-zhang"


def _material(code: str, holder: str | None = None) -> dict:
    return {
        "code": code,
        "file_name": f"{code}.pdf",
        "file_type": "pdf",
        "size_kb": 300,
        "holder_name": holder,
    }


# (user, item, extra fields, materials): one of each pre-review outcome.
MIX = (
    (ENTERPRISE, "QP-SC-103", {"sale_type": "预包装食品"}, []),  # approved by rules
    (
        ENTERPRISE,
        "QP-RS-201",
        {"employees": 9},
        [_material("labour_contract", "上海绿境科技有限公司"), _material("roster")],
    ),  # passed
    (
        ENTERPRISE,
        "QP-RS-201",
        {"employees": 9},
        [_material("labour_contract", "上海绿境科技有限公司")],
    ),  # 容缺
    (CITIZEN, "QP-RS-202", {"bank_account": "6222020000000000"}, []),  # 补正
)


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
        from local.seed_applications import seed_applications

        settings = get_settings()
        provisioned = provision(settings)
        queue_url = provisioned.queue_urls["application-prereview"]
        clock = ManualClock(START.replace(tzinfo=CHINA_TZ))
        container = Container(settings, clock=clock)
        set_container(container)
        seed(container.directory)
        seed_applications(container)
        tokens = {
            u: container.dev_token_issuer.issue(
                container.directory.get_user(u).principal(), clock.now()
            )
            for u in (ENTERPRISE, CITIZEN)
        }
        sqs = container.aws.client("sqs")

        with Client(app) as client:

            def submit(n: int) -> None:
                user, code, fields, materials = MIX[n % len(MIX)]
                headers = {
                    "Authorization": f"Bearer {tokens[user]}",
                    "Content-Type": "application/json",
                }
                pre = json.loads(client.http.get(f"/items/{code}/prefill", headers=headers).body)
                values = {f["name"]: f["value"] for f in pre["fields"]}
                body = {
                    "item_code": code,
                    "prefill_token": pre["prefill_token"],
                    "fields": {**values, **fields},
                    "materials": materials,
                }
                headers["Idempotency-Key"] = f"bench-prereview-{n:06d}"
                result = client.http.post("/applications", headers=headers, body=json.dumps(body))
                assert result.status_code == 202, result.body

            def drain() -> tuple[int, float]:
                reviewed, seconds = 0, 0.0
                while True:
                    messages = sqs.receive_message(
                        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
                    ).get("Messages", [])
                    if not messages:
                        return reviewed, seconds
                    event = {
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
                            for m in messages
                        ]
                    }
                    counter.active = True
                    began = time.perf_counter()
                    payload = client.lambda_.invoke("prereview_applications", event).payload
                    seconds += time.perf_counter() - began
                    counter.active = False
                    assert payload["batchItemFailures"] == [], payload
                    reviewed += len(messages)
                    for m in messages:
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])

            submit(-1)  # warm-up: first-use imports and clients are not the cost measured
            drain()
            counter.reset()
            counter.active = True
            began = time.perf_counter()
            for n in range(APPLICATIONS):
                submit(n)
            submit_seconds = time.perf_counter() - began
            counter.active = False
            submit_calls = dict(counter.calls)
            counter.reset()
            reviewed, review_seconds = drain()
            review_calls = dict(counter.calls)
            states = Counter(
                a.state.value
                for a in container.application_store.by_owner(ENTERPRISE, 100, None).items
                + container.application_store.by_owner(CITIZEN, 100, None).items
            )
        set_container(None)

    return {
        "applications": APPLICATIONS,
        "reviewed": reviewed,
        "prereviewed_per_second": round(reviewed / review_seconds, 1),
        "review_ms_per_application": round(review_seconds * 1000 / reviewed, 2),
        "calls_per_submission": round(sum(submit_calls.values()) / APPLICATIONS, 1),
        "calls_per_submission_by_operation": {
            k: round(v / APPLICATIONS, 2) for k, v in sorted(submit_calls.items())
        },
        "calls_per_review": round(sum(review_calls.values()) / reviewed, 1),
        "calls_per_review_by_operation": {
            k: round(v / reviewed, 2) for k, v in sorted(review_calls.items())
        },
        "submit_ms_per_application": round(submit_seconds * 1000 / APPLICATIONS, 2),
        "outcomes": dict(sorted(states.items())),
    }


def main() -> None:
    counter = CallCounter()
    counter.install()
    r = run(counter)
    print(
        f"pre-review: {r['applications']} applications (GET prefill + POST), consumer batches of 10"
    )
    print(f"  pre-reviewed per second (consumer) : {r['prereviewed_per_second']}")
    print(f"  ms per pre-review                  : {r['review_ms_per_application']}")
    print(f"  AWS calls per submission (prefill+POST): {r['calls_per_submission']}")
    print(f"  AWS calls per pre-review           : {r['calls_per_review']}")
    print(f"  outcomes                           : {r['outcomes']}")
    print(f"  submission calls by operation: {r['calls_per_submission_by_operation']}")
    print(f"  pre-review calls by operation: {r['calls_per_review_by_operation']}")
    print(json.dumps(r, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main()
