"""Nothing lost on a crash: a bundle whose next members did not start after a decision (the
step failed once), and a 跨省通办 case whose hand-over to the outbound queue was lost, are both
finished by one run of the repair schedule, once."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from chalicelib.service_layer.repair import GRACE
from tests.integration.test_applications import Flow, pdf
from tests.integration.test_bundles import birth_body, cases, submit_birth
from tests.integration.test_effects_repair import _drain, _fail_once, _repair

CITIZEN = "u-citizen-zhang"
ADMIN = "u-admin"


@pytest.fixture
def seeded(container):
    from local.seed_applications import seed_applications
    from local.seed_bundles import seed_bundles
    from local.seed_crossregion import seed_crossregion

    seed_applications(container)
    seed_bundles(container)
    seed_crossregion(container)
    return container


@pytest.fixture
def flow(api, provisioned, seeded):
    return Flow(api, provisioned)


def test_a_bundle_step_that_failed_after_a_decision_is_done_by_the_repair(
    flow, api, clock, monkeypatch
):
    from chalicelib.service_layer import bundles

    submitted = submit_birth(flow, body=birth_body(flow, [pdf("delivery_record")]))
    bundle_id = submitted.json["bundle_application_id"]
    flow.pump()
    first = cases(flow, bundle_id)["QP-WJ-101"]["application_id"]
    calls = _fail_once(monkeypatch, bundles, "advance")
    decided = api.post(f"/applications/{first}/decision", {"outcome": "approve"}, user=ADMIN)
    assert decided.status == 200 and len(calls) == 1
    assert cases(flow, bundle_id)["QP-GA-602"]["state"] == "waiting"

    clock.advance(GRACE + timedelta(seconds=1))
    assert _repair(api)["applications"] == [first]
    assert cases(flow, bundle_id)["QP-GA-602"]["state"] == "submitted"
    assert _repair(api)["applications"] == []
    mine = flow.api.get("/me/applications?limit=50", user=CITIZEN).json["items"]
    assert [a["item_code"] for a in mine].count("QP-GA-602") == 1


def test_a_lost_hand_over_to_the_partner_region_is_sent_again_by_the_repair(
    flow, api, provisioned, clock, container
):
    outbound = provisioned.queue_urls["cross-region-outbound"]
    submitted = flow.submit(CITIZEN, "KS-WJ-201", fields={"period": "2025"})
    application_id = submitted.json["application_id"]
    flow.pump()
    assert len(_drain(outbound)) == 1  # the hand-over is lost
    assert container.application_store.get(application_id)[0].remote["state"] == "forwarding"

    assert _repair(api)["applications"] == []  # within the grace period
    clock.advance(GRACE + timedelta(seconds=1))
    assert _repair(api)["applications"] == [application_id]
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=outbound, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"].count(application_id) for m in messages] == [1]
    assert _repair(api)["applications"] == []  # looked at again only after another grace
