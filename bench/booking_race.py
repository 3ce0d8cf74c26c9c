"""32 concurrent clients race for one slot with c seats, round after round, through the HTTP API
on the embedded AWS: exactly c bookings every round, and the bookings per second.

Starts what `make run` starts, with the runner's own functions: moto's server as a subprocess
(single-threaded), the topology provisioned on it, the demo data seeded, and the Chalice app on
chalice local's threaded server, each on a free loopback port. A bench-only service with c seats
per slot is added at the district centre. Each round, `--clients` threads (new people each round,
each with its own dev token and Idempotency-Key) are released together on one slot with
`POST /bookings`; the round passes if exactly c answers are 201 and the rest 409 `slot_full`, and
if the slot then shows no free seat. Everything started is stopped at the end.

    .venv/bin/python bench/booking_race.py [--rounds 50] [--clients 32] [--seats 4]

Prints a table, then, as the last line, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START = (2026, 11, 26, 10, 0)  # Thursday: the next five working days are bookable
CENTER = "qp-district"
_ATTEMPTS = 5
_BACKLOG = 128
ITEM = "item-bench-race"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Round:
    day: str
    start: str
    statuses: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    free_after: int | None = None
    latencies: list[float] = field(default_factory=list)
    retries: int = 0

    def ok(self, seats: int, clients: int) -> bool:
        return (
            self.statuses.get(201, 0) == seats
            and self.codes.get("slot_full", 0) == clients - seats
            and self.free_after == 0
        )


class Client(threading.Thread):
    """One racing client: waits at the barrier, posts its booking, records the answer."""

    def __init__(self, port: int, token: str, body: bytes, key: str, barrier: threading.Barrier):
        super().__init__(daemon=True)
        self.port, self.token, self.body, self.key = port, token, body, key
        self.barrier = barrier
        self.status = 0
        self.code = ""
        self.latency = 0.0
        self.retries = 0

    def run(self) -> None:
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.token}",
            "Idempotency-Key": self.key,
        }
        self.barrier.wait()
        began = time.perf_counter()
        for attempt in range(_ATTEMPTS):
            try:
                self.status, payload = self._post(headers)
                if self.status >= 400:
                    self.code = json.loads(payload).get("code", "")
                break
            except (OSError, http.client.HTTPException) as error:
                # The Idempotency-Key makes a retry safe, whatever the server had done.
                self.code = type(error).__name__
                self.retries = attempt + 1
        self.latency = time.perf_counter() - began

    def _post(self, headers: dict[str, str]) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.request("POST", "/bookings", body=self.body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def get_json(port: int, path: str) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def slots_to_race(container: Any, service: Any, rounds: int) -> list[tuple[date, str]]:
    from chalicelib.domain.bookings.centres import slots_of
    from chalicelib.domain.bookings.rules import bookable_days

    rules, now = container.booking_store.get_rules()[0], container.clock.now()
    center = container.booking_store.get_center(CENTER)
    days = bookable_days(rules, container.calendar_store.calendar(), now)
    found = [(d, s.label) for d in days for s in slots_of(center, service, d)]
    if len(found) < rounds + 1:
        raise SystemExit(f"only {len(found)} slots in the booking window for {rounds} rounds")
    return found[: rounds + 1]


def race(port: int, container: Any, day: date, start: str, clients: int, number: int) -> Round:
    from chalicelib.domain.identity import Principal, Role

    body = json.dumps(
        {"centre_id": CENTER, "item_code": ITEM, "date": day.isoformat(), "start": start}
    ).encode()
    barrier = threading.Barrier(clients + 1)
    issuer, now = container.dev_token_issuer, container.clock.now()
    threads = [
        Client(
            port,
            issuer.issue(Principal(f"u-bench-{number}-{n}", Role.CITIZEN), now),
            body,
            f"bench-{number:03d}-{n:03d}",
            barrier,
        )
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    result = Round(day.isoformat(), start, seconds=time.perf_counter() - began)
    result.statuses.update(t.status for t in threads)
    result.codes.update(t.code for t in threads if t.code)
    result.latencies = [t.latency for t in threads]
    result.retries = sum(t.retries for t in threads)
    listing = get_json(port, f"/centres/{CENTER}/slots?item_code={ITEM}&date={day.isoformat()}")
    slot = next(s for s in listing["services"][0]["slots"] if s["start"] == start)
    result.free_after = slot["free_priority"]
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    from local.runner import MotoProcess, RunnerConfig, configure_environment, make_api_server

    with tempfile.TemporaryDirectory(prefix="booking-race-") as data_dir:
        config = RunnerConfig(free_port(), free_port(), Path(data_dir))
        configure_environment(config)
        os.environ["QPHB_LOG_LEVEL"] = "WARNING"
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
        moto = MotoProcess(config.aws_port)
        server = None
        moto.start()
        try:
            moto.wait_ready(threading.Event())
            from chalicelib.settings import get_settings, reset_settings_cache

            reset_settings_cache()
            settings = get_settings()
            from app import app  # after the environment: settings and models bind at import
            from chalicelib.adapters.clock import CHINA_TZ, ManualClock
            from chalicelib.bootstrap import Container, set_container
            from chalicelib.domain.bookings.centres import Channel, Complexity, Service
            from local.provision import provision
            from local.seed import seed
            from local.seed_bookings import seed_bookings

            provision(settings)
            container = Container(settings, clock=ManualClock(datetime(*START, tzinfo=CHINA_TZ)))
            set_container(container)
            seed(container.directory)
            seed_bookings(container)
            service = Service(
                CENTER, ITEM, "并发预约压测事项", Channel.COUNTER, 15, args.seats, Complexity.SIMPLE
            )
            container.booking_store.put_catalog([], [service])
            slots = slots_to_race(container, service, args.rounds)

            server = make_api_server(app, settings, config.port)
            # socketserver listens with a backlog of 5: 32 clients at once would be refused.
            server.server.socket.listen(_BACKLOG)
            threading.Thread(
                target=server.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
            ).start()

            # One request first: the server's first answer builds validators and imports lazily.
            warmup = race(config.port, container, *slots.pop(), 1, 0)
            results = []
            for number, (day, start) in enumerate(slots, start=1):
                result = race(config.port, container, day, start, args.clients, number)
                results.append(result)
                if not args.quiet:
                    mark = "ok" if result.ok(args.seats, args.clients) else "FAIL"
                    print(
                        f"round {number:3d}  {result.day} {result.start}  "
                        f"201={result.statuses.get(201, 0):2d}  "
                        f"409={result.statuses.get(409, 0):2d}  "
                        f"free after={result.free_after}  {result.seconds:6.2f} s  {mark}",
                        flush=True,
                    )
            figures = summarise(results, args)
            figures["warmup_seconds"] = round(warmup.seconds, 2)
            return figures
        finally:
            if server is not None:
                server.shutdown()
                server.server.server_close()
            moto.stop()


def summarise(results: list[Round], args: argparse.Namespace) -> dict[str, Any]:
    seconds = sum(r.seconds for r in results)
    bookings = sum(r.statuses.get(201, 0) for r in results)
    requests = sum(sum(r.statuses.values()) for r in results)
    latencies = sorted(x for r in results for x in r.latencies)
    unexpected = Counter()
    for r in results:
        unexpected.update({c: n for c, n in r.codes.items() if c != "slot_full"})
    return {
        "rounds": len(results),
        "clients": args.clients,
        "seats": args.seats,
        "rounds_exact": sum(r.ok(args.seats, args.clients) for r in results),
        "max_bookings_in_a_round": max(r.statuses.get(201, 0) for r in results),
        "bookings": bookings,
        "requests": requests,
        "race_seconds": round(seconds, 2),
        "bookings_per_second": round(bookings / seconds, 1) if seconds else None,
        "requests_per_second": round(requests / seconds, 1) if seconds else None,
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "latency_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
        "client_retries": sum(r.retries for r in results),
        "unexpected_errors": dict(unexpected),
    }


def print_table(figures: dict[str, Any]) -> None:
    rows = [
        ("rounds (exactly c bookings)", f"{figures['rounds_exact']} / {figures['rounds']}"),
        ("clients per round", figures["clients"]),
        ("seats per slot (c)", figures["seats"]),
        ("most bookings in one round", figures["max_bookings_in_a_round"]),
        ("bookings / requests", f"{figures['bookings']} / {figures['requests']}"),
        (
            "racing time",
            f"{figures['race_seconds']} s (after a {figures['warmup_seconds']} s warm-up)",
        ),
        ("bookings per second", figures["bookings_per_second"]),
        ("requests per second", figures["requests_per_second"]),
        ("latency p50 / p95", f"{figures['latency_p50_ms']} / {figures['latency_p95_ms']} ms"),
        ("client retries (connection)", figures["client_retries"]),
        ("unexpected errors", figures["unexpected_errors"] or "none"),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    print("booking race: HTTP API (chalice local) on the embedded AWS (moto, single-threaded)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seats", type=int, default=4, help="c: seats per slot")
    parser.add_argument("--quiet", action="store_true", help="no line per round")
    args = parser.parse_args(argv)
    if not 1 <= args.seats < args.clients:
        parser.error("--seats must be at least 1 and fewer than --clients")
    figures = run(args)
    print_table(figures)
    print(json.dumps(figures, ensure_ascii=False), flush=True)
    return 0 if figures["rounds_exact"] == figures["rounds"] else 1


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    # Everything started is stopped; skip the interpreter's slow teardown of boto3 clients.
    os._exit(status)
