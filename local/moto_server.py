"""The embedded AWS of `make run`: moto's server, single-threaded so each request is atomic.

moto's `TransactWriteItems` and conditional writes are only atomic when no other request runs
at the same time, so the server handles one request at a time (werkzeug, HTTP/1.0). It also
counts DynamoDB writes and answers `GET /_local/generation` with that count, so the runner's
snapshotter can tell cheaply whether anything changed since its last snapshot.

    python -m local.moto_server --port 4566
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

GENERATION_PATH = "/_local/generation"

# DynamoDB actions that change nothing; every other DynamoDB action counts as a write.
_READ_PREFIXES = ("Get", "Query", "Scan", "Describe", "List", "BatchGet", "TransactGet")


def is_dynamodb_write(target: str) -> bool:
    service, _, action = target.partition(".")
    if not service.startswith("DynamoDB_"):
        return False
    return not action.startswith(_READ_PREFIXES)


class WriteCounter:
    """WSGI middleware: counts DynamoDB writes and serves the count. The server is
    single-threaded, so the counter needs no lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.generation = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        if environ.get("PATH_INFO") == GENERATION_PATH:
            body = json.dumps({"generation": self.generation}).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if is_dynamodb_write(environ.get("HTTP_X_AMZ_TARGET", "")):
            self.generation += 1
        return self.app(environ, start_response)


def build_app() -> WriteCounter:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return WriteCounter(DomainDispatcherApplication(create_backend_app))


def make_moto_server(host: str, port: int) -> Any:
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    return make_server(host, port, build_app(), threaded=False, request_handler=MotoRequestHandler)


def _exit_when_stdin_closes() -> None:
    """The runner holds our stdin open; if it dies without stopping us, don't linger."""

    def watch() -> None:
        # os.read, not sys.stdin: a buffered reader's lock held by a daemon thread
        # aborts the interpreter at exit.
        while os.read(descriptor, 4096):
            pass
        os._exit(0)

    descriptor = sys.stdin.fileno()

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto server, single-threaded")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="exit when stdin closes (the runner that started this process is gone)",
    )
    args = parser.parse_args(argv)

    os.environ["MOTO_PORT"] = str(args.port)  # moto calls itself on this port
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        server = make_moto_server(args.host, args.port)
    except OSError as exc:
        print(f"moto server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_on_stdin_eof:
        _exit_when_stdin_closes()
    with contextlib.suppress(SystemExit):  # SIGTERM / SIGINT
        server.serve_forever()
    server.server_close()
    sys.stdout.flush()
    # Nothing to clean up beyond the socket; skipping interpreter teardown halves the stop time.
    os._exit(0)


if __name__ == "__main__":
    main()
