"""A real HTTP receiver on loopback for the departments' webhooks (local runner and tests).

`POST {base_url}/{department_id}` verifies the call as a department would (Standard Webhooks:
`webhook-id`, `webhook-timestamp`, `webhook-signature` under the department's `whsec_`
secrets, any of them during a rotation), records what arrived and answers 204. A wrong or
missing signature, or an unknown department, answers 401; a timestamp more than 5 minutes old
or more than 5 minutes ahead of the receiver's wall clock answers 400 (a replay, or a sender
whose clock is wrong). Every call is
recorded, with `signature_valid` and, when refused, `refused` (why).
`GET {base_url}` lists everything received, oldest first, so a person can look. Header names
in the records are lower-cased.
Tests can make a department's endpoint fail with `respond_with(500, "dept-x")`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from chalicelib.adapters.webhook import WebhookRefused, verify

_PREFIX = "/hooks"
_MAX_BODY_BYTES = 1024 * 1024


class WebhookReceiver:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        secrets: dict[str, str | list[str]] | None = None,
        wall_time: Callable[[], float] = time.time,
    ):
        self._host = host
        self._port = port
        self._secrets = {dept: _listed(value) for dept, value in (secrets or {}).items()}
        self._wall_time = wall_time
        self._lock = threading.Lock()
        self._received: list[dict[str, Any]] = []
        self._answers: dict[str | None, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> WebhookReceiver:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((self._host, self._port), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(  # a stop waits for serve_forever's next poll
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="webhook-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("receiver not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}{_PREFIX}"

    def url_for(self, department_id: str) -> str:
        return f"{self.base_url}/{department_id}"

    # -- configuration and inspection -------------------------------------------------------

    def set_secret(self, department_id: str, secret: str | list[str]) -> None:
        """The department's secret, or its secrets during a rotation (any one verifies)."""
        with self._lock:
            self._secrets[department_id] = _listed(secret)

    def respond_with(self, status: int, department_id: str | None = None) -> None:
        """Answer `status` to valid calls (for one department, or for all when None)."""
        with self._lock:
            self._answers[department_id] = status

    @property
    def received(self) -> list[dict[str, Any]]:
        """A snapshot of every call received so far, oldest first."""
        with self._lock:
            return list(self._received)

    def received_for(self, department_id: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["department_id"] == department_id]

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    # -- called by the request handler ------------------------------------------------------

    def _accept(self, department_id: str, headers: dict[str, str], raw: bytes) -> int:
        with self._lock:
            secrets = list(self._secrets.get(department_id, ()))
            answer = self._answers.get(department_id, self._answers.get(None, 204))
        refused: str | None = None
        try:
            verify(secrets, headers, raw, now=self._wall_time())
        except WebhookRefused as exc:
            refused = exc.reason
        if refused is None:
            status = answer
        elif refused in ("too_old", "in_future", "bad_timestamp"):
            status = 400
        else:
            status = 401
        record = {
            "department_id": department_id,
            "headers": headers,
            "body": _json_or_text(raw),
            "signature_valid": refused is None,
            "refused": refused,
            "status": status,
            "at": datetime.now(UTC).isoformat(),
        }
        with self._lock:
            self._received.append(record)
        return status


def _listed(value: str | list[str]) -> list[str]:
    return value.split() if isinstance(value, str) else list(value)


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "QPHBWebhookReceiver/1.0"

        def do_POST(self) -> None:
            department_id = _department_of(self.path)
            if department_id is None:
                self._answer(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0 or length > _MAX_BODY_BYTES:
                self._answer(413, {"error": "payload_too_large"})
                return
            raw = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = receiver._accept(department_id, headers, raw)
            self._answer(status, None if status == 204 else {"status": status})

        def do_GET(self) -> None:
            path = urlsplit(self.path).path.rstrip("/")
            if path == _PREFIX:
                self._answer(200, receiver.received)
            elif (department_id := _department_of(self.path)) is not None:
                self._answer(200, receiver.received_for(department_id))
            else:
                self._answer(404, {"error": "not_found"})

        def _answer(self, status: int, payload: Any) -> None:
            body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            if body:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # `received` and `GET /hooks` are the log

    return Handler


def _department_of(raw_path: str) -> str | None:
    path = urlsplit(raw_path).path
    if not path.startswith(_PREFIX + "/"):
        return None
    department_id = path[len(_PREFIX) + 1 :].strip("/")
    return department_id if department_id and "/" not in department_id else None
