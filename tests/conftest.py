"""Test settings: set before any project module is imported, so models bind to them."""

from __future__ import annotations

import os
import tempfile

os.environ.update(
    {
        "QPHB_STAGE": "local",
        "QPHB_RESOURCE_PREFIX": "qphb-test",
        "QPHB_AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_METRICS_NAMESPACE": "QingpuHaoban",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        # botocore routes ARN-carrying DynamoDB Streams calls to an account-id endpoint that
        # in-process moto does not serve.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        # Audit seals of the tests go to a scratch file, not the checkout's data directory.
        "QPHB_AUDIT_SEAL_PATH": os.path.join(
            tempfile.gettempdir(), f"qphb-test-audit-seals-{os.getpid()}.jsonl"
        ),
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("QPHB_AWS_ENDPOINT_URL", None)


def pytest_collection_modifyitems(items: list) -> None:  # type: ignore[type-arg]
    """Under pytest-xdist (`make test` runs one worker per core) some tests share a worker:
    the infrastructure tests, so the CDK app is synthesized once per run, not once per worker;
    the runner's restart tests, which go on with the runner and data of the ones before them."""
    import pytest

    for item in items:
        parts = item.nodeid.split("::")[0].split("/")
        if "infrastructure" in parts:
            item.add_marker(pytest.mark.xdist_group("cdk"))
        elif parts[-1] == "test_local_runner.py":
            item.add_marker(pytest.mark.xdist_group("local_runner"))
