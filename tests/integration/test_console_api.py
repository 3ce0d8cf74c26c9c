"""What the console needs of the app itself: its files served from chalicelib/console, nothing
else reachable through the file route, and `/me` naming the centres a manager runs."""

from __future__ import annotations

import pytest

from chalicelib.entrypoints.http.console import FOLDER

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "path,content_type,file",
    [
        ("/console", "text/html", "index.html"),
        ("/console/index.html", "text/html", "index.html"),
        ("/console/console.js", "text/javascript", "console.js"),
        ("/console/console.css", "text/css", "console.css"),
        ("/console/chart.umd.min.js", "text/javascript", "chart.umd.min.js"),
    ],
)
def test_console_files_are_served_without_a_token(api, path, content_type, file):
    result = api.get(path)
    assert result.status == 200
    assert result.headers["Content-Type"].startswith(content_type)
    assert result.text == (FOLDER / file).read_text(encoding="utf-8")


def test_the_vendored_chart_library_keeps_its_licence_header(api):
    head = api.get("/console/chart.umd.min.js").text[:200]
    assert "Chart.js v4." in head and "MIT License" in head


@pytest.mark.parametrize("name", ["missing.js", "..", "console.py", "%2e%2e%2fsettings.py"])
def test_nothing_but_the_console_files_is_served(api, name):
    result = api.get(f"/console/{name}")
    assert result.status == 404
    assert result.json["code"] in ("console_file_not_found", "not_found")


@pytest.fixture
def centres(container):
    from local.seed_bookings import seed_bookings

    seed_bookings(container)


def test_me_names_the_centres_a_manager_runs_and_none_for_anyone_else(api, centres):
    assert api.get("/me", user="u-manager-district").json["managed_centre_ids"] == ["qp-district"]
    assert api.get("/me", user="u-window-wang").json["managed_centre_ids"] == []
    assert api.get("/me", user="u-supervisor-zhao").json["managed_centre_ids"] == []


def test_delivery_health_counts_a_departments_waiting_retrying_and_dead_lettered_work(
    api, container, clock
):
    from datetime import timedelta

    from chalicelib.domain.notifications import (
        DeliveryAttempt,
        NotificationRequest,
        NotificationStatus,
        RecipientKind,
    )

    def notify(key: str, department_id: str = "dept-scjgj") -> str:
        notification_id, _ = container.notifier.notify(
            NotificationRequest(
                business_key=key,
                recipient_kind=RecipientKind.DEPARTMENT,
                recipient_id=department_id,
                category="ticket.dispatched",
                title="新派单",
                body="请于1个工作日内联系反映人。",
            )
        )
        return notification_id

    def failed_attempt(notification_id: str, status: NotificationStatus) -> None:
        now = clock.now()
        attempt = DeliveryAttempt(number=1, at=now, delivered=False, status_code=503)
        later = now + timedelta(minutes=5)
        retry = status is NotificationStatus.RETRYING
        container.notifier.record_attempt(
            notification_id,
            attempt,
            status,
            next_attempt_at=later if retry else None,
            sweep_at=later if retry else None,
        )

    notify("health:waiting")
    failed_attempt(notify("health:retrying"), NotificationStatus.RETRYING)
    failed_attempt(notify("health:dead"), NotificationStatus.FAILED)
    notify("health:other-department", "dept-rsj")
    for key in ("health:delivered-1", "health:delivered-2"):
        delivered = notify(key)
        attempt = DeliveryAttempt(number=1, at=clock.now(), delivered=True, status_code=204)
        container.notifier.record_attempt(delivered, attempt, NotificationStatus.DELIVERED)
        container.notifier.circuit_succeeded("dept-scjgj", clock.now())

    health = api.get("/notifications/delivery-health?department_id=dept-scjgj", user="u-dept-scjgj")
    assert health.status == 200, health
    assert health.json == {
        "department_id": "dept-scjgj",
        "pending": 1,
        "retrying": 1,
        "dead_lettered": 1,
        "circuit_open": False,
        "delivered": 2,
        "last_delivered_at": clock.now().isoformat(),
        "complete": True,
    }
    other = api.get("/notifications/delivery-health?department_id=dept-scjgj", user="u-dept-rsj")
    assert other.status == 404  # another department's deliveries are not theirs to see
    citizen = api.get(
        "/notifications/delivery-health?department_id=dept-scjgj", user="u-citizen-zhang"
    )
    assert citizen.status == 403
