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


# The files that take longest go first, so that the xdist workers (`--dist loadfile`, without
# xdist's reordering by test count) finish together rather than one waiting on a long file
# picked up last. The packages test starts the one CDK synthesis of the run; the template
# checks come after the long integration files, by when that synthesis is done.
LONG_FIRST = (
    "tests/infrastructure/test_packages.py",
    "tests/integration/test_local_runner.py",
    "tests/integration/test_console_browser.py",
    "tests/integration/test_notifications.py",
    "tests/integration/test_audit_trail.py",
    "tests/integration/test_bookings.py",
    "tests/integration/test_policies.py",
    "tests/integration/test_reviews_e2e.py",
    "tests/integration/test_tickets_e2e.py",
    "tests/integration/test_intake_under_load.py",
    "tests/infrastructure/test_cdk.py",
)


def _rank(item) -> tuple[int, int]:
    path = item.nodeid.split("::", 1)[0]
    if path in LONG_FIRST:
        return (0, LONG_FIRST.index(path))
    return (1 if path.startswith("tests/integration/") else 2, 0)


def pytest_collection_modifyitems(items) -> None:
    items.sort(key=_rank)  # stable: the order within a file and a tier is kept
