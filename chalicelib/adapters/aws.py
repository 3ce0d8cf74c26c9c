"""boto3 clients for the configured endpoint, created once per process on first use."""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.settings import Settings


class AwsClients:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                import boto3
                from botocore.config import Config

                self._clients[service] = boto3.session.Session().client(
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
