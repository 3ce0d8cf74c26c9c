"""Secrets and key parameters, read at run time through Powertools Parameters.

One code path in every stage: Lambda reads Secrets Manager and SSM in AWS; the local runner and
the tests read the same names from the embedded AWS, where `local/provision.py` created them.
Values are cached for `secrets_max_age_seconds`, so a rotation reaches warm functions without
a redeploy.

Names (under the stage's resource prefix):
- Secrets Manager `<prefix>/signing-keys`: the token signing keys, JSON
  `{"current": "<kid>", "previous": "<kid>"?, "<kid>": "<key>", ...}` (adapters/signing.py);
- Secrets Manager `<prefix>/webhooks/<department_id>`: the department's Standard Webhooks
  secret `whsec_<base64>`; during a rotation two, space-separated (new first);
- SSM `/<prefix>/jwt/rs256-public-keys`: JSON key id -> PEM public key, verifying login tokens;
- Secrets Manager `<prefix>/jwt/dev-hs256`: the dev-token key, read in the local stage only.

Outside the local stage a missing signing key set, or one holding a known local default, stops
the function on first use (`SecretsMisconfigured`, logged at CRITICAL with the secret's name).
"""

from __future__ import annotations

import base64
import binascii
from functools import cached_property
from typing import Any, NoReturn

from chalicelib.adapters.signing import SigningKeys, SigningKeysInvalid
from chalicelib.settings import Settings

SIGNING_KEYS = "signing-keys"
WEBHOOKS = "webhooks/"
# 跨省通办 partner regions' shared `whsec_` secrets, one per region ("regions/wujiang").
REGIONS = "regions/"
RS256_PUBLIC_KEYS = "jwt/rs256-public-keys"
DEV_HS256 = "jwt/dev-hs256"

# Every value the local stage provisions contains this marker; no other stage accepts one.
LOCAL_MARKER = "local-only"
# Defaults that shipped before secrets were read from Secrets Manager.
KNOWN_DEFAULTS = frozenset({"local-only-cursor-secret", "changeme", "secret"})
MIN_SIGNING_KEY_BYTES = 32
MIN_WEBHOOK_KEY_BYTES = 24
WEBHOOK_SECRET_PREFIX = "whsec_"


class SecretsMisconfigured(RuntimeError):
    """A secret the function needs is missing or a known default: it must not serve."""


def is_known_default(value: str | bytes) -> bool:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return text.strip().lower() in KNOWN_DEFAULTS or LOCAL_MARKER in text


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (Standard Webhooks)."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc
    if not key:
        raise ValueError("a webhook secret is empty")
    return key


class SecretStore:
    def __init__(self, settings: Settings, aws: Any):
        self._settings = settings
        self._aws = aws
        self._max_age = settings.secrets_max_age_seconds

    # -- providers (Powertools imported on first use: cold start) ------------------------------

    @cached_property
    def _secrets(self) -> Any:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        return SecretsProvider(boto3_client=self._aws.client("secretsmanager"))

    @cached_property
    def _ssm(self) -> Any:
        from aws_lambda_powertools.utilities.parameters import SSMProvider

        return SSMProvider(boto3_client=self._aws.client("ssm"))

    def secret_name(self, name: str) -> str:
        return f"{self._settings.resource_prefix}/{name}"

    def parameter_name(self, name: str) -> str:
        return f"/{self._settings.resource_prefix}/{name}"

    def _get_secret(self, name: str) -> str | None:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = self._secrets.get(self.secret_name(name), max_age=self._max_age)
        except GetParameterError:
            return None
        return value if isinstance(value, str) and value.strip() else None

    def _get_parameter(self, name: str) -> str | None:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = self._ssm.get(self.parameter_name(name), max_age=self._max_age, decrypt=True)
        except GetParameterError:
            return None
        return value if isinstance(value, str) and value.strip() else None

    # -- what the code reads -----------------------------------------------------------------

    def signing_keys(self) -> SigningKeys:
        name = self.secret_name(SIGNING_KEYS)
        text = self._get_secret(SIGNING_KEYS)
        if text is None:
            refuse_to_start(f"签名密钥缺失：Secrets Manager 中没有 {name}", name, "missing")
        try:
            keys = SigningKeys.from_json(text)
        except SigningKeysInvalid as exc:
            refuse_to_start(f"签名密钥格式无效（{exc}）：{name}", name, "invalid")
        if not self._settings.is_local:
            for kid, key in keys.keys.items():
                if is_known_default(key):
                    refuse_to_start(
                        f"签名密钥 {kid} 是已公开的默认值，拒绝启动：{name}", name, "default"
                    )
                if len(key) < MIN_SIGNING_KEY_BYTES:
                    refuse_to_start(
                        f"签名密钥 {kid} 短于 {MIN_SIGNING_KEY_BYTES} 字节，拒绝启动：{name}",
                        name,
                        "too_short",
                    )
        return keys

    def webhook_secrets(self, department_id: str) -> list[str]:
        """The department's `whsec_` secrets (two during a rotation); empty when none usable.

        A department without a usable secret does not stop the function: its deliveries fail
        (`webhook_secret_missing`), are retried and alarmed like any failed delivery."""
        return self._whsec_secrets(WEBHOOKS + department_id)

    def region_secrets(self, region: str) -> list[str]:
        """A partner region's `whsec_` secrets (two during a rotation); empty when none usable:
        its messages then fail and are retried, its calls are refused."""
        return self._whsec_secrets(REGIONS + region)

    def _whsec_secrets(self, name: str) -> list[str]:
        text = self._get_secret(name)
        usable: list[str] = []
        for secret in (text or "").split():
            try:
                key = webhook_key(secret)
            except ValueError:
                _log_refused(self.secret_name(name), "invalid")
                continue
            if not self._settings.is_local and (
                is_known_default(key) or len(key) < MIN_WEBHOOK_KEY_BYTES
            ):
                _log_refused(self.secret_name(name), "default")
                continue
            usable.append(secret)
        return usable

    def rs256_public_keys(self) -> str | None:
        """JSON key id -> PEM, for login tokens (public keys: an SSM parameter, not a secret)."""
        return self._get_parameter(RS256_PUBLIC_KEYS)

    def hs256_secret(self) -> str | None:
        """The dev-token key; never read outside the local stage."""
        if not self._settings.is_local:
            return None
        return self._get_secret(DEV_HS256)


def refuse_to_start(message: str, name: str, reason: str) -> NoReturn:
    from chalicelib.observability import logger

    logger.critical(message, extra={"secret": name, "reason": reason})
    raise SecretsMisconfigured(message)


def _log_refused(name: str, reason: str) -> None:
    from chalicelib.observability import logger

    logger.error("部门回调密钥不可用", extra={"secret": name, "reason": reason})
