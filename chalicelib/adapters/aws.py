"""boto3 clients for the configured endpoint, created once per process on first use.

botocore parses its JSON service models (endpoints, the service's API, paginators) for every new
session, about 0.1-0.3 s each, and PynamoDB makes a session for each connection it opens. One
model loader per process (botocore's public `data_loader` component) parses them once, for our
clients and PynamoDB's alike.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from chalicelib.settings import Settings


@functools.cache
def _service_models() -> Any:
    from botocore.loaders import create_loader

    return create_loader()


def botocore_session() -> Any:
    """A new botocore session (sessions are not shared across threads) that reads the
    process's one model loader."""
    import botocore.session

    session = botocore.session.get_session()
    session.register_component("data_loader", _service_models())
    return session


def share_service_models_with_pynamodb() -> None:
    """PynamoDB builds its sessions with `botocore.session.get_session`, imported into its
    connection module; giving it ours is the one way to hand it the shared loader."""
    from pynamodb.connection import base

    base.get_session = botocore_session


class AwsClients:
    def __init__(self, settings: Settings):
        share_service_models_with_pynamodb()
        self._settings = settings
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session(botocore_session=botocore_session())
                self._clients[service] = session.client(
                    service,
                    region_name=self._settings.aws_region,
                    endpoint_url=self._settings.aws_endpoint_url,
                    config=Config(
                        retries={"max_attempts": 3, "mode": "standard"},
                        connect_timeout=2,
                        read_timeout=10,
                    ),
                )
            return self._clients[service]

    def queue_url(self, logical_name: str) -> str:
        from chalicelib import topology

        key = f"queue-url:{logical_name}"
        with self._lock:
            cached = self._clients.get(key)
        if cached:
            return cached
        url = self.client("sqs").get_queue_url(
            QueueName=topology.queue_name(logical_name, self._settings)
        )["QueueUrl"]
        with self._lock:
            self._clients[key] = url
        return url
