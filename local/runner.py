"""`make run`: the whole system on one machine, every seam real.

Starts moto's server as the embedded AWS (single-threaded: each request is atomic), provisions
the topology, restores the last snapshot, seeds the demo data, serves the Chalice app over HTTP
and pumps SQS messages, DynamoDB stream records and schedules into the registered handlers.
Department webhooks go to a loopback receiver. Ctrl-C (or SIGTERM) stops everything it started
and writes the final snapshot.

Environment: PORT (API, 8000), AWS_PORT (embedded AWS, 4566), DATA_DIR (.data/).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
_READY_ATTEMPTS = 300  # x 0.1 s
_SNAPSHOT_EVERY_SECONDS = 3.0
_STOP_JOIN_SECONDS = 30.0

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
    env["QPHB_STAGE"] = "local"
    env["QPHB_AWS_ENDPOINT_URL"] = config.aws_url
    # Every boto3 client in the process (Powertools' own included) talks to the embedded AWS.
    env["AWS_ENDPOINT_URL"] = config.aws_url
    env.setdefault("QPHB_AWS_REGION", "us-east-1")
    env["AWS_DEFAULT_REGION"] = env["QPHB_AWS_REGION"]
    env.setdefault("QPHB_RESOURCE_PREFIX", "qphb-local")
    env["QPHB_JWT_HS256_SECRET"] = _local_secret(config.data_dir)
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
    """HS256 secret for dev tokens, made once per data directory so tokens outlive a restart."""
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
    def __init__(self, port: int):
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

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

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process.stdin:
            process.stdin.close()


# --- the HTTP API ----------------------------------------------------------------------------


def make_api_server(app: Any, settings: Any, port: int) -> Any:
    """chalice local's server (as `chalice local` builds it), answering unknown routes with
    our 404 shape instead of API Gateway's 403 "Missing Authentication Token"."""
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
        server = LocalDevServer(app, config, HOST, port, handler_cls=ApiRequestHandler)
    except OSError as exc:
        raise StartupError(f"API 端口 {port} 无法使用（{exc.strerror}），请设置 PORT") from exc
    report = server.server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        # A client that hung up before its answer is not an error worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            report(request, client_address)

    server.server.handle_error = handle_error
    return server


# --- the runner ------------------------------------------------------------------------------


class Runner:
    def __init__(self, config: RunnerConfig):
        self.config = config
        self.stop_requested = threading.Event()
        self._pumps_stop = threading.Event()
        self._streams_stop = threading.Event()
        self._snapshots_stop = threading.Event()
        self.moto = MotoProcess(config.aws_port)
        self.receiver: Any = None
        self.api_server: Any = None
        self._api_thread: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self._stream_threads: list[threading.Thread] = []
        self.snapshotter: Any = None
        self.sqs_pumps: list[Any] = []
        self.stream_pumps: list[Any] = []
        self.warnings: list[str] = []
        self.restored: Any = None
        self._started = False
        self.has_dev_clock = False

    def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        configure_environment(self.config)
        self._start_receiver()
        self.moto.start()

        from chalicelib.settings import get_settings, reset_settings_cache

        reset_settings_cache()
        settings = get_settings()
        from app import app  # after the environment: settings and models bind at import

        self.has_dev_clock = "/dev/clock" in app.routes
        self.api_server = make_api_server(app, settings, self.config.port)
        self.moto.wait_ready(self.stop_requested)
        container = self._prepare_data(settings)
        self._start_pumps(app, container, settings)
        self._seed(container)
        self._api_thread = threading.Thread(
            target=self.api_server.server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="api",
            daemon=True,
        )
        self._api_thread.start()
        self._started = True

    def _start_receiver(self) -> None:
        from local.seed import DEPARTMENTS
        from local.webhook_receiver import WebhookReceiver

        self.receiver = WebhookReceiver(
            HOST,
            port=0,
            secrets={d.department_id: d.webhook_secret for d in DEPARTMENTS if d.webhook_secret},
        )
        self.receiver.start()
        os.environ["QPHB_WEBHOOK_RECEIVER_URL"] = self.receiver.base_url

    def _prepare_data(self, settings: Any) -> Any:
        from datetime import timedelta

        from chalicelib.adapters.clock import ManualClock
        from chalicelib.bootstrap import Container, set_container
        from local.provision import provision
        from local.snapshot import Snapshotter

        provision(settings)
        clock = ManualClock(follow_system=True)
        container = Container(settings, clock=clock)
        self.snapshotter = Snapshotter(
            settings,
            self.config.data_dir,
            container.aws.client("dynamodb"),
            container.aws.client("sqs"),
            generation=self.moto.generation,
            clock=clock,
        )
        try:
            self.restored = self.snapshotter.restore()
        except ValueError as exc:
            raise StartupError(
                f"快照无法读取：{exc}。如需从空数据开始，请删除 {self.snapshotter.path}"
            ) from exc
        if self.restored.clock_offset_seconds:
            clock.advance(timedelta(seconds=self.restored.clock_offset_seconds))
        set_container(container)
        return container

    def _seed(self, container: Any) -> None:
        """Demo data, written after the stream pumps took their position, so the outbox
        records the seed creates (notifications of seeded tickets) are delivered too."""
        from local.seed import seed
        from local.seed_bookings import seed_bookings
        from local.seed_tickets import seed_tickets

        seed(container.directory, webhook_base_url=self.receiver.base_url)
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

    def _start_pumps(self, app: Any, container: Any, settings: Any) -> None:
        from local.pumps import PumpThread, build_pumps, discover

        bindings = discover(app, settings)
        self.warnings = bindings.warnings
        self.sqs_pumps, self.stream_pumps, schedules = build_pumps(
            bindings, container.aws, container.clock, settings, generation=self.moto.generation
        )
        for pump in self.stream_pumps:
            pump.start()  # LATEST: the restored items are not replayed
        self._threads = [PumpThread(p, self._pumps_stop) for p in [*self.sqs_pumps, schedules]]
        self._stream_threads = [PumpThread(p, self._streams_stop) for p in self.stream_pumps]
        snapshots = threading.Thread(target=self._snapshot_loop, name="snapshots", daemon=True)
        for thread in [*self._threads, *self._stream_threads, snapshots]:
            thread.start()
        self._threads.append(snapshots)

    def _snapshot_loop(self) -> None:
        while not self._snapshots_stop.wait(_SNAPSHOT_EVERY_SECONDS):
            try:
                self.snapshotter.save_if_changed()
            except Exception:
                log.exception("periodic snapshot failed")

    def wait(self) -> None:
        while not self.stop_requested.wait(1.0):
            if not self.moto.alive:
                log.error("内置 AWS (moto) 已退出，正在停止")
                return

    def stop(self) -> None:
        """Stop what was started, in an order that loses nothing: no new requests, no new
        deliveries, stream records written before the stop delivered, then the final snapshot
        (tables and waiting messages), then the embedded AWS."""
        steps = [
            ("API", self._stop_api),
            ("pumps", self._stop_pumps),
            ("streams", self._drain_streams),
            ("snapshot", self._final_snapshot),
            ("webhook receiver", self._stop_receiver),
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
        if self._api_thread is not None:
            self.api_server.shutdown()
            self._api_thread.join(_STOP_JOIN_SECONDS)
        self.api_server.server.server_close()

    def _stop_pumps(self) -> None:
        self._pumps_stop.set()
        self._snapshots_stop.set()
        for thread in self._threads:
            thread.join(_STOP_JOIN_SECONDS)
        for pump in self.sqs_pumps:
            pump.release_held()

    def _drain_streams(self) -> None:
        from local.pumps import drain

        self._streams_stop.set()
        for thread in self._stream_threads:
            thread.join(_STOP_JOIN_SECONDS)
        if self.moto.alive:
            for pump in self.stream_pumps:
                drain(pump)

    def _final_snapshot(self) -> None:
        if self.snapshotter is not None and self._started and self.moto.alive:
            self.snapshotter.save(include_queues=True)
            print(f"数据已保存：{self.snapshotter.path}", flush=True)

    def _stop_receiver(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()


def banner(runner: Runner) -> str:
    from local.seed import USERS

    api = runner.config.api_url
    lines = [
        "",
        "青浦好办 本地环境已启动",
        f"  API:          {api}    (健康检查 {api}/health，接口文档 {api}/openapi.json)",
        f"  内置 AWS:     {runner.config.aws_url}  (moto，单线程)",
        f"  部门回调接收: {runner.receiver.base_url}  (GET 查看已收到的回调)",
        f"  数据目录:     {runner.config.data_dir}",
    ]
    if runner.restored is not None and (runner.restored.items or runner.restored.messages):
        lines.append(
            f"  已从快照恢复: {runner.restored.items} 条记录，{runner.restored.messages} 条队列消息"
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
            runner.moto.stop()
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
    print("已停止。", flush=True)
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
