"""Applications end to end: the guide, pre-fill with locked fields, 202 submission onto the real
pre-review queue, the consumer driven with moto's messages, 补正, 容缺, department and automatic
decisions, KPIs."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from chalicelib.domain.calendar import CHINA_TZ

QUEUE = "application-prereview"
ENTERPRISE = "u-enterprise-lvjing"
CITIZEN = "u-citizen-zhang"
EVENTS = Path(__file__).resolve().parents[2] / "events" / "sqs"


@pytest.fixture
def seeded(container):
    from local.seed_applications import seed_applications

    seed_applications(container)
    return container


@pytest.fixture
def flow(api, provisioned, seeded):
    return Flow(api, provisioned)


class Flow:
    def __init__(self, api, provisioned):
        self.api = api
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.queue_url = provisioned.queue_urls[QUEUE]

    def prefill(self, user: str, code: str) -> dict:
        result = self.api.get(f"/items/{code}/prefill", user=user)
        assert result.status == 200, result
        return result.json

    def submit(self, user: str, code: str, *, fields=None, materials=(), headers=None, **extra):
        pre = self.prefill(user, code)
        values = {f["name"]: f["value"] for f in pre["fields"]}
        values.update(fields or {})
        body = {
            "item_code": code,
            "prefill_token": pre["prefill_token"],
            "fields": values,
            "materials": list(materials),
            **extra,
        }
        self.last_body = body
        return self.api.post("/applications", body, user=user, headers=headers)

    def messages(self) -> list[dict]:
        return self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])

    def event(self, messages: list[dict]) -> dict:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q",
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }

    def pump(self) -> dict:
        """One poll of the queue into the consumer; handled messages are deleted."""
        messages = self.messages()
        assert messages, "no pre-review message on the queue"
        response = self.api.client.lambda_.invoke(
            "prereview_applications", self.event(messages)
        ).payload
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return response

    def read(self, application_id: str, user: str) -> dict:
        result = self.api.get(f"/applications/{application_id}", user=user)
        assert result.status == 200, result
        return result.json


def pdf(code: str, holder: str | None = None, **kw) -> dict:
    return {
        "code": code,
        "file_name": f"{code}.pdf",
        "file_type": "pdf",
        "size_kb": 200,
        "holder_name": holder,
        **kw,
    }


def test_the_catalogue_is_public_and_items_keep_versions(api, seeded):
    listing = api.get("/items?limit=100")
    assert listing.status == 200
    codes = {i["code"] for i in listing.json["items"]}
    assert len(codes) >= 6 and "QP-ZW-401" in codes
    departments = {i["department_id"] for i in listing.json["items"]}
    assert len(departments) >= 3
    item = api.get("/items/QP-ZW-401").json
    assert item["bundle"] and item["version"] == 1
    assert api.get("/items/NOPE").status == 404


def test_admin_publishes_a_new_version_and_promised_beyond_statutory_is_refused(api, seeded):
    item = api.get("/items/QP-RS-201").json
    body = {k: v for k, v in item.items() if k not in ("code", "version")}
    body["promised_days"] = 2
    body["supplement_days"] = 2
    published = api.put("/items/QP-RS-201", body, user="u-admin")
    assert published.status == 200 and published.json["version"] == 2
    body["promised_days"] = 30
    body["statutory_days"] = 15
    refused = api.put("/items/QP-RS-201", body, user="u-admin")
    assert refused.status == 400 and refused.json["code"] == "promised_exceeds_statutory"
    assert api.put("/items/QP-RS-201", body, user=ENTERPRISE).status == 403


def test_the_demo_enterprise_prefills_at_least_70_percent_on_every_enterprise_item(flow, seeded):
    from local.seed_applications import ITEMS

    for item in (i for i in ITEMS if i.subject_kind == "enterprise"):
        pre = flow.prefill(ENTERPRISE, item.code)
        assert pre["prefill_rate"] >= 0.7, (item.code, pre["prefill_rate"])
        verified = [f for f in pre["fields"] if f["verified"]]
        assert verified and all(f["locked"] and f["retrieved_at"] for f in verified)
        assert {f["source"] for f in verified} <= {"profile", "elicence"}
    assert "business_licence" in flow.prefill(ENTERPRISE, "QP-RS-201")["exempt_materials"]


def test_an_expired_elicence_is_not_exempt_and_is_caught_as_expired(flow):
    pre = flow.prefill(ENTERPRISE, "QP-SC-105")
    assert "food_licence" not in pre["exempt_materials"]
    submitted = flow.submit(
        ENTERPRISE,
        "QP-SC-105",
        fields={"new_premises": "华新镇华志路1008号"},
        materials=[pdf("floor_plan"), pdf("safety_rules")],
    )
    assert submitted.status == 202
    flow.pump()
    app = flow.read(submitted.json["application_id"], ENTERPRISE)
    assert app["state"] == "supplement_requested"
    finding = next(f for f in app["findings"] if f["target"] == "material:food_licence")
    assert finding["reason"] == "expired" and finding["code"] == "elicence_expired"


def test_tampering_with_a_locked_field_is_refused_as_incorrect(flow):
    result = flow.submit(
        ENTERPRISE, "QP-RS-201", fields={"company_name": "别的公司", "employees": 3}
    )
    assert result.status == 400
    assert result.json["code"] == "locked_field_changed"
    assert result.json["fields"] == [
        {
            "field": "field:company_name",
            "message": "字段“company_name”为核验数据，不可修改",
            "type": "incorrect",
        }
    ]
    assert flow.messages() == []


def test_a_forged_prefill_token_is_refused(api, flow):
    pre = flow.prefill(ENTERPRISE, "QP-RS-201")
    forged = pre["prefill_token"][:-4] + ("AAAA" if pre["prefill_token"][-4:] != "AAAA" else "BBBB")
    body = {"item_code": "QP-RS-201", "prefill_token": forged, "fields": {}}
    result = api.post("/applications", body, user=ENTERPRISE)
    assert result.status == 400 and result.json["code"] == "invalid_prefill_token"


def test_an_invalid_id_check_digit_is_caught_as_incorrect(api, flow, seeded):
    from dataclasses import replace

    store = seeded.application_store
    # An ID typed by the applicant (not verified, so not locked) with a wrong check digit.
    profile = store.get_profile("91310118MA1JL0000N")
    store.put_profile(replace(profile, legal_representative_id=None))
    submitted = flow.submit(
        ENTERPRISE,
        "QP-RS-201",
        fields={"legal_representative_id": "310118198001011236", "employees": 12},
        materials=[pdf("labour_contract", "上海绿境科技有限公司"), pdf("roster")],
    )
    assert submitted.status == 202
    flow.pump()
    app = flow.read(submitted.json["application_id"], ENTERPRISE)
    assert app["state"] == "supplement_requested"
    finding = next(f for f in app["findings"] if f["code"] == "id_number_invalid")
    assert finding["reason"] == "incorrect" and finding["target"] == "field:legal_representative_id"


def test_supplement_request_pauses_the_clock_and_the_supplement_resumes_it_to_a_decision(
    api, flow, seeded, clock
):
    submitted = flow.submit(
        ENTERPRISE,
        "QP-RS-201",
        fields={"employees": 12},
        materials=[pdf("roster")],
        headers={"Idempotency-Key": "rs201-first-try"},
    )
    assert submitted.status == 202
    # A retry resends the same request (prefill token included).
    again = api.post(
        "/applications",
        flow.last_body,
        user=ENTERPRISE,
        headers={"Idempotency-Key": "rs201-first-try"},
    )
    assert again.json["application_id"] == submitted.json["application_id"]
    application_id = submitted.json["application_id"]
    assert flow.pump() == {"batchItemFailures": []}
    app = flow.read(application_id, ENTERPRISE)
    # Key material missing: 容缺 does not apply, so 补正.
    assert app["state"] == "supplement_requested"
    missing = next(f for f in app["findings"] if f["target"] == "material:labour_contract")
    assert missing["reason"] == "incomplete" and missing["code"] == "material_missing"
    acceptance = next(d for d in app["deadlines"] if d["kind"] == "application_acceptance")
    assert acceptance["state"] == "paused"

    # Another person's application answers 404; the message is idempotent.
    assert api.get(f"/applications/{application_id}", user=CITIZEN).status == 404
    clock.advance(timedelta(days=2))
    supplemented = api.post(
        f"/applications/{application_id}/supplements",
        {"materials": [pdf("labour_contract", "上海绿境科技有限公司")]},
        user=ENTERPRISE,
    )
    assert supplemented.status == 200 and supplemented.json["state"] == "submitted"
    flow.pump()
    app = flow.read(application_id, ENTERPRISE)
    assert app["state"] == "accepted" and app["supplement_rounds"] == 1
    kinds = {d["kind"]: d["state"] for d in app["deadlines"]}
    assert kinds["application_acceptance"] == "met"
    assert kinds["application_promised"] in ("running", "warning")

    queue = api.get("/departments/dept-rsj/applications", user="u-dept-rsj")
    assert application_id in {a["application_id"] for a in queue.json["items"]}
    assert api.get("/departments/dept-rsj/applications", user="u-dept-scjgj").status == 404
    refused = api.post(
        f"/applications/{application_id}/decision", {"outcome": "reject"}, user="u-dept-rsj"
    )
    assert refused.status == 400 and refused.json["code"] == "reasons_required"
    decided = api.post(
        f"/applications/{application_id}/decision", {"outcome": "approve"}, user="u-dept-rsj"
    )
    assert decided.status == 200 and decided.json["state"] == "approved"
    kinds = {d["kind"]: d["state"] for d in flow.read(application_id, ENTERPRISE)["deadlines"]}
    assert kinds["application_promised"] == "met"
    mine = api.get("/me/applications", user=ENTERPRISE).json["items"]
    assert [a["application_id"] for a in mine] == [application_id]
    assert mine[0]["latest_event"] == decided.json["timeline"][-1]["event"]
    assert mine[0]["latest_event_at"]


def test_the_low_risk_item_is_approved_by_rules_and_issues_an_elicence(api, flow, seeded):
    submitted = flow.submit(ENTERPRISE, "QP-SC-103", fields={"sale_type": "预包装食品"})
    assert submitted.status == 202
    flow.pump()
    app = flow.read(submitted.json["application_id"], ENTERPRISE)
    assert app["state"] == "approved"
    decision = app["decision"]
    assert decision["by"] == "rules" and decision["outcome"] == "approved"
    assert [r["passed"] for r in decision["rules"]] == [True, True, True]
    licences = seeded.application_store.licences("91310118MA1JL0000N")
    issued = [x for x in licences if x.type == "food_sale_filing"]
    assert [x.number for x in issued] == [app["issued_licence"]]
    # The message delivered twice changes nothing.
    assert app["timeline"][-1]["event"] == "approved"


def test_a_failing_rule_sends_the_automatic_item_to_the_department(flow):
    submitted = flow.submit(ENTERPRISE, "QP-SC-103", fields={"sale_type": "散装食品"})
    flow.pump()
    app = flow.read(submitted.json["application_id"], ENTERPRISE)
    assert app["state"] == "accepted" and app["decision"] is None
    assert any(e["event"] == "auto_rules_failed" for e in app["timeline"])


def test_tolerated_acceptance_starts_a_supplement_clock_and_missing_it_terminates(api, flow, clock):
    submitted = flow.submit(CITIZEN, "QP-ZW-401", fields={"child_name": "张小满"})
    assert submitted.status == 202
    # Marriage certificate is an e-licence: exempt. Drop it to exercise 容缺 via YB-301 instead.
    flow.pump()
    assert flow.read(submitted.json["application_id"], CITIZEN)["state"] == "accepted"

    tolerated = flow.submit(CITIZEN, "QP-YB-301", fields={"destination": "江苏省苏州市吴江区"})
    flow.pump()
    app = flow.read(tolerated.json["application_id"], CITIZEN)
    assert app["state"] == "tolerated"
    supplement_clock = next(d for d in app["deadlines"] if d["kind"] == "application_supplement")
    assert supplement_clock["state"] == "running"
    sweep = json.loads(
        (EVENTS.parent / "schedule" / "application_supplement_sweep.json").read_text()
    )
    before = api.client.lambda_.invoke("terminate_overdue_supplements", sweep).payload
    assert before == {"terminated": []}
    clock.advance(timedelta(days=10))
    after = api.client.lambda_.invoke("terminate_overdue_supplements", sweep).payload
    assert after == {"terminated": [tolerated.json["application_id"]]}
    app = flow.read(tolerated.json["application_id"], CITIZEN)
    assert app["state"] == "terminated"
    kinds = {d["kind"]: d["state"] for d in app["deadlines"]}
    assert kinds["application_supplement"] == "cancelled"
    again = api.client.lambda_.invoke("terminate_overdue_supplements", sweep).payload
    assert again == {"terminated": []}


def test_a_tolerated_supplement_in_time_completes_acceptance(api, flow):
    tolerated = flow.submit(CITIZEN, "QP-YB-301", fields={"destination": "浙江省嘉兴市嘉善县"})
    flow.pump()
    application_id = tolerated.json["application_id"]
    result = api.post(
        f"/applications/{application_id}/supplements",
        {"materials": [pdf("residence_proof", "张伟")]},
        user=CITIZEN,
    )
    assert result.status == 200 and result.json["state"] == "accepted"


def test_the_sample_event_drives_the_consumer_and_a_redelivery_is_idempotent(api, flow):
    submitted = flow.submit(ENTERPRISE, "QP-SC-103", fields={"sale_type": "预包装食品"})
    application_id = submitted.json["application_id"]
    flow.pump()
    event = json.loads((EVENTS / "application_prereview.json").read_text())
    event["Records"][0]["body"] = json.dumps({"application_id": application_id, "round": 0})
    response = api.client.lambda_.invoke("prereview_applications", event).payload
    assert response == {"batchItemFailures": []}
    app = flow.read(application_id, ENTERPRISE)
    assert [e["event"] for e in app["timeline"]].count("approved") == 1
    broken = json.loads((EVENTS / "application_prereview.json").read_text())
    broken["Records"][0]["body"] = "{}"
    parked = api.client.lambda_.invoke("prereview_applications", broken).payload
    assert parked["batchItemFailures"] == []  # malformed: parked with an alert, not retried


def test_bad_input_is_answered_with_4xx(api, flow):
    assert api.post("/applications", {"item_code": "x"}, user=ENTERPRISE).status == 400
    assert api.post("/applications", raw="{", user=ENTERPRISE).status == 400
    assert api.get("/applications/not-an-id", user=ENTERPRISE).status == 404
    assert api.get("/applications/" + "0" * 32, user=ENTERPRISE).status == 404
    assert api.get("/reports/applications?month=2026-13", user="u-admin").status == 400
    assert api.get("/items/QP-RS-201/prefill").status == 401
    assert api.get("/items/QP-RS-201/prefill", user="u-dept-rsj").status == 403


def test_monthly_kpis_show_each_figure_beside_its_target(api, flow, clock):
    submitted = flow.submit(ENTERPRISE, "QP-SC-103", fields={"sale_type": "预包装食品"})
    flow.pump()
    assert submitted.status == 202
    month = clock.now().astimezone(CHINA_TZ).strftime("%Y-%m")
    report = api.get(f"/reports/applications?month={month}", user="u-supervisor-zhao")
    assert report.status == 200
    body = report.json
    assert body["targets"]["prefill_rate"] == 0.7
    row = next(r for r in body["items"] if r["item_code"] == "QP-SC-103")
    assert row["applications"] == 1
    assert (row["item_name"], row["department_id"]) == ("仅销售预包装食品备案", "dept-scjgj")
    assert row["department_name"] == "青浦区市场监督管理局"
    assert row["prefill_rate"] >= 0.7
    csv = api.get(f"/reports/applications?month={month}&format=csv", user="u-supervisor-zhao")
    assert csv.status == 200 and csv.headers["Content-Type"].startswith("text/csv")
    header, first = csv.text.splitlines()[:2]
    assert header.startswith("\ufeff月份,事项编码,事项名称,部门编号,部门名称,申请数")
    assert first.startswith(f"{month},QP-SC-103,仅销售预包装食品备案,dept-scjgj,")
    assert row["prereview_automation_rate"] == 1.0
    assert row["first_submission_success_rate"] == 1.0
    assert row["online_completion_rate"] == 1.0
    assert row["p90_processing_working_days"] == 0
    assert api.get(f"/reports/applications?month={month}", user=ENTERPRISE).status == 403


@pytest.mark.parametrize("atomic", [True, False], ids=["one-transaction", "step-by-step"])
def test_a_crash_after_the_state_write_is_finished_by_the_redelivery(
    api, flow, monkeypatch, container, atomic
):
    """In one transaction a crash writes nothing; step by step (tickets of old, a transaction
    too large) the state is written first. Either way the redelivery finishes it, once."""
    from chalicelib.service_layer.applications import prereview as service

    if not atomic:
        monkeypatch.setattr(container, "transactions", None)
    submitted = flow.submit(ENTERPRISE, "QP-SC-103", fields={"sale_type": "预包装食品"})
    application_id = submitted.json["application_id"]
    after_outcome = service._after_outcome

    def crash(*args, **kwargs):
        raise RuntimeError("the Lambda timed out here")

    monkeypatch.setattr(service, "_after_outcome", crash)
    assert len(flow.pump()["batchItemFailures"]) == 1
    assert flow.read(application_id, ENTERPRISE)["state"] == ("submitted" if atomic else "accepted")

    monkeypatch.setattr(service, "_after_outcome", after_outcome)
    event = json.loads((EVENTS / "application_prereview.json").read_text())
    event["Records"][0]["body"] = json.dumps({"application_id": application_id, "round": 0})
    assert api.client.lambda_.invoke("prereview_applications", event).payload == {
        "batchItemFailures": []
    }
    app = flow.read(application_id, ENTERPRISE)
    assert app["state"] == "approved" and app["issued_licence"]
    assert api.client.lambda_.invoke("prereview_applications", event).payload == {
        "batchItemFailures": []
    }
    assert [e["event"] for e in flow.read(application_id, ENTERPRISE)["timeline"]].count(
        "approved"
    ) == 1


def test_an_application_approved_by_rules_invites_its_applicant_to_rate_it(flow, container):
    from chalicelib.domain.notifications import notification_id_for

    submitted = flow.submit(ENTERPRISE, "QP-SC-103", fields={"sale_type": "预包装食品"})
    application_id = submitted.json["application_id"]
    flow.pump()
    assert flow.read(application_id, ENTERPRISE)["state"] == "approved"
    key = f"review-invite:application#{application_id}:{ENTERPRISE}"
    invitation = container.notifier.get(notification_id_for(key))
    assert invitation is not None, "no 好差评 invitation in the outbox"
    assert invitation.category == "review.invitation"
    assert invitation.recipient_id == ENTERPRISE
    assert invitation.data["handling_id"] == application_id
