"""A loopback partner region for 跨省通办 (local runner and tests): it plays 吴江 or 嘉善.

It takes the cases Qingpu forwards (`receive`: signed as the region would check them,
de-duplicated on `webhook-id`) and answers each with its callbacks, in order: received,
accepted, then approved with an e-licence number (or rejected). It keeps every callback until
Qingpu answers 2xx, so a callback lost on the way is sent again by `pump` (the other side's
retry). It also files cases of its own into Qingpu (`inbound_case`), signed the same way, and
records the callbacks Qingpu sends back about them.

`serve` runs it over HTTP on loopback with a thread that pumps the callbacks every second.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalicelib.adapters.crossregion import canonical
from chalicelib.adapters.webhook import WebhookRefused, sign_headers, verify

# (path, body, headers) -> HTTP status of Qingpu's answer (0: no answer)
Send = Callable[[str, bytes, dict[str, str]], int]
CALLBACKS = "/cross-region/callbacks"
CASES = "/cross-region/cases"


class LoopbackRegion:
    def __init__(
        self,
        region: str,
        secret: str,
        send: Send,
        outcome: str = "approved",
        wall_time: Callable[[], float] = time.time,
    ):
        self.region = region
        self._secret = secret
        self._send = send
        self._wall_time = wall_time
        self.outcome = outcome
        self.cases: dict[str, dict[str, Any]] = {}  # webhook-id -> the forwarded case
        self.callbacks_received: list[dict[str, Any]] = []  # about the cases it filed
        self.pending: list[tuple[str, dict[str, Any]]] = []  # (message id, callback)
        self.attempts: dict[str, int] = {}
        self._lock = threading.Lock()

    # ---- what Qingpu sends ----------------------------------------------------------------

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        try:
            verify([self._secret], headers, body, self._wall_time())
        except WebhookRefused:
            return 401
        message_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        payload = json.loads(body)
        with self._lock:
            if payload.get("kind") == "callback":
                if all(c["message_id"] != message_id for c in self.callbacks_received):
                    self.callbacks_received.append({"message_id": message_id, **payload})
                return 204
            if message_id in self.cases:
                return 204  # sent again: already taken
            self.cases[message_id] = payload
            self._plan(payload["origin_case_id"])
        return 204

    def _plan(self, case_id: str) -> None:
        remote = f"{self.region.upper()}-{case_id[:10]}"
        steps: list[dict[str, Any]] = [
            {"event": "received"},
            {"event": "accepted"},
            {"event": "approved", "result": {"licence_number": f"{remote}-LIC"}}
            if self.outcome == "approved"
            else {"event": "rejected", "reasons": ["材料与档案记载不一致"]},
        ]
        for step in steps:
            callback = {
                "region": self.region,
                "case_id": case_id,
                "remote_case_id": remote,
                **step,
            }
            self.pending.append((f"{remote}:{step['event']}", callback))

    # ---- what it sends Qingpu ----------------------------------------------------------------

    def _signed(self, message_id: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = canonical(payload)
        headers = sign_headers([self._secret], message_id, int(self._wall_time()), body)
        return body, {"Content-Type": "application/json", **headers}

    def pump(self) -> int:
        """Send every pending callback once; those not answered 2xx stay for the next pump."""
        with self._lock:
            pending = list(self.pending)
        delivered = 0
        for message_id, callback in pending:
            body, headers = self._signed(message_id, callback)
            self.attempts[message_id] = self.attempts.get(message_id, 0) + 1
            status = self._send(CALLBACKS, body, headers)
            if 200 <= status < 300:
                delivered += 1
                with self._lock:
                    self.pending.remove((message_id, callback))
            else:
                break  # in order: a later step never overtakes a lost one
        return delivered

    def inbound_case(
        self,
        case_id: str,
        item_code: str,
        applicant: dict[str, str],
        fields: dict[str, Any],
        materials: list[dict[str, Any]] | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A case this region accepted for an item Qingpu decides: the signed request."""
        payload = {
            "region": self.region,
            "case_id": case_id,
            "item_code": item_code,
            "applicant": applicant,
            "fields": fields,
            "materials": materials or [],
        }
        return self._signed(f"case:{self.region}:{case_id}", payload)

    def file_case(self, *args: Any, **kwargs: Any) -> int:
        body, headers = self.inbound_case(*args, **kwargs)
        return self._send(CASES, body, headers)


def http_sender(api_base_url: str, timeout: float = 5.0) -> Send:
    """Posts to the running API (loopback): the status, 0 when it did not answer."""
    import urllib.error
    import urllib.request

    def send(path: str, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(
            api_base_url.rstrip("/") + path, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return 0

    return send


class RegionServer:
    """The loopback regions over HTTP: `POST {base_url}/region-<code>` is what Qingpu's
    gateway calls; a thread pumps their callbacks to the API every second."""

    def __init__(self, regions: dict[str, LoopbackRegion], host: str = "127.0.0.1", port: int = 0):
        self.regions = regions
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RegionServer:
        # A stop waits for serve_forever's next poll: 0.5 s by default.
        serving = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        pumping = threading.Thread(target=self._pump_forever, daemon=True)
        self._threads = [serving, pumping]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _pump_forever(self) -> None:
        while not self._stop.wait(1.0):
            for region in self.regions.values():
                region.pump()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        regions = self.regions

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                name = self.path.strip("/").removeprefix("region-")
                region = regions.get(name)
                length = min(int(self.headers.get("Content-Length") or 0), 1024 * 1024)
                body = self.rfile.read(length)
                status = region.receive(dict(self.headers.items()), body) if region else 404
                self.send_response(status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
