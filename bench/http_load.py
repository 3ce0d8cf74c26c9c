"""HTTP load through the local runner's API: 1, 8 and 32 clients, a mix of reads and writes.

Each client is a thread with its own keep-alive connection that loops for a bounded time over a
weighted mix: 办事指南 (GET /items/{code}), knowledge search (GET /kb/search), my tickets
(GET /me/tickets), ticket intake (POST /tickets with a fresh Idempotency-Key) and a booking
(POST /bookings on a random slot of the next working days). Per level: answered requests a
second, p50 and p99 latency (overall and per operation) and errors. An error is a transport
failure or an unexpected status (5xx, 401, 400); a booking refused for a business rule (slot
full, one booking per person and day: 409/422) is counted as refused, not as an error.

Without --base-url the bench starts `python -m local.runner` itself (PORT/AWS_PORT from
--port/--aws-port, DATA_DIR a fresh temporary folder) and stops it at the end.
Latencies are also given as ratios to a request for a path no route serves (the HTTP stack
alone) at one client, measured in the same run.

    .venv/bin/python bench/http_load.py [--seconds 20] [--levels 1,8,32] [--base-url URL]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
CITIZENS = ("u-citizen-zhang", "u-citizen-li")
ITEMS = ("QP-SC-103", "QP-SC-105", "QP-RS-201", "QP-RS-202", "QP-YB-301")
QUERIES = ("灵活就业社保补贴", "营业执照地址变更", "医保报销", "企业开办要多久", "居住证")
STARTS = ("09:00", "09:30", "10:00", "10:30", "13:30", "14:00", "14:30", "15:00")
# (operation, weight): reads dominate, as they do for the mini-program.
MIX = (("guide", 30), ("search", 25), ("my_tickets", 20), ("ticket_intake", 15), ("booking", 10))
BUSINESS_REFUSALS = {409, 422}


@dataclass
class Level:
    clients: int
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    refused: int = 0
    elapsed: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, seconds: float, status: int | None, error: str | None) -> None:
        with self.lock:
            self.latencies[op].append(seconds)
            self.statuses[status] += 1
            if error:
                self.errors[f"{op}:{error}"] += 1
            elif op == "booking" and status in BUSINESS_REFUSALS:
                self.refused += 1

    def all_latencies(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]


class Client:
    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: dict | None = None, headers: dict | None = None
    ) -> tuple[int, bytes]:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        payload = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout
                )
            try:
                self.connection.request(method, path, body=payload, headers=all_headers)
                response = self.connection.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server closed between requests: reconnect once.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def tokens(base_url: str) -> dict[str, str]:
    client = Client(base_url, 30)
    found = {}
    for user in CITIZENS:
        status, data = client.request("POST", "/dev/tokens", {"user_id": user})
        if status != 201:
            raise SystemExit(f"cannot get a dev token for {user}: {status} {data[:200]!r}")
        found[user] = json.loads(data)["token"]
    client.close()
    return found


def working_days_ahead(today: date, count: int) -> list[date]:
    days, day = [], today
    while len(days) < count:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days


def operation(rng: random.Random, user: str, token: str, days: list[date]) -> tuple:
    op = rng.choices([m[0] for m in MIX], weights=[m[1] for m in MIX])[0]
    auth = {"Authorization": f"Bearer {token}"}
    if op == "guide":
        return op, "GET", f"/items/{rng.choice(ITEMS)}", None, {}
    if op == "search":
        return op, "GET", f"/kb/search?q={quote(rng.choice(QUERIES))}", None, {}
    if op == "my_tickets":
        return op, "GET", "/me/tickets?limit=20", None, auth
    if op == "ticket_intake":
        body = {
            "kind": "not_accepted",
            "channel": "mini_program",
            "description": f"压测：企业设立登记网上提交被退回 {uuid.uuid4().hex[:8]}",
            "contact": {"method": "mini_program"},
            "item_code": "QP-SC-101",
            "item_name": "企业设立登记",
        }
        headers = {**auth, "Idempotency-Key": f"load-{uuid.uuid4().hex}"}
        return op, "POST", "/tickets", body, headers
    body = {
        "centre_id": "qp-district",
        "item_code": "QP-GA-601",
        "channel": "counter",
        "date": rng.choice(days).isoformat(),
        "start": rng.choice(STARTS),
    }
    headers = {**auth, "Idempotency-Key": f"load-{uuid.uuid4().hex}"}
    return op, "POST", "/bookings", body, headers


def expected(op: str, status: int) -> bool:
    if op == "ticket_intake":
        return status == 201
    if op == "booking":
        return status == 201 or status in BUSINESS_REFUSALS
    return status == 200


def run_level(base_url: str, clients: int, seconds: float, auth: dict[str, str]) -> Level:
    level = Level(clients, seconds)
    days = working_days_ahead(date.today(), 5)
    start_gate = threading.Barrier(clients + 1)
    deadline = [0.0]

    def work(n: int) -> None:
        rng = random.Random(n)
        user = CITIZENS[n % len(CITIZENS)]
        client = Client(base_url, timeout=60)
        start_gate.wait()
        while time.perf_counter() < deadline[0]:
            op, method, path, body, headers = operation(rng, user, auth[user], days)
            began = time.perf_counter()
            try:
                status, _ = client.request(method, path, body, headers)
                error = None if expected(op, status) else f"status {status}"
            except (OSError, http.client.HTTPException) as exc:
                status, error = None, type(exc).__name__
                client.close()
            level.record(op, time.perf_counter() - began, status, error)
        client.close()

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start_gate.wait()
    for thread in threads:
        thread.join()
    level.elapsed = time.perf_counter() - began  # includes the requests in flight at the end
    return level


def baseline_latency(base_url: str, count: int = 30) -> float:
    """A path no route serves: the HTTP stack alone, without the app's work or an AWS call."""
    client = Client(base_url, 30)
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        client.request("GET", "/no-such-route")
        samples.append(time.perf_counter() - began)
    client.close()
    return statistics.median(samples)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class Runner:
    """`python -m local.runner` on its own ports with a throwaway DATA_DIR."""

    def __init__(self, port: int, aws_port: int) -> None:
        self.port, self.aws_port = port, aws_port
        self.data_dir = tempfile.mkdtemp(prefix="qphb-load-")
        self.process: subprocess.Popen | None = None
        self.log = open(os.path.join(self.data_dir, "runner.log"), "wb")  # noqa: SIM115

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> None:
        env = {
            **os.environ,
            "PORT": str(self.port),
            "AWS_PORT": str(self.aws_port),
            "DATA_DIR": self.data_dir,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.runner"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        limit = time.monotonic() + timeout
        while time.monotonic() < limit:
            if self.process.poll() is not None:
                output = self.tail()
                self.stop()
                raise SystemExit(f"the local runner exited ({self.process.returncode}):\n{output}")
            try:
                status, _ = Client(self.base_url, 30).request("GET", "/openapi.json")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        output = self.tail()
        self.stop()
        raise SystemExit(f"the local runner did not answer within {timeout:.0f} s:\n{output}")

    def tail(self) -> str:
        self.log.flush()
        text = Path(self.log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-20:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="an API already running (else the bench starts one)")
    parser.add_argument("--seconds", type=float, default=20.0, help="per level (default 20)")
    parser.add_argument("--levels", default="1,8,32", help="client counts (default 1,8,32)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8060))
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("AWS_PORT") or 4560))
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",") if n.strip()]

    runner = None
    base_url = args.base_url
    if base_url is None:
        runner = Runner(args.port, args.aws_port)
        print(f"starting the local runner on port {args.port} (AWS {args.aws_port}) …", flush=True)
        runner.start()
        base_url = runner.base_url
    try:
        auth = tokens(base_url)
        baseline = baseline_latency(base_url)
        results = [run_level(base_url, n, args.seconds, auth) for n in levels]
    finally:
        if runner is not None:
            runner.stop()

    print(f"\nbaseline (unrouted path) p50 at 1 client: {baseline * 1000:.1f} ms")
    print(
        f"{'clients':>7} {'answered':>8} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p50/base':>8} {'errors':>6} {'refused':>7}"
    )
    report = []
    for level in results:
        values = level.all_latencies()
        answered = sum(n for status, n in level.statuses.items() if status is not None)
        rate = answered / level.elapsed if level.elapsed else 0.0
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        errors = sum(level.errors.values())
        print(
            f"{level.clients:>7} {answered:>8} {rate:>7.1f} {p50 * 1000:>8.0f} "
            f"{p99 * 1000:>8.0f} {p50 / baseline:>8.1f} {errors:>6} {level.refused:>7}"
        )
        per_op = {
            op: {
                "count": len(xs),
                "p50_ms": round(percentile(xs, 0.5) * 1000, 1),
                "p99_ms": round(percentile(xs, 0.99) * 1000, 1),
            }
            for op, xs in sorted(level.latencies.items())
        }
        for op, figures in per_op.items():
            print(
                f"{'':>7}   {op:<14} n={figures['count']:<5} p50 {figures['p50_ms']:>7.0f} ms"
                f"  p99 {figures['p99_ms']:>7.0f} ms"
            )
        if level.errors:
            print(f"{'':>7}   errors: {dict(level.errors.most_common(5))}")
        report.append(
            {
                "clients": level.clients,
                "seconds": round(level.elapsed, 2),
                "answered": answered,
                "requests_per_s": round(rate, 2),
                "p50_ms": round(p50 * 1000, 1),
                "p99_ms": round(p99 * 1000, 1),
                "p50_to_baseline": round(p50 / baseline, 2),
                "p99_to_baseline": round(p99 / baseline, 2),
                "errors": errors,
                "refused": level.refused,
                "operations": per_op,
            }
        )
    goal = next((r for r in report if r["clients"] == 32), None)
    met = bool(goal and goal["requests_per_s"] >= 50 and goal["errors"] == 0)
    print(f"goal ≥ 50 req/s at 32 clients with 0 errors: {'met' if met else 'not met'}")
    print(
        json.dumps(
            {
                "baseline_unrouted_p50_ms": round(baseline * 1000, 2),
                "levels": report,
                "goal": {"clients": 32, "requests_per_s": 50, "errors": 0, "met": met},
            },
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
