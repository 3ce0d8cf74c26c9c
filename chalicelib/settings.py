"""Typed settings, read once from the environment.

Every knob the code reads lives here; Lambda gets the values from `.chalice/config.json`
(per stage) and from CDK's `stage_config`, the local runner and the tests set them in-process.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel

Stage = Literal["local", "dev", "staging", "prod"]

_PREFIX = "QPHB_"


class Settings(BaseModel):
    stage: Stage = "local"
    service_name: str = "qingpu-haoban"
    metrics_namespace: str = "QingpuHaoban"
    aws_region: str = "us-east-1"
    # Set for the embedded AWS (moto server); unset in Lambda and under in-process mock_aws.
    aws_endpoint_url: str | None = None
    resource_prefix: str = "qphb-local"

    jwt_issuer: str = "https://auth.qingpu.example/local"
    jwt_audience: str = "qingpu-haoban-api"
    jwt_leeway_seconds: int = 30
    dev_token_ttl_seconds: int = 12 * 3600

    # Keys (token signing, webhook secrets, JWT verification keys) are never settings: they are
    # read from Secrets Manager / SSM by adapters/secrets.py and cached this long.
    secrets_max_age_seconds: int = 300

    max_body_bytes: int = 64 * 1024
    page_size_default: int = 20
    page_size_max: int = 100

    webhook_timeout_seconds: float = 5.0

    # Local runner: loopback receiver for department webhooks.
    webhook_receiver_url: str | None = None

    log_level: str = "INFO"

    # Audit: chains per subject type; the head-signing key (a KMS HMAC key in AWS, else the
    # local secret) and the seal store (an Object-Locked S3 bucket in AWS, else a local file).
    audit_chain_shards: int = 8
    audit_signing_secret: str = "local-only-audit-head-signing-secret"
    audit_kms_key_id: str | None = None
    audit_seal_bucket: str | None = None
    audit_seal_path: str = ".data/audit-seals.jsonl"

    def resource_name(self, name: str) -> str:
        """Physical name of a table, queue or topic of this stage."""
        return f"{self.resource_prefix}-{name}"

    @property
    def is_local(self) -> bool:
        return self.stage == "local"


def settings_from_env(environ: dict[str, str] | os._Environ[str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for name in Settings.model_fields:
        raw = env.get(_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    if "aws_region" not in values and env.get("AWS_DEFAULT_REGION"):
        values["aws_region"] = env["AWS_DEFAULT_REGION"]
    if "aws_endpoint_url" not in values and env.get("AWS_ENDPOINT_URL"):
        values["aws_endpoint_url"] = env["AWS_ENDPOINT_URL"]
    return Settings.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from_env()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
