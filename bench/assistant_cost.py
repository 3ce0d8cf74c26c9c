"""What one knowledge search and one assistant turn cost, on in-process moto: AWS calls per
request (warm: the process has served the route before) and where the time goes (cProfile of
warm requests, top functions by cumulative time).

    .venv/bin/python bench/assistant_cost.py [--profile N]

Prints the calls of each warm request (operation and table), the profile, then, as the last
line, one JSON object: {"calls": {route: most warm calls of one request}, "writes": {...},
"ms": {route: median}}.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import CallCounter, use_in_process_aws

use_in_process_aws(AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled")

START = datetime(2026, 11, 26, 10, 0)  # Thursday
CITIZEN = "u-citizen-zhang"
QUESTIONS = (
    "社保卡丢了怎么补办",
    "开个奶茶店要办什么证",
    "异地就医备案多久生效",  # an answer linked to a service-guide item
    "人才安居补贴每月补多少",  # linked to an item and a policy
    "今天天气怎么样",
)
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=int, default=20, help="warm requests profiled per route")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime", help="cumulative, tottime…")
    args = parser.parse_args()

    from chalice.test import Client
    from moto import mock_aws

    counter = CallCounter()
    counter.install()
    log: list[str] = []
    from botocore.client import BaseClient

    counted = BaseClient._make_api_call

    def traced(client, operation, params):
        if counter.active:
            log.append(f"{operation} {params.get('TableName', '')}".strip())
        return counted(client, operation, params)

    BaseClient._make_api_call = traced

    from local.moto_server import install_patches

    install_patches()  # transactions as the embedded AWS of the local runner runs them
    with mock_aws():
        from app import app
        from chalicelib.adapters.clock import CHINA_TZ, ManualClock
        from chalicelib.bootstrap import Container, set_container
        from chalicelib.settings import get_settings
        from local.provision import provision
        from local.seed import seed
        from local.seed_applications import seed_applications
        from local.seed_knowledge import seed_knowledge
        from local.seed_policies import seed_policies

        settings = get_settings()
        provision(settings)
        clock = ManualClock(START.replace(tzinfo=CHINA_TZ))
        container = Container(settings, clock=clock)
        set_container(container)
        seed(container.directory)
        seed_applications(container)
        seed_policies(container)
        seed_knowledge(container)
        # A process serving for a while: the seed is older than the feed's overlap.
        clock.advance(timedelta(minutes=5))
        principal = container.directory.get_user(CITIZEN).principal()
        token = container.dev_token_issuer.issue(principal, clock.now())
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        with Client(app) as client:

            def search(q: str) -> None:
                r = client.http.get(f"/kb/search?q={quote(q)}&limit=5", headers=headers)
                assert r.status_code == 200, r.body

            def turn(q: str) -> None:
                body = json.dumps({"text": q})
                r = client.http.post("/assistant/conversations", headers=headers, body=body)
                assert r.status_code == 201, r.body

            routes = {"search": search, "assistant": turn}
            for action in routes.values():  # cold: the first request of each route
                for q in QUESTIONS:
                    action(q)
            calls: dict[str, int] = {}
            writes: dict[str, int] = {}
            for name, action in routes.items():
                for q in QUESTIONS:
                    log.clear()
                    counter.reset()
                    counter.active = True
                    action(q)
                    counter.active = False
                    calls[name] = max(calls.get(name, 0), len(log))
                    written = sum(1 for line in log if line.split()[0] in _WRITES)
                    writes[name] = max(writes.get(name, 0), written)
                    print(f"{name} {q}: {len(log)} AWS calls, {written} writes")
                    for line in log:
                        print("   ", line)
            timings: dict[str, float] = {}
            for name, action in routes.items():
                profile = cProfile.Profile()
                spent = []
                for n in range(args.profile):
                    q = QUESTIONS[n % len(QUESTIONS)]
                    started = time.perf_counter()
                    profile.enable()
                    action(q)
                    profile.disable()
                    spent.append((time.perf_counter() - started) * 1000)
                timings[name] = round(statistics.median(spent), 2)
                out = io.StringIO()
                pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.top)
                print(f"--- {name}: median {timings[name]} ms (profiled) ---")
                print("\n".join(out.getvalue().splitlines()[: args.top + 12]))
    print(json.dumps({"calls": calls, "writes": writes, "ms": timings}))


if __name__ == "__main__":
    main()
