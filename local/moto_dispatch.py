"""Per-request work of moto's server that gives the same answer every time, done once.

- Which backend serves a host: moto lists its package directory (a `stat` per module) on
  every request to answer it; the answer depends on the host alone, so it is kept per host.
- The request id in an XML answer: moto runs a regular expression over every answer body to
  put it between `<RequestId>` tags; a body without the tag (every JSON answer, DynamoDB's
  item pages among them) is left as it is, headers still get their request id.

Installed by `local/moto_server.py`'s `install_patches`; idempotent.
"""

from __future__ import annotations

from typing import Any

_HOSTS_KEPT = 256


def install() -> None:
    from moto.core.responses import BaseResponse
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if getattr(DomainDispatcherApplication, "_local_dispatch", False):
        return
    lookup = DomainDispatcherApplication.get_backend_for_host
    backends: dict[str | None, Any] = {}

    def backend_for_host(self: Any, host: str | None) -> Any:
        if host in backends:
            return backends[host]
        found = lookup(self, host)
        if len(backends) < _HOSTS_KEPT:
            backends[host] = found
        return found

    enrich = BaseResponse._enrich_response

    def enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        if isinstance(body, str) and "<RequestId>" not in body:
            headers, _ = enrich(headers, "")
            return headers, body
        return enrich(headers, body)  # type: ignore[no-any-return]

    DomainDispatcherApplication.get_backend_for_host = backend_for_host  # type: ignore[method-assign]
    BaseResponse._enrich_response = staticmethod(enrich_response)  # type: ignore[method-assign,assignment]
    DomainDispatcherApplication._local_dispatch = True  # type: ignore[attr-defined]
