"""What the end-to-end tests share: the app stepped by hand behind its HTTP routes and the local
runner's pumps, and China-time instants."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from chalicelib.adapters.clock import CHINA_TZ
from local import pumps
from local.seed import WEBHOOK_SECRETS

__all__ = ["WEBHOOK_SECRETS"]


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


class PumpedApp:
    """The app behind its HTTP routes and the runner's pumps, stepped by hand."""

    flush_rounds = 3  # stream → outbox → queue chains settle within this many passes
    subject_keys = ("subject_id",)  # where a webhook call's data names what it is about

    def __init__(self, api: Any, container: Any, clock: Any, receiver: Any = None) -> None:
        from app import app

        self.api = api
        self.container = container
        self.clock = clock
        self.receiver = receiver
        bindings = pumps.discover(app, container.settings)
        self.sqs, self.streams, self.schedules = pumps.build_pumps(
            bindings, container.aws, clock, container.settings
        )
        for pump in self.streams:
            pump.start()
        self.schedules.run_once()  # the schedule's first period starts now

    def flush(self) -> None:
        """Everything written so far: stream records enqueued, queued messages delivered."""
        for _ in range(self.flush_rounds):
            for pump in self.streams:
                pumps.drain(pump)
            for pump in self.sqs:
                pumps.drain(pump)

    def at(self, moment: datetime) -> list[str]:
        """Move the clock, run the schedules due by then; the names of those that fired."""
        self.clock.set(moment)
        fired = self.schedules.run_once()
        self.flush()
        return fired

    def post(self, path: str, body: dict | None, user: str, status: int = 200) -> dict[str, Any]:
        result = self.api.post(path, body, user=user)
        assert result.status == status, result
        self.flush()
        return result.json

    def notifications(self, user: str) -> list[dict[str, Any]]:
        result = self.api.get("/me/notifications", user=user)
        assert result.status == 200, result
        return result.json["items"]

    def inbox(self, user: str) -> list[str]:
        """The categories in the user's inbox, newest first."""
        return [n["category"] for n in self.notifications(user)]

    def calls(
        self, department_id: str, category: str, subject_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The department's signed webhook calls of a category, about one subject if named."""
        return [
            call
            for call in self.receiver.received_for(department_id)
            if call["body"]["category"] == category
            and (
                subject_id is None
                or subject_id in (call["body"]["data"].get(k) for k in self.subject_keys)
            )
        ]


@contextmanager
def app_on_fresh_aws() -> Iterator[tuple[Any, Any, str]]:
    """The app on an in-process AWS of its own, provisioned and seeded, through Chalice's test
    client; yields (client, container, an admin token)."""
    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib.adapters.clock import ManualClock
    from chalicelib.bootstrap import Container, set_container
    from chalicelib.settings import get_settings
    from local.provision import provision
    from local.seed import seed
    from local.seed_applications import seed_guide_entries

    with mock_aws():
        provision(get_settings())
        clock = ManualClock(t(2026, 11, 26, 10, 0))
        container = Container(get_settings(), clock=clock)
        set_container(container)
        try:
            seed(container.directory, webhook_base_url="http://127.0.0.1:9/hooks")
            seed_guide_entries(container)
            admin = container.directory.get_user("u-admin")
            token = container.dev_token_issuer.issue(admin.principal(), clock.now())
            with Client(app) as client:
                yield client, container, token
        finally:
            set_container(None)
