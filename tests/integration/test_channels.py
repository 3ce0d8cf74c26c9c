"""Channels: window staff file an application on a person's behalf, a video acceptance needs
the person's own video session, and the monthly report computes 网上办结率 from the channels
applications were really filed through, beside its 88% target."""

from __future__ import annotations

import pytest

from chalicelib.domain.calendar import CHINA_TZ
from tests.integration.test_applications import Flow, pdf

CITIZEN = "u-citizen-zhang"
WINDOW = "u-window-wang"
ADMIN = "u-admin"
ITEM = "QP-YB-301"


@pytest.fixture
def seeded(container):
    from local.seed_applications import seed_applications

    seed_applications(container)
    return container


@pytest.fixture
def flow(api, provisioned, seeded):
    return Flow(api, provisioned)


def on_behalf(flow: Flow, key: str, **extra):
    body = {
        "person_user_id": CITIZEN,
        "channel": "window",
        "item_code": ITEM,
        "fields": {"destination": "江苏省苏州市吴江区"},
        "materials": [pdf("residence_proof")],
        **extra,
    }
    return flow.api.post(
        "/window/applications", body, user=WINDOW, headers={"Idempotency-Key": key}
    )


def test_window_staff_file_for_a_person_who_then_owns_the_application(flow, container):
    filed = on_behalf(flow, "window-file-0001")
    assert filed.status == 202, filed
    application_id = filed.json["application_id"]
    flow.pump()
    app = flow.read(application_id, CITIZEN)
    assert app["state"] == "accepted"
    # Verified values come from the registers, as for an online pre-fill.
    assert app["prefilled_fields"] >= 4
    stored = container.application_store.get(application_id)[0]
    assert stored.channel == "window" and stored.filed_by == WINDOW
    assert stored.applicant_user_id == CITIZEN
    assert flow.read(application_id, WINDOW)["state"] == "accepted"
    # A repeat under the same key is the same application.
    assert on_behalf(flow, "window-file-0001").json["application_id"] == application_id


def test_filing_on_behalf_is_for_window_staff_and_for_real_people(flow):
    assert on_behalf(flow, "window-file-0002", person_user_id="u-admin").status == 404
    assert on_behalf(flow, "window-file-0003", person_user_id="u-nobody").status == 404
    refused = flow.api.post(
        "/window/applications",
        {"person_user_id": CITIZEN, "channel": "window", "item_code": ITEM},
        user=CITIZEN,
        headers={"Idempotency-Key": "window-file-0004"},
    )
    assert refused.status == 403
    changed = on_behalf(flow, "window-file-0005", fields={"name": "别人"})
    assert changed.status == 400 and changed.json["code"] == "locked_field_changed"


def test_a_video_acceptance_needs_the_persons_own_video_session(flow):
    without = on_behalf(flow, "video-file-0001", channel="video")
    assert without.json["code"] == "video_session_required", without
    unknown = on_behalf(flow, "video-file-0002", channel="video", booking_id="no-such-booking")
    assert unknown.json["code"] == "video_session_required"


def test_the_online_completion_rate_is_computed_from_mixed_channels(flow, clock):
    online = flow.submit(
        CITIZEN, ITEM, fields={"destination": "浙江省嘉善县"}, materials=[pdf("residence_proof")]
    )
    assert online.status == 202, online
    window = on_behalf(flow, "window-file-0010")
    flow.pump()
    for application_id in (online.json["application_id"], window.json["application_id"]):
        decided = flow.api.post(
            f"/applications/{application_id}/decision", {"outcome": "approve"}, user=ADMIN
        )
        assert decided.status == 200, decided
    month = clock.now().astimezone(CHINA_TZ).strftime("%Y-%m")
    report = flow.api.get(f"/reports/applications?month={month}", user=ADMIN)
    assert report.status == 200, report
    rate = report.json["online_completion"]
    assert rate["completed_by_channel"] == {"online": 1, "window": 1, "video": 0, "cross_region": 0}
    assert rate["rate"] == 0.5 and rate["target"] == 0.88 and rate["meets_target"] is False
    assert report.json["overall"]["online_completion_rate"] == 0.5
