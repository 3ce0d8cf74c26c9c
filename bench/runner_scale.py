"""The local runner at scale: connection errors under a crowd, the embedded AWS's memory under
steady load, `POST /tickets` latency with 10,000 stored tickets, start and stop times.

Drives a real `python -m local.runner` on its own ports with a fresh DATA_DIR:

1. start (until the banner), then 64 clients open connections at once (a barrier), each
   making `--requests` calls of `GET /me` on new connections: connection errors counted;
2. `POST /tickets` latency, sequential, on the empty system (the baseline);
3. steady load for `--load-seconds` (default 120; `--long` for 10 minutes): 8 clients filing
   tickets and reading them back on keep-alive connections, then as long with 8 clients only
   reading; the embedded AWS's RSS is sampled every 5 s: growth over the second half of each
   period, in MB per minute (under writes the data itself grows, under reads nothing should);
4. 10,000 tickets written straight into the embedded AWS (BatchWriteItem of copies of a real
   ticket's items, each with its own id and owner), then `POST /tickets` latency again:
   reported as a ratio to the baseline measured in the same run;
5. a clean stop (SIGINT until exit) and a start (until the banner) at 10,000 tickets, and a
   start after a SIGKILL (journal replay).

`--only kill`: repeated SIGKILL trials, `--trials` per kind (the runner; the embedded AWS
alone): 4 clients file tickets, the process is killed once `--kill-after` were answered 201,
the runner is started again on the same data and every ticket answered 201 is looked up: the
acknowledged-but-lost count per trial, and each restart's time. The tickets are routed at once
(two clocks, a department notification): after the restart the runner's clock moves one repair
period on and the side effects still missing are counted per trial, with the time they took.
`--only memory`: the embedded AWS's RSS (sampled every 5 s) under (a) `--memory-minutes`
(default 10) of a read-only steady load (8 clients: a ticket, the guide, my tickets, knowledge
search), where nothing is stored and any growth is the server's, then (b) as long of a steady
mixed load (each round files a ticket first), and (c) the cost of a stored ticket (2,000 copies
of a real ticket's items written straight in): MB per minute (least squares, whole phase and
second half), items stored per filed ticket from `GET /_local/stats`, stream records,
iterators and messages kept, and the growth not explained by the data stored.

    .venv/bin/python bench/runner_scale.py [--port 8030 --aws-port 4530] [--long]
    .venv/bin/python bench/runner_scale.py --only kill [--trials 3]
    .venv/bin/python bench/runner_scale.py --only memory [--memory-minutes 10]

Prints a table, then, as the last line, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import requests

ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "按 Ctrl-C 停止"
TICKETS_TABLE = "qphb-local-tickets"


class Runner:
    def __init__(self, data_dir: Path, port: int, aws_port: int):
        self.port, self.aws_port = port, aws_port
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QPHB_", "AWS_"))}
        env.update(PORT=str(port), AWS_PORT=str(aws_port), DATA_DIR=str(data_dir))
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.runner"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.ready = threading.Event()
        self.lines: list[str] = []
        self.start_seconds: float | None = None

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line)
                if READY_LINE in line and self.start_seconds is None:
                    self.start_seconds = time.monotonic() - started
                    self.ready.set()
            self.ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not self.ready.wait(600) or self.start_seconds is None:
            raise SystemExit("runner did not start:\n" + "".join(self.lines[-40:]))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def moto_pid(self) -> int:
        pid = self.process.pid
        return int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])

    def moto_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.moto_pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> float:
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=600)
        return time.monotonic() - started

    def kill(self) -> None:
        moto = self.moto_pid()
        self.process.kill()
        self.process.wait(timeout=30)
        for _ in range(300):  # it exits when its stdin closes
            if not Path(f"/proc/{moto}").exists():
                return
            time.sleep(0.1)

    def kill_aws(self) -> None:
        """SIGKILL the embedded AWS alone; the runner notices and exits."""
        os.kill(self.moto_pid(), signal.SIGKILL)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=f"http://127.0.0.1:{self.aws_port}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )


def token(runner: Runner, user_id: str = "u-citizen-zhang") -> str:
    answer = requests.post(runner.url("/dev/tokens"), json={"user_id": user_id}, timeout=30)
    answer.raise_for_status()
    return answer.json()["token"]


def file_ticket(
    session: Any, runner: Runner, bearer: str, key: str, *, routed: bool = False
) -> Any:
    """A ticket; `routed` ones name 医保 and are routed at once by a rule: two clocks and a
    department notification (the side effects the kill trials check)."""
    topic = "医保报销" if routed else "办事窗口排队过久"
    return session.post(
        runner.url("/tickets"),
        headers={"Authorization": f"Bearer {bearer}", "Idempotency-Key": key},
        json={
            "kind": "other",
            "channel": "mini_program",
            "description": f"压力测试：{topic}，无法办结（{key}）",
            "contact": {"method": "phone"},
        },
        timeout=120,
    )


def crowd(runner: Runner, clients: int, per_client: int) -> dict[str, int]:
    bearer = token(runner)
    barrier = threading.Barrier(clients)
    counts = {"ok": 0, "connection_errors": 0, "other": 0}
    lock = threading.Lock()

    def client() -> None:
        barrier.wait()
        for _ in range(per_client):
            try:
                # A new connection each time: the listen backlog is what is measured.
                answer = requests.get(
                    runner.url("/me"),
                    headers={"Authorization": f"Bearer {bearer}", "Connection": "close"},
                    timeout=120,
                )
                outcome = "ok" if answer.status_code == 200 else "other"
            except requests.ConnectionError:
                outcome = "connection_errors"
            with lock:
                counts[outcome] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts


def latency(runner: Runner, count: int, label: str) -> list[float]:
    bearer = token(runner)
    timings = []
    with requests.Session() as session:
        for n in range(count):
            started = time.perf_counter()
            answer = file_ticket(session, runner, bearer, f"{label}-{n:04d}")
            timings.append(time.perf_counter() - started)
            assert answer.status_code == 201, answer.text
    return timings


def steady_load(
    runner: Runner, seconds: float, clients: int = 8, *, writes: bool = True
) -> dict[str, Any]:
    """Clients filing tickets and reading each back (`writes`), or only reading tickets filed
    before: under writes the data itself grows; under reads nothing should."""
    bearer = token(runner)
    stop = threading.Event()
    filed = {"ok": 0, "errors": 0}
    lock = threading.Lock()
    with requests.Session() as session:
        existing = [
            file_ticket(session, runner, bearer, f"read-{n:03d}").json()["ticket_id"]
            for n in range(clients)
        ]

    def client(n: int) -> None:
        with requests.Session() as session:
            number = 0
            while not stop.is_set():
                number += 1
                try:
                    ticket_id = existing[n]
                    ok = True
                    if writes:
                        answer = file_ticket(session, runner, bearer, f"load-{n}-{number:05d}")
                        ok = answer.status_code == 201
                        ticket_id = answer.json()["ticket_id"] if ok else ticket_id
                    read = session.get(
                        runner.url(f"/tickets/{ticket_id}"),
                        headers={"Authorization": f"Bearer {bearer}"},
                        timeout=120,
                    )
                    outcome = "ok" if ok and read.status_code == 200 else "errors"
                except requests.RequestException:
                    outcome = "errors"
                with lock:
                    filed[outcome] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        samples.append((time.monotonic() - started, runner.moto_rss_mb()))
        time.sleep(5)
    stop.set()
    for thread in threads:
        thread.join()
    half = [s for s in samples if s[0] >= seconds / 2]
    (t0, rss0), (t1, rss1) = half[0], half[-1]
    growth = (rss1 - rss0) / max((t1 - t0) / 60, 1e-9)
    return {
        "seconds": seconds,
        "writes": writes,
        "rounds": filed["ok"],
        "errors": filed["errors"],
        "rss_mb_start": round(samples[0][1], 1),
        "rss_mb_half": round(rss0, 1),
        "rss_mb_end": round(rss1, 1),
        "rss_growth_mb_per_min_second_half": round(growth, 2),
    }


def seed_tickets(runner: Runner, count: int) -> float:
    """Copies of one real ticket's items, each with its own ticket id and owner."""
    dynamodb = runner.aws("dynamodb")
    # One read of the (still small) table to find a ticket filed through the API: a bench, not
    # a request path.
    page = dynamodb.scan(
        TableName=TICKETS_TABLE,
        FilterExpression="begins_with(ticket_id, :t) AND attribute_exists(owner_key)",
        ExpressionAttributeValues={":t": {"S": ""}},
    )
    sample = page["Items"][0]
    ticket_id = sample["ticket_id"]["S"]
    owner = sample["owner_key"]["S"]
    rows = dynamodb.query(
        TableName=TICKETS_TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": sample["pk"]},
    )["Items"]
    template = json.dumps(rows, ensure_ascii=False)
    started = time.monotonic()
    batch: list[dict[str, Any]] = []
    for n in range(count):
        copy = template.replace(ticket_id, f"{ticket_id[:-6]}{n:06d}").replace(
            owner, f"u#u-bench-{n % 500:03d}"
        )
        batch += [{"PutRequest": {"Item": item}} for item in json.loads(copy)]
        while len(batch) >= 25:
            request, batch = batch[:25], batch[25:]
            _write(dynamodb, request)
    if batch:
        _write(dynamodb, batch)
    return time.monotonic() - started


def _write(dynamodb: Any, request: list[dict[str, Any]]) -> None:
    pending: Any = {TICKETS_TABLE: request}
    while pending:
        pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems")


def kill_trials(
    data_dir: Path, port: int, aws_port: int, trials: int, kill_after: int
) -> list[dict[str, Any]]:
    """SIGKILL while 4 clients file tickets; after the restart, every ticket answered 201 must
    be there. One restart is the next trial's runner."""
    results = []
    runner = Runner(data_dir, port, aws_port)
    for kind in ("runner", "embedded_aws"):
        for trial in range(trials):
            acknowledged = file_until_killed(runner, f"kill-{kind}-{trial}", kill_after, kind)
            runner = Runner(data_dir, port, aws_port)
            lost = missing_tickets(runner, list(acknowledged))
            effects, waited = effects_after_one_repair_period(runner, list(acknowledged))
            results.append(
                {
                    "kind": kind,
                    "trial": trial + 1,
                    "acknowledged": len(acknowledged),
                    "lost": len(lost),
                    "restart_s": round(runner.start_seconds or 0, 1),
                    "effects_missing": {k: len(v) for k, v in effects.items()},
                    "effects_applied_s": waited,
                }
            )
            print(json.dumps(results[-1]), flush=True)
    runner.stop()
    return results


def _repair_minutes() -> int:
    """The `effects-repair` schedule's rate."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from chalicelib import topology

    return next(s.rate_minutes for s in topology.SCHEDULES if s.name == "effects-repair")


def effects_missing(runner: Runner, ticket_ids: list[str]) -> dict[str, list[str]]:
    """Per kind, what filing a routed ticket must have left and has not (yet)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from local.effects_check import effects_missing as missing_in

    return missing_in(runner.aws("dynamodb"), ticket_ids)


def effects_after_one_repair_period(
    runner: Runner, ticket_ids: list[str]
) -> tuple[dict[str, list[str]], float]:
    """Move the runner's clock one repair period on, then poll (up to 120 s) until every
    effect is there: what is still missing, and how long it took."""
    moved = requests.post(
        runner.url("/dev/clock"), json={"advance_minutes": _repair_minutes() + 1}, timeout=60
    )
    moved.raise_for_status()
    started = time.monotonic()
    missing = effects_missing(runner, ticket_ids)
    while any(missing.values()) and time.monotonic() - started < 120:
        time.sleep(1)
        missing = effects_missing(runner, ticket_ids)
    return missing, round(time.monotonic() - started, 1)


def file_until_killed(runner: Runner, prefix: str, kill_after: int, kind: str) -> list[str]:
    """4 clients filing tickets; SIGKILL once `kill_after` were answered 201. The ids answered
    201, including those answered while the kill was on its way."""
    bearer = token(runner)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with requests.Session() as session:
            number = 0
            while not stop.is_set():
                number += 1
                try:
                    answer = file_ticket(
                        session, runner, bearer, f"{prefix}-{n}-{number:05d}", routed=True
                    )
                except requests.RequestException:
                    return  # the process is gone
                if answer.status_code == 201:
                    with lock:
                        acknowledged.append(answer.json()["ticket_id"])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    while len(acknowledged) < kill_after and all(t.is_alive() for t in threads):
        threads[0].join(0.05)
    if kind == "runner":
        runner.kill()
    else:
        runner.kill_aws()
    stop.set()
    for thread in threads:
        thread.join(timeout=150)
    return list(acknowledged)


def missing_tickets(runner: Runner, ticket_ids: list[str]) -> list[str]:
    headers = {"Authorization": f"Bearer {token(runner)}"}
    with requests.Session() as session:
        return [
            t
            for t in ticket_ids
            if session.get(runner.url(f"/tickets/{t}"), headers=headers, timeout=60).status_code
            != 200
        ]


def _code(answer: Any) -> str:
    try:
        return str(answer.json().get("code"))
    except ValueError:
        return ""


_MIXED_READS = ("/items/QP-SC-103", "/me/tickets?limit=20", "/kb/search?q=%E8%90%A5%E4%B8%9A")


def aws_stats(runner: Runner) -> dict[str, Any]:
    """What the embedded AWS holds (items, stream records, iterators, messages)."""
    answer = requests.get(f"http://127.0.0.1:{runner.aws_port}/_local/stats", timeout=60)
    answer.raise_for_status()
    return dict(answer.json())


def _slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares MB per minute (endpoints alone are at the mercy of one noisy sample)."""
    if len(samples) < 2:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in samples)
    mean_r = statistics.fmean(r for _, r in samples)
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return 0.0
    per_second = sum((t - mean_t) * (r - mean_r) for t, r in samples) / spread
    return round(per_second * 60, 2)


def memory_run(
    runner: Runner, seconds: float, clients: int = 8, *, writes: bool = True, label: str = "mem"
) -> dict[str, Any]:
    """Steady load, RSS sampled every 5 s. With `writes` each round files a ticket, reads it
    back and makes one of the reads above; without, it reads a ticket filed before and one of
    the reads above (nothing is stored: any growth is kept by the server, not data)."""
    bearer = token(runner)
    stop = threading.Event()
    counts = {"rounds": 0, "errors": 0, "tickets": 0}
    errors: dict[str, int] = {}
    lock = threading.Lock()
    existing: list[str] = []
    if not writes:
        with requests.Session() as session:
            existing = [
                file_ticket(session, runner, bearer, f"{label}-read-{n:03d}").json()["ticket_id"]
                for n in range(clients)
            ]

    def client(n: int) -> None:
        headers = {"Authorization": f"Bearer {bearer}"}
        with requests.Session() as session:
            number = 0
            while not stop.is_set():
                number += 1
                failed = None
                try:
                    ticket_id = existing[n] if existing else None
                    if writes:
                        filed = file_ticket(session, runner, bearer, f"{label}-{n}-{number:06d}")
                        if filed.status_code == 201:
                            ticket_id = filed.json()["ticket_id"]
                        else:
                            failed = f"POST /tickets {filed.status_code} {_code(filed)}"
                    if failed is None:
                        path = _MIXED_READS[number % len(_MIXED_READS)]
                        reads = ((f"/tickets/{ticket_id}", "/tickets/{id}"), (path, path))
                        for read, shown in reads:
                            answer = session.get(runner.url(read), headers=headers, timeout=120)
                            if answer.status_code != 200:
                                failed = f"GET {shown.split('?')[0]} {answer.status_code}"
                                break
                except requests.RequestException as error:
                    failed = type(error).__name__
                with lock:
                    counts["errors" if failed else "rounds"] += 1
                    counts["tickets"] += int(failed is None and writes)
                    if failed:
                        errors[failed] = errors.get(failed, 0) + 1

    before = aws_stats(runner)
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        samples.append((time.monotonic() - started, runner.moto_rss_mb()))
        time.sleep(5)
    samples.append((time.monotonic() - started, runner.moto_rss_mb()))
    stop.set()
    for thread in threads:
        thread.join()
    after = aws_stats(runner)

    second = [x for x in samples if x[0] >= seconds / 2]
    minutes = seconds / 60
    added = {
        name: figures["items"] - before["tables"].get(name, {}).get("items", 0)
        for name, figures in after["tables"].items()
    }
    return {
        "seconds": seconds,
        "clients": clients,
        "writes": writes,
        **counts,
        "error_kinds": errors,
        "rss_mb_start": round(samples[0][1], 1),
        "rss_mb_half": round(second[0][1], 1),
        "rss_mb_end": round(samples[-1][1], 1),
        "rss_mb_max": round(max(r for _, r in samples), 1),
        "rss_mb_per_min": _slope(samples),
        "rss_mb_per_min_second_half": _slope(second),
        "tickets_per_min": round(counts["tickets"] / minutes, 1),
        "items_added": sum(added.values()),
        "items_added_by_table": {k: v for k, v in sorted(added.items()) if v},
        "stream_records": [before["stream_records"], after["stream_records"]],
        "stream_records_by_table": {
            name: table["stream_records"]
            for name, table in sorted(after["tables"].items())
            if table["stream_records"]
        },
        "shard_iterators": [before["shard_iterators"], after["shard_iterators"]],
        "sqs_messages": [before["sqs_messages"], after["sqs_messages"]],
        "sqs_deleted_handles": [before["sqs_deleted_handles"], after["sqs_deleted_handles"]],
        "ttl_expired": after["ttl_expired"] - before["ttl_expired"],
        "rss_samples": [[round(t), round(r, 1)] for t, r in samples[:: max(1, len(samples) // 20)]],
    }


def stored_cost(runner: Runner, tickets: int) -> dict[str, Any]:
    """MB per stored ticket: copies of a real ticket's items written straight into the
    embedded AWS (no requests through the app, no idempotency records or audit facts)."""
    before_rss, before = runner.moto_rss_mb(), aws_stats(runner)
    seed_tickets(runner, tickets)
    requests.post(f"http://127.0.0.1:{runner.aws_port}/_local/housekeeping", timeout=60)
    after_rss, after = runner.moto_rss_mb(), aws_stats(runner)
    items = after["items"] - before["items"]
    grown = after_rss - before_rss
    return {
        "tickets": tickets,
        "items": items,
        "rss_mb_grown": round(grown, 1),
        "mb_per_stored_ticket": round(grown / tickets, 4),
        "kb_per_item": round(grown * 1024 / max(items, 1), 2),
    }


def memory_figures(runner: Runner, minutes: float) -> dict[str, Any]:
    """(a) read-only steady load, (b) steady mixed load, each `minutes` long after a short
    warm-up, then (c) the cost of a stored ticket. Under (b) the growth is set against the items
    it stored at (c)'s cost per item: what is left is kept by the server, not data."""
    # Each run its own idempotency keys: a key filed before answers from its record and
    # stores nothing.
    memory_run(runner, 30, label="warm")  # every code path and table touched once
    reads = memory_run(runner, minutes * 60, writes=False, label="reads")
    mixed = memory_run(runner, minutes * 60, label="mixed")
    stored = stored_cost(runner, 2000)
    data_mb_per_min = mixed["items_added"] / minutes * stored["kb_per_item"] / 1024
    return {
        "read_only": reads,
        "mixed": mixed,
        "stored": stored,
        "mixed_mb_per_filed_ticket": round(
            (mixed["rss_mb_end"] - mixed["rss_mb_start"]) / max(mixed["tickets"], 1), 4
        ),
        "mixed_items_per_filed_ticket": round(mixed["items_added"] / max(mixed["tickets"], 1), 1),
        "mixed_data_mb_per_min_estimate": round(data_mb_per_min, 2),
        "mixed_not_data_mb_per_min_estimate": round(mixed["rss_mb_per_min"] - data_mb_per_min, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8030)
    parser.add_argument("--aws-port", type=int, default=4530)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=5, help="per client in the crowd")
    parser.add_argument("--load-seconds", type=float, default=120)
    parser.add_argument("--long", action="store_true", help="10 minutes of steady load")
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=20, help="POST /tickets for a p50")
    parser.add_argument("--only", choices=("scale", "kill", "memory"), default="scale")
    parser.add_argument("--trials", type=int, default=3, help="SIGKILL trials per kind")
    parser.add_argument("--kill-after", type=int, default=40, help="tickets acknowledged")
    parser.add_argument("--memory-minutes", type=float, default=10)
    args = parser.parse_args()
    load_seconds = 600.0 if args.long else args.load_seconds
    if args.only != "scale":
        other_runs(args)
        return

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="runner-scale-") as temporary:
        data_dir = Path(temporary) / "data"
        runner = Runner(data_dir, args.port, args.aws_port)
        figures["start_empty_s"] = round(runner.start_seconds or 0, 1)
        figures["crowd"] = {"clients": args.clients, **crowd(runner, args.clients, args.requests)}
        empty = latency(runner, args.samples, "empty")
        figures["post_ticket_p50_empty_s"] = round(statistics.median(empty), 3)
        figures["steady_load"] = steady_load(runner, load_seconds)
        figures["read_load"] = steady_load(runner, load_seconds, writes=False)
        figures["seed_seconds"] = round(seed_tickets(runner, args.tickets), 1)
        figures["tickets_seeded"] = args.tickets
        full = latency(runner, args.samples, "full")
        figures["post_ticket_p50_full_s"] = round(statistics.median(full), 3)
        figures["post_ticket_ratio_full_vs_empty"] = round(
            figures["post_ticket_p50_full_s"] / figures["post_ticket_p50_empty_s"], 2
        )
        figures["rss_mb_full"] = round(runner.moto_rss_mb(), 1)
        figures["stop_full_s"] = round(runner.stop(), 1)
        runner = Runner(data_dir, args.port, args.aws_port)
        figures["start_full_s"] = round(runner.start_seconds or 0, 1)
        latency(runner, 5, "after-restart")  # something in the journal to replay
        runner.kill()
        runner = Runner(data_dir, args.port, args.aws_port)
        figures["start_full_after_sigkill_s"] = round(runner.start_seconds or 0, 1)
        figures["banner_timings"] = [line.strip() for line in runner.lines if "启动耗时" in line]
        runner.stop()

    crowd_figures = figures["crowd"]
    load = figures["steady_load"]
    reads = figures["read_load"]
    print(f"{'figure':44} value")
    for label, value in (
        ("start, empty data (s)", figures["start_empty_s"]),
        (
            f"crowd: {args.clients} clients x {args.requests}: ok / connection errors",
            f"{crowd_figures['ok']} / {crowd_figures['connection_errors']}",
        ),
        ("POST /tickets p50, empty (s)", figures["post_ticket_p50_empty_s"]),
        (
            f"write load {load['seconds']:.0f} s: file+read rounds / errors",
            f"{load['rounds']} / {load['errors']}",
        ),
        (
            "  embedded AWS RSS start / half / end (MB)",
            f"{load['rss_mb_start']} / {load['rss_mb_half']} / {load['rss_mb_end']}",
        ),
        ("  RSS growth, second half (MB/min)", load["rss_growth_mb_per_min_second_half"]),
        (
            f"read load {reads['seconds']:.0f} s: reads / errors",
            f"{reads['rounds']} / {reads['errors']}",
        ),
        (
            "  embedded AWS RSS start / half / end (MB)",
            f"{reads['rss_mb_start']} / {reads['rss_mb_half']} / {reads['rss_mb_end']}",
        ),
        ("  RSS growth, second half (MB/min)", reads["rss_growth_mb_per_min_second_half"]),
        (f"seed {args.tickets} tickets (s)", figures["seed_seconds"]),
        ("POST /tickets p50, full (s)", figures["post_ticket_p50_full_s"]),
        ("  ratio full / empty", figures["post_ticket_ratio_full_vs_empty"]),
        ("embedded AWS RSS, full (MB)", figures["rss_mb_full"]),
        ("clean stop, full (s)", figures["stop_full_s"]),
        ("start, full (s)", figures["start_full_s"]),
        ("start after SIGKILL, full (s)", figures["start_full_after_sigkill_s"]),
    ):
        print(f"{label:44} {value}")
    print(json.dumps(figures, ensure_ascii=False))


def other_runs(args: Any) -> None:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="runner-scale-") as temporary:
        data_dir = Path(temporary) / "data"
        if args.only == "kill":
            trials = kill_trials(data_dir, args.port, args.aws_port, args.trials, args.kill_after)
            figures["kill_trials"] = trials
            print(
                f"{'kind':14} {'trial':>5} {'acknowledged':>12} {'lost':>5} {'restart s':>9}"
                f" {'effects missing (clocks/due/notif.)':>36} {'applied in s':>12}"
            )
            for t in trials:
                gaps = t["effects_missing"]
                shown = f"{gaps['clocks']}/{gaps['due_items']}/{gaps['notifications']}"
                print(
                    f"{t['kind']:14} {t['trial']:>5} {t['acknowledged']:>12} {t['lost']:>5}"
                    f" {t['restart_s']:>9} {shown:>36} {t['effects_applied_s']:>12}"
                )
            figures["lost_total"] = sum(t["lost"] for t in trials)
            figures["effects_missing_total"] = sum(
                sum(t["effects_missing"].values()) for t in trials
            )
        else:
            runner = Runner(data_dir, args.port, args.aws_port)
            try:
                memory = memory_figures(runner, args.memory_minutes)
            finally:
                runner.stop()
            figures["memory"] = memory
            print_memory(memory)
    print(json.dumps(figures, ensure_ascii=False))


def print_memory(memory: dict[str, Any]) -> None:
    reads, mixed, stored = memory["read_only"], memory["mixed"], memory["stored"]
    print(f"{'figure':52} value")
    for label, value in (
        ("(a) read-only: rounds / errors", f"{reads['rounds']} / {reads['errors']}"),
        ("    RSS start / end (MB)", f"{reads['rss_mb_start']} / {reads['rss_mb_end']}"),
        ("    RSS MB/min (all / second half)", _pair(reads)),
        ("(b) mixed: tickets filed / errors", f"{mixed['tickets']} / {mixed['errors']}"),
        ("    RSS start / end (MB)", f"{mixed['rss_mb_start']} / {mixed['rss_mb_end']}"),
        ("    RSS MB/min (all / second half)", _pair(mixed)),
        ("    items stored per filed ticket", memory["mixed_items_per_filed_ticket"]),
        ("    MB per filed ticket (RSS growth / tickets)", memory["mixed_mb_per_filed_ticket"]),
        ("    stream records kept (start / end)", "{} / {}".format(*mixed["stream_records"])),
        ("    shard iterators (start / end)", "{} / {}".format(*mixed["shard_iterators"])),
        ("    SQS messages (start / end)", "{} / {}".format(*mixed["sqs_messages"])),
        (
            "    data MB/min (items x KB per item), estimate",
            memory["mixed_data_mb_per_min_estimate"],
        ),
        ("    not data MB/min, estimate", memory["mixed_not_data_mb_per_min_estimate"]),
        (f"(c) {stored['tickets']} stored tickets: items", stored["items"]),
        ("    MB per stored ticket", stored["mb_per_stored_ticket"]),
        ("    KB per stored item", stored["kb_per_item"]),
    ):
        print(f"{label:52} {value}")


def _pair(run: dict[str, Any]) -> str:
    return f"{run['rss_mb_per_min']} / {run['rss_mb_per_min_second_half']}"


if __name__ == "__main__":
    main()
