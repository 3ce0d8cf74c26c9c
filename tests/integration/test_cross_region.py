"""跨省通办 end to end, with a loopback region playing 吴江: a case accepted and pre-reviewed in
Qingpu goes out on the outbound queue, signed; the region's signed callbacks move it through
acceptance and approval and bring its e-licence back; a callback lost on the way is sent again
by the region; clocks run on both legs; a case the region forwards to Qingpu is pre-reviewed
and decided here, each step called back."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

from chalicelib.adapters.webhook import WebhookSender
from chalicelib.domain.notifications import SendResult
from local.region_simulator import LoopbackRegion
from local.seed import REGION_SECRETS
from tests.integration.test_applications import Flow, pdf

CITIZEN = "u-citizen-zhang"
CITIZEN_ID = "310118198503121233"
ADMIN = "u-admin"
OUTBOUND = "cross-region-outbound"
ITEM = "KS-WJ-201"


class ToRegion(WebhookSender):
    """The gateway's HTTP POST, handed to the loopback region in process."""

    def __init__(self, container, region: LoopbackRegion):
        super().__init__(timeout_seconds=1, secrets=container.secrets)
        self.region = region
        self.down = False

    def post(self, url, body, headers):
        if self.down:
            return SendResult(False, error="connection_failed")
        status = self.region.receive(headers, body)
        return SendResult(200 <= status < 300, status)


class Network:
    """The region's calls into the API; `lose` drops the next calls of one event on the way."""

    def __init__(self, api):
        self.api = api
        self.lose: dict[str, int] = {}
        self.answers: list[int] = []

    def __call__(self, path, body, headers):
        event = json.loads(body).get("event", "")
        if self.lose.get(event):
            self.lose[event] -= 1
            return 0
        status = self.api.request("POST", path, raw=body, headers=headers).status
        self.answers.append(status)
        return status


@pytest.fixture
def seeded(container):
    from local.seed_applications import seed_applications
    from local.seed_crossregion import seed_crossregion

    seed_applications(container)
    seed_crossregion(container)
    return container


@pytest.fixture
def flow(api, provisioned, seeded):
    return Flow(api, provisioned)


@pytest.fixture
def network(api):
    return Network(api)


@pytest.fixture
def wujiang(seeded, network):
    from chalicelib.adapters.crossregion import SignedCrossRegionGateway

    region = LoopbackRegion("wujiang", REGION_SECRETS["wujiang"], network)
    poster = ToRegion(seeded, region)
    seeded.cross_region_gateway = SignedCrossRegionGateway(seeded.directory, poster, seeded.secrets)
    region.poster = poster
    return region


class Outbound:
    def __init__(self, api, provisioned):
        self.api = api
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.url = provisioned.queue_urls[OUTBOUND]

    def pump(self) -> dict:
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        assert messages, "nothing on the outbound queue"
        event = Flow.event(None, [{**m, "Attributes": {}} for m in messages])
        response = self.api.client.lambda_.invoke("deliver_cross_region", event).payload
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return response


@pytest.fixture
def outbound(api, provisioned):
    return Outbound(api, provisioned)


def submit(flow: Flow) -> str:
    result = flow.submit(CITIZEN, ITEM, fields={"period": "2025-01至2025-12"})
    assert result.status == 202, result
    flow.pump()
    return result.json["application_id"]


def test_a_case_goes_out_and_its_callbacks_move_it_to_approval(
    flow, wujiang, outbound, network, container, clock
):
    application_id = submit(flow)
    app = flow.read(application_id, CITIZEN)
    assert app["state"] == "accepted"
    assert container.application_store.get(application_id)[0].remote["state"] == "forwarding"

    # The region is down: the message fails and stays for the queue's next delivery.
    wujiang.poster.down = True
    assert outbound.pump()["batchItemFailures"]
    assert wujiang.cases == {}
    wujiang.poster.down = False
    assert outbound.pump() == {"batchItemFailures": []}
    assert len(wujiang.cases) == 1
    forwarded = next(iter(wujiang.cases.values()))
    assert forwarded["origin_case_id"] == application_id and forwarded["item_code"] == ITEM
    stored = container.application_store.get(application_id)[0]
    assert stored.remote["state"] == "forwarded"

    # The approval callback is lost once: the region sends it again on its next round.
    network.lose["approved"] = 1
    clock.advance(timedelta(days=1))
    assert wujiang.pump() == 2
    assert flow.read(application_id, CITIZEN)["state"] == "accepted"
    assert [m for m, _ in wujiang.pending] == [f"WUJIANG-{application_id[:10]}:approved"]
    assert wujiang.pump() == 1 and wujiang.pending == []
    assert wujiang.attempts[f"WUJIANG-{application_id[:10]}:approved"] == 2

    done = flow.read(application_id, CITIZEN)
    assert done["state"] == "approved"
    assert done["issued_licence"] == f"WUJIANG-{application_id[:10]}-LIC"
    events = [e["event"] for e in done["timeline"]]
    assert events.index("forwarded") < events.index("remote_received")
    assert events.index("remote_accepted") < events.index("approved")
    assert done["decision"]["by"] == "region:wujiang"
    # Both legs were timed: acceptance here, then the promised time of the deciding region.
    kinds = {d["kind"]: d["state"] for d in done["deadlines"]}
    assert set(kinds) == {"application_acceptance", "application_promised"}
    assert all(state in ("met", "stopped") for state in kinds.values()), kinds

    # A callback sent again changes nothing.
    wujiang._plan(application_id)
    wujiang.pending = wujiang.pending[-1:]
    assert wujiang.pump() == 1
    again = flow.read(application_id, CITIZEN)
    assert [e["event"] for e in again["timeline"]].count("approved") == 1


def test_an_unsigned_or_forged_callback_is_refused(flow, wujiang, outbound, network, api):
    application_id = submit(flow)
    outbound.pump()
    body = json.dumps(
        {"region": "wujiang", "case_id": application_id, "event": "approved"}
    ).encode()
    assert api.request("POST", "/cross-region/callbacks", raw=body).status == 401
    forged = LoopbackRegion("wujiang", REGION_SECRETS["jiashan"], network)
    forged._plan(application_id)
    forged.pending = forged.pending[-1:]
    assert forged.pump() == 0
    assert network.answers[-1] == 401
    assert flow.read(application_id, CITIZEN)["state"] == "accepted"


def test_a_rejection_comes_back_to_the_person(flow, wujiang, outbound):
    wujiang.outcome = "rejected"
    application_id = submit(flow)
    outbound.pump()
    assert wujiang.pump() == 3
    app = flow.read(application_id, CITIZEN)
    assert app["state"] == "rejected"
    assert app["decision"]["reasons"] == ["材料与档案记载不一致"]


def test_an_inbound_case_is_handled_here_end_to_end(flow, wujiang, outbound, network, container):
    case = {
        "case_id": "WJ-2026-000123",
        "item_code": "QP-YB-301",
        "applicant": {"name": "张伟", "subject_id": CITIZEN_ID},
        "fields": {
            "name": "张伟",
            "id_number": CITIZEN_ID,
            "mobile": "13812345678",
            "address": "上海市青浦区盈浦街道青松路100弄5号",
            "destination": "江苏省苏州市吴江区",
        },
        "materials": [pdf("residence_proof")],
    }
    assert wujiang.file_case(**case) == 202
    assert wujiang.file_case(**case) == 202, "sent again: the same case"
    mine = [
        a
        for a in container.application_store.by_owner("region-wujiang", 20, None).items
        if a.remote["remote_case_id"] == "WJ-2026-000123"
    ]
    assert len(mine) == 1
    application_id = mine[0].application_id
    assert mine[0].channel == "cross_region" and mine[0].department_id == "dept-ybj"

    flow.pump()
    assert flow.read(application_id, ADMIN)["state"] == "accepted"
    decided = flow.api.post(
        f"/applications/{application_id}/decision", {"outcome": "approve"}, user=ADMIN
    )
    assert decided.status == 200, decided
    while True:
        messages = outbound.sqs.receive_message(
            QueueUrl=outbound.url, MaxNumberOfMessages=1, VisibilityTimeout=0
        ).get("Messages", [])
        if not messages:
            break
        outbound.pump()
    events = [c["event"] for c in wujiang.callbacks_received]
    assert sorted(events) == ["accepted", "approved"]
    assert all(c["case_id"] == "WJ-2026-000123" for c in wujiang.callbacks_received)
    approved = next(c for c in wujiang.callbacks_received if c["event"] == "approved")
    assert approved["handling_case_id"] == application_id and approved["state"] == "approved"


def test_an_inbound_case_for_an_item_decided_elsewhere_is_refused(flow, wujiang):
    status = wujiang.file_case(
        "WJ-2026-000124", ITEM, {"name": "张伟", "subject_id": CITIZEN_ID}, {}
    )
    assert status == 422
