"""Department webhooks, Standard Webhooks format: one signed HTTP POST per attempt, with plain
urllib (no dependency).

Every call carries `webhook-id` (the notification id, stable across retries: receivers
de-duplicate on it), `webhook-timestamp` (unix seconds of this attempt) and
`webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under the
department's `whsec_` secret, one space-separated signature per secret while a rotation keeps
two. The timestamp is the wall time of the attempt, not the business clock: it is what a
receiver checks for freshness against its own wall clock (replay protection).

Redirects are not followed and environment proxies are ignored: a webhook goes to exactly the
URL the department registered, and anything but a 2xx answer is a failed attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chalicelib.adapters.secrets import webhook_key
from chalicelib.domain.notifications import SendResult

# Enough of an answer to tell what went wrong; a receiver's page is never kept.
_MAX_ANSWER_BYTES = 4096

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
# A receiver refuses a timestamp further than this from its own clock, either way.
TOLERANCE_SECONDS = 5 * 60


class WebhookRefused(ValueError):
    """Why a receiver refuses a call: missing_headers, bad_timestamp, too_old, in_future,
    no_secret, signature."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def signature(secret: str, message_id: str, timestamp: int | str, body: bytes) -> str:
    """`v1,<base64>` for one `whsec_` secret."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign_headers(
    secrets: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(signature(s, message_id, timestamp, body) for s in secrets),
    }


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_seconds: int = TOLERANCE_SECONDS,
) -> None:
    """Raises WebhookRefused unless one signature verifies under one of the secrets and the
    timestamp is within the tolerance of `now`. Header names are matched case-insensitively."""
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get(ID_HEADER, "")
    timestamp = lowered.get(TIMESTAMP_HEADER, "")
    signatures = lowered.get(SIGNATURE_HEADER, "")
    if not (message_id and timestamp and signatures):
        raise WebhookRefused("missing_headers")
    if not timestamp.isdigit():
        raise WebhookRefused("bad_timestamp")
    if int(timestamp) < now - tolerance_seconds:
        raise WebhookRefused("too_old")
    if int(timestamp) > now + tolerance_seconds:
        raise WebhookRefused("in_future")
    if not secrets:
        raise WebhookRefused("no_secret")
    offered = [s for s in signatures.split() if s.startswith("v1,")]
    for secret in secrets:
        try:
            expected = signature(secret, message_id, timestamp, body)
        except ValueError:
            continue  # not a whsec_ secret: it verifies nothing
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return
    raise WebhookRefused("signature")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class WebhookSender:
    """Signs and posts a notification body. Never raises for a failed delivery: returns why."""

    def __init__(
        self,
        timeout_seconds: float,
        secrets: Any,  # adapters.secrets.SecretStore (webhook_secrets by department)
        wall_time: Callable[[], float] = time.time,
    ):
        self._timeout = timeout_seconds
        self._secrets = secrets
        self._wall_time = wall_time
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    def deliver(
        self,
        department_id: str,
        url: str,
        message_id: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> SendResult:
        secrets = self._secrets.webhook_secrets(department_id)
        if not secrets:
            return SendResult(False, error="webhook_secret_missing")
        signed = sign_headers(secrets, message_id, int(self._wall_time()), body)
        return self.post(url, body, {**headers, **signed})

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        if not url.lower().startswith(("http://", "https://")):
            return SendResult(False, error="unsupported_url_scheme")
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        # Monotonic duration of the call: a measurement, not a business time.
        started = time.monotonic()
        try:
            with self._opener.open(request, timeout=self._timeout) as answer:
                answer.read(_MAX_ANSWER_BYTES)
                status = answer.status
        except urllib.error.HTTPError as exc:
            exc.close()
            return SendResult(False, exc.code, f"http_{exc.code}", _elapsed_ms(started))
        except TimeoutError:
            return SendResult(False, error="timeout", duration_ms=_elapsed_ms(started))
        except urllib.error.URLError as exc:
            reason = "timeout" if isinstance(exc.reason, TimeoutError) else "connection_failed"
            return SendResult(False, error=reason, duration_ms=_elapsed_ms(started))
        except (OSError, ValueError):
            return SendResult(False, error="connection_failed", duration_ms=_elapsed_ms(started))
        if 200 <= status < 300:
            return SendResult(True, status, duration_ms=_elapsed_ms(started))
        return SendResult(False, status, f"http_{status}", _elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


class InboundWebhookVerifier:
    """Checks a call a party outside sends us (12345) as its own receivers check ours: Standard
    Webhooks under the party's `whsec_` secrets, timestamp within the tolerance of wall time."""

    def __init__(
        self, secrets: Any, party_id: str, wall_time: Callable[[], float] = time.time
    ) -> None:
        self._secrets = secrets  # adapters.secrets.SecretStore
        self._party_id = party_id
        self._wall_time = wall_time

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        from chalicelib.domain.errors import Unauthenticated

        try:
            verify(self._secrets.webhook_secrets(self._party_id), headers, body, self._wall_time())
        except WebhookRefused as refused:
            raise Unauthenticated("调用签名校验未通过", code=f"webhook_{refused.reason}") from None
