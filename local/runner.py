"""`make run`: the whole system on one machine, every seam real.

Starts moto's server as the embedded AWS (single-threaded: each request is atomic; it journals
every acknowledged write and restores its own state at start), provisions the topology, seeds
the demo data, serves the Chalice app over HTTP and pumps SQS messages, DynamoDB stream records
and schedules into the registered handlers. Department webhooks go to a loopback receiver.
Ctrl-C (or SIGTERM) stops answering, stops the pumps, then has the embedded AWS write a
checkpoint; a second Ctrl-C forces.

Environment: PORT (API, 8000), AWS_PORT (embedded AWS, 4566), DATA_DIR (.data/).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import os
import secrets
import select
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
_READY_ATTEMPTS = 600  # x 0.1 s: the embedded AWS replays its journal before it answers
_STOP_JOIN_SECONDS = 30.0
_MOTO_STOP_SECONDS = 30.0  # its last checkpoint
_CLOCK_FILE = "clock.json"
# Written once the demo data is in a data directory: later starts seed only what changes per
# start (the departments' webhook URLs, which point at this start's loopback receiver).
_SEEDED_FILE = "seeded.json"
_AWS_DIR = "aws"

log = logging.getLogger("local.runner")


class StartupError(Exception):
    """Something the person running `make run` must fix (a port in use, a broken snapshot)."""


@dataclass(frozen=True)
class RunnerConfig:
    port: int = 8000
    aws_port: int = 4566
    data_dir: Path = Path(".data")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RunnerConfig:
        env = os.environ if environ is None else environ
        try:
            port = int(env.get("PORT") or 8000)
            aws_port = int(env.get("AWS_PORT") or 4566)
        except ValueError as exc:
            raise StartupError(f"PORT 与 AWS_PORT 须为整数: {exc}") from exc
        data_dir = Path(env.get("DATA_DIR") or ".data")
        if not data_dir.is_absolute():
            data_dir = Path.cwd() / data_dir
        return cls(port, aws_port, data_dir)

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def aws_url(self) -> str:
        return f"http://{HOST}:{self.aws_port}"


def configure_environment(config: RunnerConfig, environ: Any = None) -> None:
    """The QPHB_* settings of the local stage. Must run before chalicelib is imported: settings
    and PynamoDB models bind at import."""
    env = os.environ if environ is None else environ
    # Only a default: a stage the user set is respected (and outside local the functions
    # refuse the local secrets, as they would in AWS).
    env.setdefault("QPHB_STAGE", "local")
    env["QPHB_AWS_ENDPOINT_URL"] = config.aws_url
    # Every boto3 client in the process (Powertools' own included) talks to the embedded AWS.
    env["AWS_ENDPOINT_URL"] = config.aws_url
    env.setdefault("QPHB_AWS_REGION", "us-east-1")
    env["AWS_DEFAULT_REGION"] = env["QPHB_AWS_REGION"]
    env.setdefault("QPHB_RESOURCE_PREFIX", "qphb-local")
    # The local stand-in for the locked seal bucket, beside the snapshot it seals.
    env.setdefault("QPHB_AUDIT_SEAL_PATH", str(config.data_dir / "audit-seals.jsonl"))
    # Dummy credentials: nothing here may ever reach a real AWS account.
    env["AWS_ACCESS_KEY_ID"] = "local"
    env["AWS_SECRET_ACCESS_KEY"] = "local"
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "QingpuHaoban")


def _local_secret(data_dir: Path) -> str:
    """HS256 secret for dev tokens, made once per data directory so tokens outlive a restart;
    provisioned into the embedded AWS's Secrets Manager, where the functions read it."""
    path = data_dir / "dev-token-secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(value)
    return value


# --- the embedded AWS ------------------------------------------------------------------------


class MotoProcess:
    def __init__(self, port: int, data_dir: Path | None = None):
        self.port = port
        self.data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._heads: tuple[float, dict[str, int]] = (0.0, {})
        self._heads_lock = threading.Lock()

    def has_state(self) -> bool:
        """Whether a journal or checkpoint from an earlier run is there."""
        return self.data_dir is not None and any(self.data_dir.glob("*-*.*"))

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        # Checked here, not left to the child: another embedded AWS on this port would answer
        # the readiness poll as if it were ours.
        with socket.socket() as probe:
            # Like the server itself: a port left in TIME_WAIT by the previous run is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, self.port))
            except OSError as exc:
                raise StartupError(
                    f"内置 AWS 端口 {self.port} 已被占用（{exc.strerror}），请设置 AWS_PORT"
                ) from exc
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.moto_server",
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--exit-on-stdin-eof",
                *(["--data-dir", str(self.data_dir)] if self.data_dir is not None else []),
            ],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            # Its own session: Ctrl-C reaches the runner only, which snapshots before stopping it.
            start_new_session=True,
        )

    def wait_ready(self, stop: threading.Event) -> None:
        for _ in range(_READY_ATTEMPTS):
            if not self.alive:
                raise StartupError(f"内置 AWS (moto) 未能启动：端口 {self.port} 可能已被占用")
            if self.generation() is not None:
                return
            if stop.wait(0.1):
                raise StartupError("启动被中断")
        raise StartupError(f"内置 AWS (moto) 在端口 {self.port} 上没有响应")

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def generation(self) -> int | None:
        """The embedded server's DynamoDB write count; None when it does not answer."""
        from local.moto_server import GENERATION_PATH

        try:
            with urllib.request.urlopen(self.url + GENERATION_PATH, timeout=2) as response:
                return int(json.load(response)["generation"])
        except (OSError, ValueError, KeyError):
            return None

    def stream_head(self, table: str) -> int | None:
        """The last sequence number of `table`'s stream; one answer serves every pump for
        0.1 s, so the pumps do not multiply the calls to the single-threaded server."""
        from local.moto_server import STREAMS_PATH

        with self._heads_lock:
            fetched_at, heads = self._heads
            if time.monotonic() - fetched_at > 0.1:
                try:
                    with urllib.request.urlopen(self.url + STREAMS_PATH, timeout=5) as response:
                        streams = json.load(response)["streams"]
                    heads = {name: int(s["last_sequence"]) for name, s in streams.items()}
                except (OSError, ValueError, KeyError):
                    return None
                self._heads = (time.monotonic(), heads)
        return heads.get(table)

    def stop(self, timeout: float = _MOTO_STOP_SECONDS) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()  # it writes a checkpoint, then exits
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process.stdin:
            process.stdin.close()
        self._process = None

    def kill(self) -> None:
        """Second Ctrl-C (also while `stop` waits for the checkpoint): no checkpoint; every
        acknowledged write is in the journal."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()


# --- the HTTP API ----------------------------------------------------------------------------


def make_api_server(app: Any, settings: Any, port: int) -> Any:
    """The Chalice app served as `chalice local` serves it (its request handling, LocalGateway),
    by a threaded HTTP/1.1 server with a real listen backlog and keep-alive, which can stop
    answering cleanly (`ApiServer.stop_answering`). Unknown routes get our 404 shape instead of
    API Gateway's 403 "Missing Authentication Token"."""
    from chalice.config import Config
    from chalice.local import (
        ChaliceRequestHandler,
        CustomLocalChalice,
        ForbiddenError,
        LocalChalice,
        LocalDevServer,
    )

    from chalicelib.entrypoints.http.errors import JSON_CONTENT_TYPE, error_body

    class ApiRequestHandler(ChaliceRequestHandler):
        # Headers and body leave in two writes: with Nagle the body waited for the client's
        # delayed ACK of the headers, 40 ms on every answer.
        disable_nagle_algorithm = True

        def handle(self) -> None:
            self.server.opened(self)
            try:
                super().handle()
            finally:
                self.server.closed(self)

        def handle_one_request(self) -> None:
            # Between requests a keep-alive connection waits here, where a stop closes it; a
            # request already being read or answered is finished first.
            if not self._wait_for_request():
                self.close_connection = True
                return
            try:
                super().handle_one_request()
            finally:
                if not self.server.finished(self):
                    self.close_connection = True

        def _wait_for_request(self) -> bool:
            while not self._buffered():
                if self.server.closing.is_set():
                    return False
                readable, _, _ = select.select([self.connection], [], [], 0.5)
                if readable:
                    break
            return self.server.begin(self)

        def _buffered(self) -> bool:
            """A pipelined request already read into the buffer (select would not see it)."""
            self.connection.setblocking(False)
            try:
                return bool(self.rfile.peek(1))
            except (BlockingIOError, OSError, ValueError):
                return False
            finally:
                self.connection.setblocking(True)

        def _send_error_response(self, error: Any) -> None:
            # We declare no API Gateway authorizers, so chalice local raises ForbiddenError
            # only for a path that matches no route.
            if not isinstance(error, ForbiddenError):
                super()._send_error_response(error)
                return
            request_id = error.headers.get("x-amzn-RequestId", "")
            body = json.dumps(
                error_body("not_found", "请求的接口不存在", request_id),
                ensure_ascii=False,
                separators=(",", ":"),
            )
            headers = {"Content-Type": JSON_CONTENT_TYPE, "X-Request-Id": request_id}
            self._send_http_response(404, headers, body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # every request is logged by the app itself

    if not isinstance(app, LocalChalice):
        # What chalice.local.create_local_server does: a thread-local current_request.
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    config = Config.create(
        chalice_stage="local",
        app_name=settings.service_name,
        chalice_app=app,
        lambda_timeout=30,
        lambda_memory_size=512,
    )
    try:
        server = LocalDevServer(
            app, config, HOST, port, handler_cls=ApiRequestHandler, server_cls=ApiServer
        )
    except OSError as exc:
        raise StartupError(f"API 端口 {port} 无法使用（{exc.strerror}），请设置 PORT") from exc
    return server


class ApiServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """One thread per connection, a listen backlog of 128 (http.server's 5 resets a crowd),
    and a stop that closes the listener and every keep-alive connection after its current
    request."""

    request_queue_size = 128
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.closing = threading.Event()
        self._connections: set[Any] = set()
        self._busy: set[Any] = set()
        self._changed = threading.Condition()

    def opened(self, handler: Any) -> None:
        with self._changed:
            self._connections.add(handler)

    def closed(self, handler: Any) -> None:
        with self._changed:
            self._connections.discard(handler)
            self._busy.discard(handler)
            self._changed.notify_all()

    def begin(self, handler: Any) -> bool:
        """A request arrived on `handler`'s connection; False once the server is stopping."""
        with self._changed:
            if self.closing.is_set():
                return False
            self._busy.add(handler)
            return True

    def finished(self, handler: Any) -> bool:
        """The request is answered; False when the connection must close now."""
        with self._changed:
            self._busy.discard(handler)
            return not self.closing.is_set()

    def stop_answering(self, timeout: float) -> int:
        """Stop accepting and close the listener, close every idle keep-alive connection, let
        each busy one finish its request and close it. Returns the connections still open
        after `timeout`."""
        self.shutdown()
        self.server_close()
        with self._changed:
            for handler in self._connections - self._busy:
                with contextlib.suppress(OSError):
                    handler.connection.shutdown(socket.SHUT_RDWR)
            self.closing.set()
            deadline = time.monotonic() + timeout
            while self._connections and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            return len(self._connections)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up before its answer is not an error worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


# --- the runner ------------------------------------------------------------------------------


class Runner:
    def __init__(self, config: RunnerConfig):
        self.config = config
        self.stop_requested = threading.Event()
        self._pumps_stop = threading.Event()
        self._streams_stop = threading.Event()
        self.moto = MotoProcess(config.aws_port, config.data_dir / _AWS_DIR)
        self.receiver: Any = None
        self.api_server: Any = None
        self._api_thread: threading.Thread | None = None
        self._threads: list[Any] = []
        self._stream_threads: list[Any] = []
        self._schedule_thread: Any = None
        self.clock: Any = None
        self._saved_offset: int | None = None
        self.sqs_pumps: list[Any] = []
        self.stream_pumps: list[Any] = []
        self.warnings: list[str] = []
        self.restored: Any = None
        self._started = False
        self.has_dev_clock = False
        self.timings: dict[str, float] = {}

    def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        configure_environment(self.config)
        self._start_receiver()
        self._start_regions()
        had_state = self.moto.has_state()
        self.moto.start()

        from chalicelib.settings import get_settings, reset_settings_cache

        reset_settings_cache()
        settings = get_settings()
        from app import app  # after the environment: settings and models bind at import

        self.has_dev_clock = "/dev/clock" in app.routes
        self.api_server = make_api_server(app, settings, self.config.port)
        began = time.monotonic()
        self.moto.wait_ready(self.stop_requested)
        self.timings["embedded_aws_ready"] = time.monotonic() - began
        container = self._prepare_data(settings, import_snapshot=not had_state)
        from local.migrations import migrate

        # A fresh directory needs no upgrade, unless an older snapshot was just imported into it.
        fresh = not had_state and self.restored is None
        migrated = migrate(self.config.data_dir, container, fresh=fresh)
        if any(migrated.values()):
            log.info("data directory upgraded: %s", migrated)
        self._start_pumps(app, container, settings)
        seeding = time.monotonic()
        seeded = self.config.data_dir / _SEEDED_FILE
        if had_state and seeded.exists():
            self._seed_per_start(container)
        else:
            self._seed(container)
            _write_json(seeded, {"seeded_at": container.clock.now().isoformat()})
        self.timings["seed"] = time.monotonic() - seeding
        self._api_thread = threading.Thread(
            target=self.api_server.server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="api",
            daemon=True,
        )
        self._api_thread.start()
        self._started = True

    def _start_receiver(self) -> None:
        from local.seed import WEBHOOK_SECRETS
        from local.webhook_receiver import WebhookReceiver

        self.receiver = WebhookReceiver(HOST, port=0, secrets=WEBHOOK_SECRETS)
        self.receiver.start()
        os.environ["QPHB_WEBHOOK_RECEIVER_URL"] = self.receiver.base_url

    def _prepare_data(self, settings: Any, *, import_snapshot: bool) -> Any:
        from datetime import timedelta

        from chalicelib.adapters.clock import ManualClock
        from chalicelib.bootstrap import Container, set_container
        from local.provision import provision

        provision(settings, dev_token_secret=_local_secret(self.config.data_dir))
        # Follows the system clock, moved ahead by `/dev/clock`.
        clock = ManualClock(follow_system=True, on_move=self._clock_moved)
        container = Container(settings, clock=clock)
        if import_snapshot:
            self._import_snapshot(settings, container)
        offset = self._read_clock_offset()
        if offset:
            clock.advance(timedelta(seconds=offset))
        self._saved_offset = offset
        self.clock = clock
        set_container(container)
        return container

    def _import_snapshot(self, settings: Any, container: Any) -> None:
        """A data directory written by an earlier version (one `snapshot.json`): its items and
        messages go into the fresh embedded AWS once, which journals them."""
        from local.snapshot import SNAPSHOT_FILE, Snapshotter

        snapshotter = Snapshotter(
            settings,
            self.config.data_dir,
            container.aws.client("dynamodb"),
            container.aws.client("sqs"),
        )
        if not snapshotter.path.exists():
            return
        try:
            self.restored = snapshotter.restore()
        except ValueError as exc:
            raise StartupError(
                f"快照无法读取：{exc}。如需从空数据开始，请删除 {snapshotter.path}"
            ) from exc
        clock_file = self.config.data_dir / _CLOCK_FILE
        if self.restored.clock_offset_seconds and not clock_file.exists():
            _write_json(clock_file, {"offset_seconds": self.restored.clock_offset_seconds})
        snapshotter.path.rename(snapshotter.path.with_name(SNAPSHOT_FILE + ".imported"))

    def _read_clock_offset(self) -> int:
        path = self.config.data_dir / _CLOCK_FILE
        try:
            return int(json.loads(path.read_text(encoding="utf-8"))["offset_seconds"])
        except FileNotFoundError:
            return 0
        except (ValueError, KeyError, TypeError) as exc:
            raise StartupError(f"演示时钟文件无法读取：{path}（{exc}）") from exc

    def save_clock_offset(self) -> None:
        """How far the demo clock was moved ahead of real time, so a restart keeps it there.
        Written only when it changed (moving the clock is rare)."""
        if self.clock is None:
            return
        from datetime import datetime

        now = self.clock.now()
        offset = max(0, round((now - datetime.now(now.tzinfo)).total_seconds()))
        if self._saved_offset is not None and abs(offset - self._saved_offset) <= 1:
            return
        _write_json(self.config.data_dir / _CLOCK_FILE, {"offset_seconds": offset})
        self._saved_offset = offset

    def _seed_per_start(self, container: Any) -> None:
        from local.seed import seed

        seed(container.directory, webhook_base_url=self.receiver.base_url)
        self._point_regions(container)

    def _seed(self, container: Any) -> None:
        """Demo data, written after the stream pumps took their position, so the outbox
        records the seed creates (notifications of seeded tickets) are delivered too."""
        from local.seed import seed
        from local.seed_bookings import seed_bookings
        from local.seed_tickets import seed_tickets

        seed(container.directory, webhook_base_url=self.receiver.base_url)
        self._point_regions(container)
        seed_bookings(container)
        seed_tickets(container)
        from local.seed_applications import seed_applications

        seed_applications(container)
        from local.seed_policies import seed_policies

        seed_policies(container)
        from local.seed_reviews import seed_reviews

        seed_reviews(container)
        from local.seed_knowledge import seed_knowledge

        seed_knowledge(container)
        from local.seed_bundles import seed_bundles

        seed_bundles(container)
        from local.seed_crossregion import seed_crossregion

        seed_crossregion(container)

    def _start_pumps(self, app: Any, container: Any, settings: Any) -> None:
        from local.pumps import PumpThread, StreamPositions, build_pumps, discover

        bindings = discover(app, settings)
        self.warnings = bindings.warnings
        self.sqs_pumps, self.stream_pumps, schedules = build_pumps(
            bindings,
            container.aws,
            container.clock,
            settings,
            head=self.moto.stream_head,
            positions=StreamPositions(self.config.data_dir / "stream-positions.json"),
        )
        for pump in self.stream_pumps:
            pump.start()  # after the last record delivered before the stop (or a crash)
        self._schedule_thread = PumpThread(schedules, self._pumps_stop)
        self._threads = [
            *(PumpThread(p, self._pumps_stop) for p in self.sqs_pumps),
            self._schedule_thread,
        ]
        self._stream_threads = [PumpThread(p, self._streams_stop) for p in self.stream_pumps]
        for thread in [*self._threads, *self._stream_threads]:
            thread.start()
        from chalicelib.service_layer.health import register_local_status

        register_local_status(self.pump_status)

    def _clock_moved(self, _now: Any) -> None:
        """The demo clock was moved (`/dev/clock`): the schedules it made due fire now rather
        than after the schedule pump's idle wait."""
        if self._schedule_thread is not None:
            self._schedule_thread.wake()

    def pump_status(self) -> list[Any]:
        """Lag of every pump, for `GET /health` on the local stage."""
        return [pump.status() for pump in [*self.stream_pumps, *self.sqs_pumps]]

    def wait(self) -> None:
        # Polls the embedded AWS's process: a crash of it stops the runner within 0.2 s.
        while not self.stop_requested.wait(0.2):
            if not self.moto.alive:
                log.error("内置 AWS (moto) 已退出，正在停止")
                return
            try:
                self.save_clock_offset()
            except OSError:
                log.exception("could not save the demo clock")

    def stop(self) -> None:
        """Stop what was started, in an order that loses nothing: stop answering (listener and
        keep-alive connections, each after its current request), no new deliveries (each pump
        finishes the batch in its handler; stream records not yet delivered wait for the next
        start, which resumes after each pump's kept position), then the save (the demo clock,
        and the embedded AWS's checkpoint as it exits). Every acknowledged write is in the
        embedded AWS's journal before its answer left, so nothing acknowledged comes after the
        save; and a stop takes as long with a backlog in the streams as without."""
        steps = [
            ("API", self._stop_api),
            ("pumps", self._stop_pumps),
            ("streams", self._stop_streams),
            ("clock", self.save_clock_offset),
            ("webhook receiver", self._stop_receiver),
            ("loopback regions", self._stop_regions),
            ("moto", self.moto.stop),
        ]
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping %s failed", name)

    def _stop_api(self) -> None:
        if self.api_server is None:
            return
        server = self.api_server.server
        if self._api_thread is None:
            server.server_close()
            return
        still_open = server.stop_answering(_STOP_JOIN_SECONDS)
        self._api_thread.join(_STOP_JOIN_SECONDS)
        if still_open:
            log.warning("%d connections still busy after %.0f s", still_open, _STOP_JOIN_SECONDS)

    def _stop_pumps(self) -> None:
        self._pumps_stop.set()
        for thread in self._threads:
            thread.wake()  # out of its idle wait: it sees the stop at once
        for thread in self._threads:
            thread.join(_STOP_JOIN_SECONDS)
        for pump in self.sqs_pumps:
            pump.release_held()

    def _stop_streams(self) -> None:
        self._streams_stop.set()
        for thread in self._stream_threads:
            thread.wake()
        for thread in self._stream_threads:
            thread.join(_STOP_JOIN_SECONDS)

    def _stop_receiver(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()

    # 跨省通办: loopback partner regions play 吴江 and 嘉善, take the cases forwarded to them
    # and call back into this API (local/region_simulator.py).
    regions: Any = None

    def _start_regions(self) -> None:
        from local.region_simulator import LoopbackRegion, RegionServer, http_sender
        from local.seed import REGION_SECRETS

        send = http_sender(self.config.api_url)
        self.regions = RegionServer(
            {code: LoopbackRegion(code, secret, send) for code, secret in REGION_SECRETS.items()},
            HOST,
        ).start()

    def _point_regions(self, container: Any) -> None:
        from chalicelib.domain.crossregion import partner_id
        from chalicelib.domain.directory import Department

        for code in self.regions.regions:
            found = container.directory.get_department(partner_id(code))
            name = found.name if found else partner_id(code)
            url = f"{self.regions.base_url}/{partner_id(code)}"
            container.directory.put_department(Department(partner_id(code), name, url))

    def _stop_regions(self) -> None:
        if self.regions is not None:
            self.regions.stop()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic: a reader sees the old file or the new one."""
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        json.dump(data, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def banner(runner: Runner) -> str:
    from local.seed import USERS

    api = runner.config.api_url
    lines = [
        "",
        "青浦好办 本地环境已启动",
        f"  API:          {api}    (健康检查 {api}/health，接口文档 {api}/openapi.json)",
        f"  管理控制台:   {api}/console/  (选择演示用户登录)",
        f"  内置 AWS:     {runner.config.aws_url}  (moto，单线程)",
        f"  部门回调接收: {runner.receiver.base_url}  (GET 查看已收到的回调)",
        f"  数据目录:     {runner.config.data_dir}",
        "  启动耗时:     "
        + "，".join(
            f"{label} {runner.timings[key]:.1f} s"
            for key, label in (("embedded_aws_ready", "内置 AWS 恢复"), ("seed", "演示数据"))
            if key in runner.timings
        ),
    ]
    if runner.restored is not None and (runner.restored.items or runner.restored.messages):
        lines.append(
            f"  已导入旧快照: {runner.restored.items} 条记录，{runner.restored.messages} 条队列消息"
        )
    lines += ["", "演示用户 (user_id / 角色 / 姓名):"]
    width = max(len(u.user_id) for u in USERS)
    for user in USERS:
        lines.append(f"  {user.user_id:<{width}}  {user.role.value:<16}  {user.display_name}")
    lines += [
        "",
        "获取登录凭证并查看本人信息:",
        "  " + demo_curl(api),
    ]
    if runner.has_dev_clock:
        lines += [
            "",
            f"拨动演示时钟: curl -s -X POST {api}/dev/clock -H 'Content-Type: application/json' "
            "-d '{\"advance_minutes\": 60}'",
        ]
    lines += [f"注意: {w}" for w in runner.warnings]
    lines += ["", "按 Ctrl-C 停止。", ""]
    return "\n".join(lines)


def demo_curl(api: str, user_id: str = "u-citizen-zhang") -> str:
    return (
        f"TOKEN=$(curl -s -X POST {api}/dev/tokens -H 'Content-Type: application/json' "
        f'-d \'{{"user_id":"{user_id}"}}\' | python3 -c '
        "'import sys,json;print(json.load(sys.stdin)[\"token\"])') "
        f'&& curl -s {api}/me -H "Authorization: Bearer $TOKEN"'
    )


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("botocore", "boto3", "urllib3", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> int:
    _configure_logging()
    try:
        config = RunnerConfig.from_env()
    except StartupError as exc:
        print(f"无法启动: {exc}", file=sys.stderr)
        return 2
    runner = Runner(config)
    signals = {"count": 0}

    def request_stop(signum: int, frame: Any) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            print("\n强制退出", file=sys.stderr, flush=True)
            runner.moto.kill()
            os._exit(130)
        print("\n正在停止…", flush=True)
        runner.stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    status = 0
    try:
        runner.start()
        print(banner(runner), flush=True)
        runner.wait()
    except StartupError as exc:
        print(f"无法启动: {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        runner.stop()
    print(f"已停止，数据已保存在 {config.data_dir}", flush=True)
    return status


def _exit(status: int) -> None:
    """Everything is stopped and saved by now; skip the interpreter's teardown, which spends
    seconds freeing the botocore models of a dozen clients."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    _exit(main())
