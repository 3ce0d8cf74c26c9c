"""Policy benefits end to end: HTTP routes, the local pumps (the policy-match queue consumed by
the functions/ Lambda, the payment queue, the applications stream, the schedules) on
in-process moto with the seeded policies, enterprises and people."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.service_layer.policies import get_version, versions_effective_between
from local import pumps
from local.seed_applications import ENTERPRISE
from local.seed_policies import (
    DIANSHANHU,
    ELIGIBLE_HIGH_TECH,
    ELIGIBLE_JOBS,
    HIGH_TECH_POLICY,
    HUAXIN,
    JOBS_POLICY,
    LIANTANG,
    QINGHE,
    TALENT_ITEM,
    TALENT_POLICY,
    ZHUJIAJIAO,
)
from tests.integration.helpers import PumpedApp

LVJING_USER = "u-enterprise-lvjing"
QINGHE_USER = "u-enterprise-qinghe"
ZHUJIAJIAO_USER = "u-enterprise-zhujiajiao"
SUPERVISOR = "u-supervisor-zhao"
ADMIN = "u-admin"
ALL_ENTERPRISES = (ENTERPRISE, QINGHE, DIANSHANHU, ZHUJIAJIAO, LIANTANG, HUAXIN)


class Flow(PumpedApp):
    flush_rounds = 4

    def pump(self, queue: str):
        return next(p for p in self.sqs if p.binding.queue_name.endswith(queue))

    def publish(self, policy_id: str) -> dict:
        return self.post(f"/policies/{policy_id}/versions/1/publish", None, SUPERVISOR)

    def grants_of(self, subject_id: str) -> list:
        return self.container.policy_store.grants_of(subject_id, 100, None).items

    def run_schedule(self, name: str, at: datetime) -> None:
        assert name in self.at(at)


@pytest.fixture
def flow(api, container, clock) -> Flow:
    from local.seed_applications import seed_applications
    from local.seed_policies import seed_policies

    seed_applications(container)
    seed_policies(container)
    return Flow(api, container, clock)


def _digest_time(flow: Flow) -> datetime:
    return flow.clock.now() + timedelta(hours=1, minutes=1)


def test_publish_grants_the_eligible_seeded_enterprises_and_pays_a_confirmed_grant_once(flow):
    flow.publish(JOBS_POLICY)

    granted = {s for s in ALL_ENTERPRISES if flow.grants_of(s)}
    assert granted == set(ELIGIBLE_JOBS)
    (grant,) = flow.grants_of(QINGHE)
    assert grant.state.value == "pending_confirmation" and grant.confirm_due
    assert grant.trace["outcome"] == "eligible"

    flow.run_schedule("policy-digest", _digest_time(flow))
    digests = [n for n in flow.notifications(QINGHE_USER) if n["category"] == "policy.digest"]
    assert len(digests) == 1 and "稳岗补贴" in digests[0]["body"]
    assert not [n for n in flow.notifications(ZHUJIAJIAO_USER) if n["category"] == "policy.digest"]

    mine = flow.api.get("/me/grants", user=QINGHE_USER)
    assert mine.status == 200 and mine.json["items"][0]["grant_id"] == grant.grant_id
    assert flow.api.post(f"/grants/{grant.grant_id}/confirm", user=LVJING_USER).status == 404

    # Hold the payment message, then deliver it three times.
    payments = flow.pump("policy-payments")
    sqs = flow.container.aws.client("sqs")
    url = flow.container.aws.queue_url("policy-payments")
    confirmed = flow.api.post(f"/grants/{grant.grant_id}/confirm", user=QINGHE_USER)
    assert confirmed.status == 200, confirmed
    assert confirmed.json["state"] == "paying"
    # A client retrying the confirmation gets the same answer, and nothing is paid twice.
    again = flow.api.post(f"/grants/{grant.grant_id}/confirm", user=QINGHE_USER)
    assert (again.status, again.json) == (200, confirmed.json)
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
    pumps.drain(payments)
    flow.flush()

    ledger = flow.container.finance.entries(QINGHE)
    assert len(ledger) == 1 and ledger[0]["amount"] == 20000
    paid = flow.api.get("/me/grants", user=QINGHE_USER).json["items"][0]
    assert paid["state"] == "paid" and paid["payment_ref"] == ledger[0]["payment_ref"]
    paid_notices = [
        n for n in flow.notifications(QINGHE_USER) if n["category"] == "policy.grant_paid"
    ]
    assert len(paid_notices) == 1
    assert flow.api.post(f"/grants/{grant.grant_id}/decline", user=QINGHE_USER).status == 422


def test_a_direct_grant_is_paid_without_confirmation_and_exactly_once_per_benefit(flow):
    flow.publish(HIGH_TECH_POLICY)
    assert {s for s in ALL_ENTERPRISES if flow.grants_of(s)} == set(ELIGIBLE_HIGH_TECH)
    (grant,) = flow.grants_of(ENTERPRISE)
    assert grant.state.value == "paid" and grant.amount == 250000
    assert len(flow.container.finance.entries(ENTERPRISE)) == 1

    # A second publish run (redelivered segments) creates nothing new.
    from chalicelib.service_layer.policies import PolicyDeps, start_population_match

    deps = PolicyDeps.from_container(flow.container)
    store = flow.container.policy_store
    for shard in range(8):
        store.save_checkpoint(HIGH_TECH_POLICY, 1, shard, {"cursor": None, "done": False})
    start_population_match(deps, store.get_version(HIGH_TECH_POLICY, 1))
    flow.flush()
    assert len(flow.grants_of(ENTERPRISE)) == 1
    assert len(flow.container.finance.entries(ENTERPRISE)) == 1


def test_a_profile_change_grants_only_the_newly_eligible_subject(flow):
    flow.publish(JOBS_POLICY)
    before = {s: len(flow.grants_of(s)) for s in ALL_ENTERPRISES}
    assert before[HUAXIN] == 0

    changed = flow.api.put(f"/profiles/{HUAXIN}", {"employees": 75}, user=ADMIN)
    assert changed.status == 200, changed
    flow.flush()

    after = {s: len(flow.grants_of(s)) for s in ALL_ENTERPRISES}
    assert after[HUAXIN] == 1
    assert {s: n for s, n in after.items() if s != HUAXIN} == {
        s: n for s, n in before.items() if s != HUAXIN
    }
    assert flow.api.put(f"/profiles/{HUAXIN}", {"employees": 5}, user=QINGHE_USER).status == 403


def test_checkup_groups_policies_with_chinese_reasons_and_a_quick_apply_hand_off(flow):
    flow.publish(JOBS_POLICY)
    flow.publish(HIGH_TECH_POLICY)

    young = flow.api.get("/me/policy-checkup?as_of=2026-11-26", user=ZHUJIAJIAO_USER)
    assert young.status == 200, young
    (jobs,) = [p for p in young.json["not_eligible"] if p["policy_id"] == JOBS_POLICY]
    assert any("成立年限" in r and "2" in r for r in jobs["reasons"]), jobs["reasons"]

    unknown = flow.api.get(f"/me/policy-checkup?subject={HUAXIN}", user="u-window-wang")
    assert unknown.status == 200, unknown
    (jobs,) = [p for p in unknown.json["unknown"] if p["policy_id"] == JOBS_POLICY]
    assert [m["label"] for m in jobs["missing_facts"]] == ["从业人数"]

    person = flow.api.get("/me/policy-checkup", user="u-citizen-zhang")
    (talent,) = person.json["eligible_quick_apply"]
    assert talent["policy_id"] == TALENT_POLICY
    assert talent["hand_off"]["prefill_url"] == f"/items/{TALENT_ITEM}/prefill"
    assert flow.api.get(talent["hand_off"]["prefill_url"], user="u-citizen-zhang").status == 200

    others = flow.api.get(f"/me/policy-checkup?subject={HUAXIN}", user=QINGHE_USER)
    assert others.status == 404


def test_an_unconfirmed_grant_expires_after_its_deadline(flow):
    flow.publish(JOBS_POLICY)
    (grant,) = flow.grants_of(DIANSHANHU)
    due = datetime.fromisoformat(grant.confirm_due)
    flow.run_schedule("policy-grant-expiry", due + timedelta(minutes=11))
    (expired,) = flow.grants_of(DIANSHANHU)
    assert expired.state.value == "expired"
    late = flow.api.post(f"/grants/{grant.grant_id}/confirm", user="u-enterprise-dianshanhu")
    assert late.status == 422
    assert not flow.container.finance.entries(DIANSHANHU)


def test_push_preferences_silence_a_tag_and_digests_are_at_most_daily(flow):
    opt_out = flow.api.put(
        "/me/push-preferences", {"default": True, "tags": {"科技创新": False}}, user=QINGHE_USER
    )
    assert opt_out.status == 200, opt_out
    assert flow.api.get("/me/push-preferences", user=QINGHE_USER).json["tags"] == {
        "科技创新": False
    }
    flow.publish(HIGH_TECH_POLICY)
    flow.run_schedule("policy-digest", _digest_time(flow))
    assert not [n for n in flow.notifications(QINGHE_USER) if n["category"] == "policy.digest"]
    assert [n for n in flow.notifications(LVJING_USER) if n["category"] == "policy.digest"]

    flow.publish(JOBS_POLICY)
    flow.run_schedule("policy-digest", flow.clock.now() + timedelta(hours=1, minutes=1))
    same_day = [n for n in flow.notifications(LVJING_USER) if n["category"] == "policy.digest"]
    assert len(same_day) == 1
    next_day = datetime(2026, 11, 27, 9, 0, tzinfo=CHINA_TZ)
    flow.run_schedule("policy-digest", next_day)
    later = [n for n in flow.notifications(LVJING_USER) if n["category"] == "policy.digest"]
    assert len(later) == 2 and "稳岗补贴" in json.dumps(later, ensure_ascii=False)


def test_staff_draft_validate_publish_and_the_public_reads_published_versions_only(flow):
    bad = flow.api.post(
        "/policies",
        {
            "title": "测试政策",
            "department_id": "dept-rsj",
            "effective_from": "2026-12-01",
            "legal_ref": "测试",
            "benefit": "1万元",
            "amount": 10000,
            "mode": "direct",
            "conditions": {"fact": "no_such_fact", "op": "eq", "value": 1},
        },
        user="u-dept-rsj",
    )
    assert bad.status == 400 and bad.json["code"] == "invalid_policy", bad
    body = {
        "policy_id": "qp-test-policy",
        "title": "测试政策",
        "department_id": "dept-rsj",
        "effective_from": "2026-12-01",
        "legal_ref": "测试文号",
        "benefit": "1万元",
        "amount": 10000,
        "mode": "direct",
        "conditions": {"fact": "employees", "op": "ge", "value": 10},
    }
    assert flow.api.post("/policies", body, user="u-dept-scjgj").status == 404
    drafted = flow.api.post("/policies", body, user="u-dept-rsj")
    assert drafted.status == 201 and drafted.json["state"] == "draft", drafted
    assert flow.api.get("/policies/qp-test-policy").status == 404
    assert (
        flow.api.post("/policies/qp-test-policy/versions/1/publish", user="u-dept-rsj").status
        == 403
    )
    flow.publish("qp-test-policy")
    public = flow.api.get("/policies/qp-test-policy")
    assert public.status == 200 and public.json["versions"][0]["state"] == "published"
    listed = flow.api.get("/policies")
    assert "qp-test-policy" in [p["policy_id"] for p in listed.json["items"]]

    from chalicelib.service_layer.policies import PolicyDeps

    deps = PolicyDeps.from_container(flow.container)
    found = versions_effective_between(date(2026, 12, 1), date(2026, 12, 31), deps)
    assert ("qp-test-policy", 1) in {(v.policy_id, v.version) for v in found}
    assert get_version("qp-test-policy", 1, deps).title == "测试政策"


def test_the_match_queue_is_pumped_into_the_functions_lambda(flow):
    from functions.policy_matcher.handler import handle

    (binding,) = pumps.discover(__import__("app").app, flow.container.settings).functions
    assert binding.handler is handle and binding.handler_name == "policy_matcher"
    assert flow.pump("policy-match").binding is not None
