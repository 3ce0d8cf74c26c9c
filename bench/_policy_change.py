"""The cost of one profile change, at two population sizes (change-driven matching).

On in-process moto: write N enterprise profiles, publish the seeded enterprise policies (state
only: no population match), then change one subject's profile so that it becomes eligible and
run what the applications stream consumer runs for it (`rematch_subject`). Counts, for that
change only, the AWS calls and the DynamoDB items read and written (botocore's
`_make_api_call` wrapped). The figures must not grow with N.

`measure()` is called by bench/policy_match.py; run alone it prints the JSON.
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

SIZES = (1_000, 10_000)
NOW = datetime(2026, 11, 26, 10, 0)


def _profiles(total: int):
    from chalicelib.domain.personal_data import credit_code_check_char
    from local.seed_policies import ENTERPRISES

    template = ENTERPRISES[0]  # 上海青禾智能装备: meets the 稳岗 conditions
    for i in range(total):
        body = f"91310118MA{i:07d}"
        # Every tenth one has too few employees: a realistic mix of outcomes.
        yield replace(
            template,
            subject_id=body + credit_code_check_char(body),
            name=f"上海测试企业{i:05d}有限公司",
            employees=5 if i % 10 == 0 else 40,
        )


def _write_profiles(total: int) -> None:
    from chalicelib.adapters.dynamodb.applications import PlainRecord, profile_shard

    with PlainRecord.batch_write() as batch:
        for p in _profiles(total):
            batch.save(
                PlainRecord(
                    f"subject#{p.subject_id}",
                    "profile",
                    data=p.to_dict(),
                    profile_shard=profile_shard(p.kind, p.subject_id),
                    profile_subject=p.subject_id,
                )
            )


def _publish_seeded(store) -> int:
    from chalicelib.domain.policies import VersionState
    from local.seed_policies import POLICIES

    for version in POLICIES:
        store.create_version(replace(version, state=VersionState.PUBLISHED))
    return len(POLICIES)


def run(total: int, counter: CallCounter) -> dict:
    from moto import mock_aws

    with mock_aws():
        from chalicelib.adapters.clock import CHINA_TZ, ManualClock
        from chalicelib.bootstrap import Container, set_container
        from chalicelib.service_layer.policies import PolicyDeps, rematch_subject
        from chalicelib.settings import get_settings
        from local.provision import provision
        from local.seed import seed

        settings = get_settings()
        provision(settings)
        container = Container(settings, clock=ManualClock(NOW.replace(tzinfo=CHINA_TZ)))
        set_container(container)
        seed(container.directory)
        began = time.perf_counter()
        _write_profiles(total)
        load_seconds = time.perf_counter() - began
        policies = _publish_seeded(container.policy_store)
        deps = PolicyDeps.from_container(container)
        deps.deadlines.metric = lambda *args, **kw: None
        store = container.application_store
        subject = next(iter(_profiles(1))).subject_id  # index 0: too few employees so far

        counter.reset()
        counter.active = True
        began = time.perf_counter()
        store.put_profile(replace(store.get_profile(subject), employees=60))
        matched = rematch_subject(deps, subject)
        change_seconds = time.perf_counter() - began
        counter.active = False
        set_container(None)

    return {
        "subjects": total,
        "published_policies": policies,
        "matched": matched,
        "aws_calls": sum(counter.calls.values()),
        "items_read": sum(counter.items.values()),
        "items_written": sum(counter.written.values()),
        "scans": counter.calls.get("Scan", 0),
        "calls_by_operation": dict(sorted(counter.calls.items())),
        "change_seconds": round(change_seconds, 3),
        "load_seconds": round(load_seconds, 2),
    }


def measure(sizes: tuple[int, ...] = SIZES) -> dict:
    """AWS calls and items read for one profile change at each population size."""
    use_in_process_aws()
    counter = CallCounter()
    counter.install()
    runs = [run(total, counter) for total in sizes]
    first, last = runs[0], runs[-1]
    return {
        "runs": runs,
        "grows_with_population": last["items_read"] > first["items_read"]
        or last["aws_calls"] > first["aws_calls"],
    }


if __name__ == "__main__":
    print(json.dumps(measure(), ensure_ascii=False, indent=2))
