"""One in-process moto for the whole test session, provisioned once; each test leaves it as it
found it.

Two botocore event handlers (botocore's public extension point, the one moto itself uses) do the
work while a test holds the embedded AWS:
- `before-parameter-build` notes every table and queue a request writes to or reads from a
  queue (a receive can move a message to the DLQ), so teardown recreates exactly those; and
  every secret and SSM parameter a request changes, so teardown puts back what provisioning put
  there (and removes what the test created);
- `before-call` / `after-call` / `after-call-error` hold one lock around each request, which
  gives in-process moto DynamoDB's per-request atomicity;
- `before-call` also lists each operation for `observed_calls()`, for a test that proves a
  request changed nothing.

The mock is started with `reset=False` and stopped with `remove_data=False` around each test, so
a test that opens its own `mock_aws()` still gets a fresh, empty one; it resets every backend on
its way out, and the next test here notices the missing tables and provisions again.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from chalicelib import topology
from chalicelib.settings import Settings

_active: EmbeddedAws | None = None
_tracking = True  # off for writes that are not a test's own (see `untracked`)
_request_lock = threading.RLock()
_held = threading.local()  # per thread: requests this thread holds the lock for

_DYNAMODB_WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "UpdateTable",
        "DeleteTable",
        "UpdateTimeToLive",
    }
)


def _note_dynamodb(params: dict[str, Any], model: Any, **_: Any) -> None:
    running = _active
    if running is None or not _tracking or model.name not in _DYNAMODB_WRITES:
        return
    if model.name == "BatchWriteItem":
        names: Iterable[str] = params.get("RequestItems", {})
    elif model.name == "TransactWriteItems":
        names = [
            op["TableName"] for item in params.get("TransactItems", []) for op in item.values()
        ]
    else:
        names = [params.get("TableName", "")]
    running.dirty_tables.update(names)


_created_with: dict[str, dict[str, Any]] = {}  # table name → its CreateTable parameters


def _remember_creation(params: dict[str, Any], **_: Any) -> None:
    _created_with[params["TableName"]] = copy.deepcopy(params)


def _note_sqs(params: dict[str, Any], **_: Any) -> None:
    running = _active
    if running is not None and _tracking and params.get("QueueUrl"):
        running.dirty_queues.add(params["QueueUrl"])


def _note_secret(params: dict[str, Any], model: Any, **_: Any) -> None:
    running = _active
    if running is None or not _tracking or model.name.startswith(("Get", "List", "Describe")):
        return
    name = params.get("SecretId") or params.get("Name")
    if name:
        running.dirty_secrets.add(name)


def _note_parameter(params: dict[str, Any], model: Any, **_: Any) -> None:
    running = _active
    if running is None or not _tracking or model.name.startswith(("Get", "List", "Describe")):
        return
    names = params.get("Names") or [params.get("Name")]
    running.dirty_parameters.update(n for n in names if n)


_observers: list[list[str]] = []  # each open `observed_calls()` block's list
_READ_PREFIXES = ("Get", "List", "Describe", "Query", "Scan", "BatchGet", "TransactGet", "Head")


def _observe(model: Any, **_: Any) -> None:
    for calls in _observers:
        calls.append(f"{model.service_model.service_name}:{model.name}")


@contextlib.contextmanager
def observed_calls() -> Iterator[list[str]]:
    """Every AWS operation any session in this process calls inside the block, as
    `service:Operation`, in order; for a test that must prove a request wrote nothing."""
    calls: list[str] = []
    _observers.append(calls)
    try:
        yield calls
    finally:
        _observers.remove(calls)


def changes(calls: Iterable[str]) -> list[str]:
    """The operations of `calls` that may change something: all but reads."""
    return [c for c in calls if not c.partition(":")[2].startswith(_READ_PREFIXES)]


def _serialise(**_: Any) -> None:
    if _active is None:
        return
    _request_lock.acquire()
    _held.depth = getattr(_held, "depth", 0) + 1


def _release(**_: Any) -> None:
    if getattr(_held, "depth", 0):
        _held.depth -= 1
        _request_lock.release()


_HOOKS = (
    ("before-parameter-build.dynamodb", _note_dynamodb),
    ("before-parameter-build.dynamodb.CreateTable", _remember_creation),
    ("before-parameter-build.sqs", _note_sqs),
    ("before-parameter-build.secrets-manager", _note_secret),
    ("before-parameter-build.ssm", _note_parameter),
    ("before-call", _observe),
    ("before-call", _serialise),
    ("after-call", _release),
    ("after-call-error", _release),
)


def install_hooks() -> None:
    """Every botocore session (boto3's, PynamoDB's) registers the built-in handlers when it is
    created; this adds ours to them."""
    from botocore import handlers

    for hook in _HOOKS:
        if hook not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append(hook)


class EmbeddedAws:
    def __init__(self, settings: Settings):
        from moto import mock_aws

        self.settings = settings
        self.dirty_tables: set[str] = set()
        self.dirty_queues: set[str] = set()
        self.dirty_secrets: set[str] = set()
        self.dirty_parameters: set[str] = set()
        self._baseline_secrets: dict[str, str] = {}
        self._baseline_parameters: dict[str, dict[str, str]] = {}
        self._mock = mock_aws()
        self._provisioned: Any = None
        self._seeded: dict[str, frozenset[str]] = {}  # seed → the tables it wrote
        self._clients: dict[str, Any] = {}
        self._dlq_arns: dict[str, str] = {}

    def __enter__(self) -> EmbeddedAws:
        return self

    def __exit__(self, *exc: object) -> None:
        self._mock.start(reset=False)
        self._mock.stop(remove_data=True)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            from chalicelib.adapters.aws import botocore_session

            session = boto3.session.Session(botocore_session=botocore_session())
            self._clients[service] = session.client(service, region_name=self.settings.aws_region)
        return self._clients[service]

    @contextlib.contextmanager
    def test(self) -> Iterator[None]:
        global _active
        self._mock.start(reset=False)
        try:
            self._ensure_provisioned()
            _active = self
            try:
                yield
            finally:
                _active = None
                self._clean()
        finally:
            self._mock.stop(remove_data=False)

    def provisioned(self) -> Any:
        p = self._provisioned
        return replace(
            p,
            tables=dict(p.tables),
            stream_arns=dict(p.stream_arns),
            queue_urls=dict(p.queue_urls),
            dlq_urls=dict(p.dlq_urls),
        )

    def keep_seeded(self, key: str, seed: Callable[[], None]) -> None:
        """Run `seed` unless what it wrote for an earlier test is still there: none of the
        tables it wrote has been recreated since. Its writes are the baseline, not the test's."""
        if key in self._seeded:
            return
        dirty_before, self.dirty_tables = self.dirty_tables, set()
        try:
            seed()
        finally:
            written, self.dirty_tables = self.dirty_tables, dirty_before
        self._seeded[key] = frozenset(written)

    @contextlib.contextmanager
    def untracked(self) -> Iterator[None]:
        """Writes every test makes again for itself: they mark nothing to recreate."""
        global _tracking
        _tracking = False
        try:
            yield
        finally:
            _tracking = True

    # -- provisioning and cleaning up --------------------------------------------------------

    def _ensure_provisioned(self) -> None:
        if self._provisioned is not None:
            existing = set(self.client("dynamodb").list_tables()["TableNames"])
            if set(self._provisioned.tables.values()) <= existing:
                return
        from local.provision import provision

        with self.untracked():
            self._provisioned = provision(self.settings)
        self._seeded.clear()
        self.dirty_tables.clear()
        self.dirty_queues.clear()
        self.dirty_secrets.clear()
        self.dirty_parameters.clear()
        self._remember_secrets_and_parameters()

    def _clean(self) -> None:
        tables, self.dirty_tables = self.dirty_tables, set()
        queues, self.dirty_queues = self.dirty_queues, set()
        by_table = {name: logical for logical, name in self._provisioned.tables.items()}
        by_queue = {url: logical for logical, url in self._provisioned.queue_urls.items()}
        by_queue.update({url: logical for logical, url in self._provisioned.dlq_urls.items()})
        with self.untracked():
            for name in sorted(tables):
                if name in by_table:
                    self._recreate_table(topology.table(by_table[name]))
            for logical in sorted({by_queue[u] for u in queues if u in by_queue}):
                self._recreate_queue(topology.queue(logical))
            self._restore_secrets_and_parameters()
        self._seeded = {key: wrote for key, wrote in self._seeded.items() if not wrote & tables}

    def _remember_secrets_and_parameters(self) -> None:
        """What provisioning put in Secrets Manager and SSM, for a test that rotates or removes
        one: the next test reads the provisioned values, as it reads freshly created tables."""
        secrets, ssm = self.client("secretsmanager"), self.client("ssm")
        self._baseline_secrets = {
            entry["Name"]: secrets.get_secret_value(SecretId=entry["Name"])["SecretString"]
            for page in secrets.get_paginator("list_secrets").paginate()
            for entry in page["SecretList"]
        }
        self._baseline_parameters = {}
        for page in ssm.get_paginator("describe_parameters").paginate():
            for entry in page["Parameters"]:
                value = ssm.get_parameter(Name=entry["Name"], WithDecryption=True)["Parameter"]
                self._baseline_parameters[entry["Name"]] = {
                    "Value": value["Value"],
                    "Type": value["Type"],
                }

    def _restore_secrets_and_parameters(self) -> None:
        secrets, ssm = self.client("secretsmanager"), self.client("ssm")
        touched, self.dirty_secrets = self.dirty_secrets, set()
        for name in sorted(touched):
            # Deleted and created again: a rotation leaves the old value as AWSPREVIOUS,
            # which a reader of both versions would still sign with.
            with contextlib.suppress(secrets.exceptions.ResourceNotFoundException):
                secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
            if name in self._baseline_secrets:
                secrets.create_secret(Name=name, SecretString=self._baseline_secrets[name])
        changed, self.dirty_parameters = self.dirty_parameters, set()
        for name in sorted(changed):
            if name in self._baseline_parameters:
                ssm.put_parameter(Name=name, Overwrite=True, **self._baseline_parameters[name])
            else:
                with contextlib.suppress(ssm.exceptions.ParameterNotFound):
                    ssm.delete_parameter(Name=name)

    def _recreate_table(self, spec: topology.TableSpec) -> None:
        """Deleted and created again with the parameters provisioning created it with: three
        calls, and a new stream (a test reading from its start sees only its own records)."""
        dynamodb = self.client("dynamodb")
        name = spec.load_model().Meta.table_name
        with contextlib.suppress(dynamodb.exceptions.ResourceNotFoundException):
            dynamodb.delete_table(TableName=name)
        created = dynamodb.create_table(**_created_with[name])["TableDescription"]
        if spec.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
        arn = created.get("LatestStreamArn")
        if arn:
            self._provisioned.stream_arns[spec.name] = arn

    def _recreate_queue(self, spec: topology.QueueSpec) -> None:
        """The queue and its DLQ together: the redrive policy names the DLQ."""
        sqs = self.client("sqs")
        url = self._provisioned.queue_urls[spec.name]
        dlq_url = self._provisioned.dlq_urls[spec.name]
        for stale in (url, dlq_url):
            with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
                sqs.delete_queue(QueueUrl=stale)
        sqs.create_queue(
            QueueName=self.settings.resource_name(spec.dlq_name),
            Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)},
        )
        if spec.name not in self._dlq_arns:  # an ARN is the queue's name: it stays the same
            self._dlq_arns[spec.name] = sqs.get_queue_attributes(
                QueueUrl=dlq_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
        dlq_arn = self._dlq_arns[spec.name]
        sqs.create_queue(
            QueueName=self.settings.resource_name(spec.name),
            Attributes={
                "VisibilityTimeout": str(spec.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count}
                ),
            },
        )
