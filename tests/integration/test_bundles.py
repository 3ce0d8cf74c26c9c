"""一件事 end to end: the bundles in the guide, one form pre-filled once, one case per member on
the real pre-review queue, members started in order as their needs are approved, 补正 asked of
one department only, one notice to the person when all are done, a retried submission that
creates nothing new, and the bundle's elapsed time in the monthly report."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.calendar import CHINA_TZ
from tests.integration.test_applications import Flow, pdf

CITIZEN = "u-citizen-zhang"
ADMIN = "u-admin"


class Recording:
    """The outbox, with every request to a person kept (by business key) for the assertions."""

    def __init__(self, inner):
        self.inner = inner
        self.to_people: dict[str, object] = {}

    def notify(self, request):
        if request.recipient_kind.value == "user":
            self.to_people[request.business_key] = request
        return self.inner.notify(request)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def seeded(container):
    from local.seed_applications import seed_applications
    from local.seed_bundles import seed_bundles

    seed_applications(container)
    seed_bundles(container)
    return container


@pytest.fixture
def outbox(seeded):
    recording = Recording(seeded.notifier)
    seeded.notifier = recording
    return recording


@pytest.fixture
def flow(api, provisioned, seeded):
    return Flow(api, provisioned)


def birth_body(flow: Flow, materials) -> dict:
    pre = flow.api.get("/bundles/birth/prefill", user=CITIZEN)
    assert pre.status == 200, pre
    values = {f["name"]: f["value"] for f in pre.json["fields"]}
    values.update({"child_name": "张小宝", "birth_hospital": "青浦区妇幼保健院"})
    return {"prefill_token": pre.json["prefill_token"], "fields": values, "materials": materials}


def submit_birth(flow: Flow, *, materials=(), body=None, key: str = "birth-bundle-0001"):
    return flow.api.post(
        "/bundles/birth/applications",
        body or birth_body(flow, list(materials)),
        user=CITIZEN,
        headers={"Idempotency-Key": key},
    )


def cases(flow: Flow, bundle_application_id: str) -> dict[str, dict]:
    result = flow.api.get(f"/bundle-applications/{bundle_application_id}", user=CITIZEN)
    assert result.status == 200, result
    return {c["item_code"]: c for c in result.json["cases"]}


def approve(flow: Flow, application_id: str) -> None:
    result = flow.api.post(
        f"/applications/{application_id}/decision", {"outcome": "approve"}, user=ADMIN
    )
    assert result.status == 200, result


def test_bundles_are_listed_with_members_departments_order_and_shared_fields(api, seeded):
    listing = api.get("/bundles?limit=10")
    assert listing.status == 200
    assert {b["code"] for b in listing.json["items"]} >= {"birth", "restaurant"}
    birth = api.get("/bundles/birth").json
    departments = {m["department_id"] for m in birth["members"]}
    assert len(birth["members"]) >= 5
    assert {"dept-wjw", "dept-gaj", "dept-ybj", "dept-rsj"} <= departments
    order = birth["order"]
    assert order.index("QP-WJ-101") < order.index("QP-GA-602")
    assert "child_name" in birth["shared_fields"] and "id_number" in birth["shared_fields"]
    # The slowest chain: 出生医学证明 3 + 户口登记 5 + 社保卡 10 working days.
    assert birth["promised_days"] == 18
    restaurant = api.get("/bundles/restaurant").json
    assert {m["item_code"] for m in restaurant["members"]} >= {"QP-SC-101", "QP-SC-104"}
    assert api.get("/bundles/nope").status == 404


def test_a_birth_bundle_runs_one_case_per_member_in_order_and_notifies_once(
    flow, outbox, container, clock
):
    # Everything but the 医保 department's form: only that department asks for 补正.
    submitted = submit_birth(flow, materials=[pdf("delivery_record")])
    assert submitted.status == 202, submitted
    bundle_id = submitted.json["bundle_application_id"]

    first = cases(flow, bundle_id)
    assert first["QP-WJ-101"]["application_id"] and first["QP-WJ-101"]["state"] == "submitted"
    waiting = {code for code, c in first.items() if c["state"] == "waiting"}
    assert waiting == {"QP-WJ-102", "QP-GA-602", "QP-YB-303", "QP-RS-206"}
    assert all(first[code]["application_id"] is None for code in waiting)

    flow.pump()
    accepted = cases(flow, bundle_id)["QP-WJ-101"]
    assert accepted["state"] == "accepted"
    # One form, one pre-fill: the case carries the shared values it needs.
    case = flow.read(accepted["application_id"], CITIZEN)
    assert case["prefilled_fields"] >= 4 and case["department_id"] == "dept-wjw"

    clock.advance(timedelta(days=1))
    approve(flow, accepted["application_id"])
    second = cases(flow, bundle_id)
    assert second["QP-GA-602"]["state"] == "submitted"
    assert second["QP-WJ-102"]["state"] == "submitted"
    assert second["QP-YB-303"]["state"] == "waiting"
    flow.pump()
    for code in ("QP-GA-602", "QP-WJ-102"):
        approve(flow, cases(flow, bundle_id)[code]["application_id"])

    flow.pump()
    third = cases(flow, bundle_id)
    assert third["QP-RS-206"]["state"] == "accepted"
    assert third["QP-YB-303"]["state"] == "supplement_requested"
    assert third["QP-YB-303"]["findings"] == ["material_missing"]
    supplements = [k for k in outbox.to_people if ":supplement_requested:" in k]
    assert len(supplements) == 1
    assert (
        outbox.to_people[supplements[0]].data["application_id"]
        == (third["QP-YB-303"]["application_id"])
    )
    assert all(third[c]["supplement_rounds"] == 0 for c in third if c != "QP-YB-303"), (
        "补正 asked of one department only"
    )

    yb = third["QP-YB-303"]["application_id"]
    added = flow.api.post(
        f"/applications/{yb}/supplements", {"materials": [pdf("insured_form")]}, user=CITIZEN
    )
    assert added.status == 200, added
    flow.pump()
    assert cases(flow, bundle_id)["QP-YB-303"]["state"] == "accepted"
    approve(flow, yb)
    assert not [k for k in outbox.to_people if k.startswith("bundle_application:")]
    clock.advance(timedelta(days=2))
    approve(flow, third["QP-RS-206"]["application_id"])

    whole = flow.api.get(f"/bundle-applications/{bundle_id}", user=CITIZEN).json
    assert whole["state"] == "completed"
    assert {c["state"] for c in whole["cases"]} == {"approved"}
    completions = [k for k in outbox.to_people if k.startswith("bundle_application:")]
    assert completions == [f"bundle_application:{bundle_id}:completed"]
    # The cases' own acceptances and decisions are not told one by one.
    assert not [k for k in outbox.to_people if ":approved:" in k or ":accepted:" in k]
    assert whole["elapsed_working_days"] is not None and whole["promised_days"] == 18

    month = clock.now().astimezone(CHINA_TZ).strftime("%Y-%m")
    report = flow.api.get(f"/reports/applications?month={month}", user=ADMIN).json
    row = next(b for b in report["bundles"] if b["bundle_code"] == "birth")
    assert row["completed"] == 1 and row["all_approved"] == 1
    assert row["max_elapsed_working_days"] == whole["elapsed_working_days"]
    assert row["promised_working_days"] == 18


def test_a_retried_bundle_submission_creates_nothing_new(flow, container):
    body = birth_body(flow, [pdf("delivery_record")])
    first = submit_birth(flow, body=body, key="birth-retry-0001")
    assert first.status == 202, first
    again = submit_birth(flow, body=body, key="birth-retry-0001")
    assert again.status == 202
    assert again.json["bundle_application_id"] == first.json["bundle_application_id"]
    assert len(flow.messages()) == 1, "one pre-review hand-over, not two"
    mine = flow.api.get("/me/applications?limit=50", user=CITIZEN).json["items"]
    assert [a["item_code"] for a in mine].count("QP-WJ-101") == 1
    assert submit_birth(flow, body=body, key="birth-retry-0002").status == 202
    mine = flow.api.get("/me/applications?limit=50", user=CITIZEN).json["items"]
    assert [a["item_code"] for a in mine].count("QP-WJ-101") == 2, "a new key is a new one"


def test_the_same_bundle_submission_run_twice_finds_the_first(flow, container):
    """A rerun whose first run died after storing (its idempotency record lost with it): the
    bundle application and its cases follow from caller and key, nothing is stored twice."""
    from chalicelib.service_layer.bundles import BundleDeps, BundleSubmission, prefill_for, submit

    deps = BundleDeps.from_container(container)
    person = container.directory.get_user(CITIZEN).principal()
    fields, _, token = prefill_for(deps, person, "birth")
    values = {f.name: f.value for f in fields} | {"child_name": "张小宝", "birth_hospital": "医院"}
    submission = BundleSubmission("birth", token, values, [])
    one = submit(deps, person, submission, "rerun-key-0001")
    two = submit(deps, person, submission, "rerun-key-0001")
    assert one.bundle_application_id == two.bundle_application_id
    mine = container.application_store.by_owner(CITIZEN, 50, None).items
    assert [a.item_code for a in mine].count("QP-WJ-101") == 1


def test_a_bundle_application_is_the_applicants_own(flow, container):
    submitted = submit_birth(flow, materials=[pdf("delivery_record")], key="birth-own-0001")
    bundle_id = submitted.json["bundle_application_id"]
    assert flow.api.get(f"/bundle-applications/{bundle_id}", user="u-citizen-li").status == 404
    assert flow.api.get(f"/bundle-applications/{bundle_id}", user="u-window-wang").status == 200
