"""The signed channel to the partner regions of 跨省通办.

A partner region is registered like a department (`region-<code>` in the directory) for its
endpoint URL; its Standard Webhooks `whsec_` secret, shared both ways, is `regions/<code>`.
Every message is one signed HTTP POST (adapters/webhook.py headers: `webhook-id` stable across
retries, so the receiver de-duplicates; timestamp and HMAC signature), its body canonical JSON;
a callback or an inbound case from the region is verified with the same secret. Retries are
the outbound queue's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.adapters.webhook import WebhookRefused, sign_headers, verify
from chalicelib.domain.crossregion import LOCAL_REGION, partner_id
from chalicelib.domain.errors import Unauthenticated
from chalicelib.domain.notifications import SendResult

REGION_HEADER = "x-qphb-region"


def canonical(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


class SignedCrossRegionGateway:
    def __init__(
        self,
        directory: Any,  # service_layer.ports.Directory
        sender: Any,  # service_layer.ports.notifications.WebhookPoster
        secrets: Any,  # adapters.secrets.SecretStore
        wall_time: Callable[[], float] = time.time,
    ):
        self._directory = directory
        self._sender = sender
        self._secrets = secrets
        self._wall_time = wall_time

    def send(self, region: str, message_id: str, payload: Mapping[str, Any]) -> SendResult:
        partner = self._directory.get_department(partner_id(region))
        if partner is None or not partner.webhook_url:
            return SendResult(False, error="region_endpoint_missing")
        secrets = self._secrets.region_secrets(region)
        if not secrets:
            return SendResult(False, error="region_secret_missing")
        body = canonical(payload)
        signed = sign_headers(secrets, message_id, int(self._wall_time()), body)
        return self._sender.post(
            partner.webhook_url,
            body,
            {"Content-Type": "application/json", REGION_HEADER: LOCAL_REGION, **signed},
        )

    def verify(self, region: str, headers: Mapping[str, str], body: bytes) -> None:
        try:
            verify(self._secrets.region_secrets(region), headers, body, self._wall_time())
        except WebhookRefused as refused:
            raise Unauthenticated(
                "跨地区消息签名校验未通过", code="cross_region_signature_invalid"
            ) from refused
