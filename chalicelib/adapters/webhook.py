"""Department webhooks: one signed HTTP POST per attempt, with plain urllib (no dependency).

Redirects are not followed and environment proxies are ignored: a webhook goes to exactly the
URL the department registered, and anything but a 2xx answer is a failed attempt.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from chalicelib.domain.notifications import SendResult

# Enough of an answer to tell what went wrong; a receiver's page is never kept.
_MAX_ANSWER_BYTES = 4096


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class WebhookSender:
    """Posts a signed notification body. Never raises for a failed delivery: returns why."""

    def __init__(self, timeout_seconds: float):
        self._timeout = timeout_seconds
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

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
