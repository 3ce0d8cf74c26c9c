"""Integration fixtures: one in-process moto for the whole session, provisioned once from the
topology and seeded with the demo data; the Chalice app driven through its test client.

Isolation is by truncation, not by fresh resources: a write hook on botocore's event system
records which tables and queues a test touched, and its teardown recreates exactly those (a
recreated table also starts a new stream, so a test reading from TRIM_HORIZON sees only its own
records). Per-test resource prefixes would have to provision every table again (the cost this
avoids) and rebind every PynamoDB model's table name per test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest

from chalicelib.adapters.aws import share_service_models_with_pynamodb
from chalicelib.adapters.clock import CHINA_TZ, ManualClock
from tests.integration import embedded_aws

# Registered before any botocore session exists: each session copies the handlers on creation.
embedded_aws.install_hooks()
# Provisioning opens PynamoDB connections before any container does.
share_service_models_with_pynamodb()


class TestClock(ManualClock):
    """The manual clock, noting the earliest moment a test moved it to."""

    def __init__(self, start: datetime):
        super().__init__(start, on_move=self._note)
        self.start = self.earliest = start

    def _note(self, now: datetime) -> None:
        self.earliest = min(self.earliest, now)


@pytest.fixture
def clock() -> TestClock:
    return TestClock(datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ))


@pytest.fixture(scope="session")
def embedded() -> Iterator[embedded_aws.EmbeddedAws]:
    from chalicelib.settings import get_settings

    with embedded_aws.EmbeddedAws(get_settings()) as running:
        yield running


@pytest.fixture
def aws(embedded) -> Iterator[embedded_aws.EmbeddedAws]:
    """The session's in-process moto, provisioned; what the test writes is gone after it.

    One request at a time while it runs: DynamoDB applies a conditional write atomically,
    in-process moto checks the condition and writes in separate Python steps, so two threads
    could both pass the check. Serialising each request gives it DynamoDB's per-request
    atomicity, as the single-threaded embedded server does, while callers still interleave
    between their requests."""
    with embedded.test():
        yield embedded


@pytest.fixture
def provisioned(aws):
    return aws.provisioned()


@pytest.fixture
def serialised_moto(aws) -> None:
    """Requests to the embedded AWS are already one at a time (see `aws`)."""


@pytest.fixture
def container(provisioned, aws, clock, tmp_path, request):
    from chalicelib.adapters.audit_integrity import FileSealStore
    from chalicelib.bootstrap import Container, set_container
    from chalicelib.settings import get_settings
    from local.seed import seed
    from local.seed_applications import seed_guide_entries

    c = Container(get_settings(), clock=clock)
    # Each test's audit chains start empty (the tables are recreated): so do their seals. One
    # file for the whole process would hold the heads of an earlier test's chains.
    c.audit_seals = FileSealStore(str(tmp_path / "audit-seals.jsonl"))
    set_container(c)
    aws.keep_seeded(
        "directory", lambda: seed(c.directory, webhook_base_url="http://127.0.0.1:9/hooks")
    )
    # Tickets and bookings name their items by the guide's codes, and refuse unknown ones.
    aws.keep_seeded("guide", lambda: seed_guide_entries(c))
    first_run = bool(request.node.get_closest_marker("first_sweep"))
    _place_due_sweep_cursor(c, aws, first_run=first_run)
    yield c
    set_container(None)
    if clock.earliest < clock.start and not first_run:
        pytest.fail(
            "the test moved the clock before its start, behind the due sweep's cursor: "
            "mark it first_sweep"
        )


def _place_due_sweep_cursor(container, aws, first_run: bool) -> None:
    """In AWS the due sweep has run every minute before a test's moment: its cursor is there.
    Without it each test's first sweep is a first run, reading the week of empty hourly buckets
    a first run looks back over. Set by every test, so the write marks nothing to recreate."""
    from chalicelib.adapters.dynamodb.due import DueItemModel
    from chalicelib.domain.due import bucket_of
    from chalicelib.service_layer.due import SWEEP_NAME

    now = container.clock.now()
    with aws.untracked():
        if first_run:
            DueItemModel(f"cursor#{SWEEP_NAME}").delete()
        else:
            container.due_store.set_cursor(SWEEP_NAME, bucket_of(now), now)


@pytest.fixture
def api(container):
    from chalice.test import Client

    from app import app

    with Client(app) as client:
        yield ApiClient(client, container)


class ApiClient:
    """Thin wrapper: JSON in and out, tokens for demo users."""

    def __init__(self, client, container):
        self.client = client
        self.container = container

    def token(self, user_id: str) -> str:
        user = self.container.directory.get_user(user_id)
        return self.container.dev_token_issuer.issue(user.principal(), self.container.clock.now())

    def request(
        self,
        method: str,
        path: str,
        *,
        user: str | None = None,
        token: str | None = None,
        body=None,
        raw: bytes | str | None = None,
        headers: dict | None = None,
    ):
        all_headers = {"Content-Type": "application/json"}
        if user:
            all_headers["Authorization"] = f"Bearer {self.token(user)}"
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        all_headers.update(headers or {})
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = self.client.http.request(method, path, headers=all_headers, body=payload)
        return Result(response)

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path: str, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path: str, **kw):
        return self.request("DELETE", path, **kw)


class Result:
    def __init__(self, response):
        self.status = response.status_code
        self.headers = response.headers
        self.text = response.body.decode() if isinstance(response.body, bytes) else response.body
        try:
            self.json = json.loads(self.text) if self.text else None
        except ValueError:
            self.json = None

    def __repr__(self) -> str:
        return f"<Result {self.status} {self.text[:300]}>"


# --- Log capture across the integration suite (read by test_zz_log_masking.py) -------------

import importlib  # noqa: E402
import logging  # noqa: E402
import weakref  # noqa: E402


class LogCapture(logging.Handler):
    """Keeps every log line exactly as the Powertools handler would emit it.

    Attached to the service logger and to the root logger; a record reaching both (the service
    logger propagates) is kept once.
    """

    def __init__(self, formatter: logging.Formatter):
        super().__init__(level=logging.NOTSET)
        self.setFormatter(formatter)
        self.lines: list[str] = []
        self.checked = 0  # lines already asserted on by a test
        self._seen: weakref.WeakSet[logging.LogRecord] = weakref.WeakSet()
        self.formatters: dict[str, logging.Formatter] = {}  # by logger name, when not the default

    def emit(self, record: logging.LogRecord) -> None:
        if record in self._seen:
            return
        self._seen.add(record)
        try:
            self.lines.append(self.formatters.get(record.name, self.formatter).format(record))
        except Exception:
            self.handleError(record)


@pytest.fixture(scope="session", autouse=True)
def log_capture() -> Iterator[LogCapture]:
    import app as app_module  # noqa: F401  (the app's import configures its loggers)
    from chalicelib.observability import logger, metric_log
    from chalicelib.settings import get_settings

    capture = LogCapture(logger.registered_formatter)
    # Metric (EMF) lines have their own logger and formatter: captured as they are written.
    capture.formatters[metric_log.name] = metric_log.handlers[0].formatter
    service = logging.getLogger(get_settings().service_name)
    root = logging.getLogger()
    service.addHandler(capture)
    root.addHandler(capture)
    metric_log.addHandler(capture)
    yield capture
    service.removeHandler(capture)
    root.removeHandler(capture)
    metric_log.removeHandler(capture)
    # Lines logged after the final masking test ran (if any) are checked here too.
    checks = importlib.import_module("tests.integration.test_zz_log_masking")
    checks.assert_no_personal_data(capture.lines[capture.checked :])


@pytest.fixture
def department_webhooks(container):
    """A loopback receiver for the seeded departments' signed webhooks, the directory pointed at
    it."""
    from local.seed import seed
    from local.webhook_receiver import WebhookReceiver
    from tests.integration.helpers import WEBHOOK_SECRETS

    with WebhookReceiver("127.0.0.1", port=0, secrets=WEBHOOK_SECRETS) as running:
        seed(container.directory, webhook_base_url=running.base_url)
        yield running
