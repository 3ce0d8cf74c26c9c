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
