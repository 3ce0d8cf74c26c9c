"""Policy consumers that meet data they cannot process park it like every other consumer: the
grant or the match segment moves to a state the office (and the holder) see, with the alert."""

from __future__ import annotations

import pytest

from chalicelib.domain import errors as e
from local.seed_applications import ENTERPRISE
from local.seed_policies import ELIGIBLE_HIGH_TECH, HIGH_TECH_POLICY
from tests.integration.test_policies import SUPERVISOR, Flow

ENTERPRISE_USER = "u-enterprise-lvjing"


@pytest.fixture
def flow(api, container, clock) -> Flow:
    from local.seed_applications import seed_applications
    from local.seed_policies import seed_policies

    seed_applications(container)
    seed_policies(container)
    return Flow(api, container, clock)


@pytest.fixture
def alerts(monkeypatch) -> list[tuple[str, str]]:
    """The office alerts sent, by consumer and code (the alert itself still goes out)."""
    from chalicelib.entrypoints.events import batch

    sent: list[tuple[str, str]] = []
    real = batch._alert_office

    def spy(consumer, rid, code, error):
        sent.append((consumer, code))
        real(consumer, rid, code, error)

    monkeypatch.setattr(batch, "_alert_office", spy)
    return sent


def test_a_payment_refused_for_its_data_holds_the_grant_for_manual_review(
    flow: Flow, container, monkeypatch, alerts
):
    def refuse(disbursement):
        raise e.InvalidInput("收款账户信息有误", code="invalid_payee")

    monkeypatch.setattr(container.finance, "disburse", refuse)
    flow.publish(HIGH_TECH_POLICY)

    assert ("pay_policy_grants", "invalid_payee") in alerts
    for subject in ELIGIBLE_HIGH_TECH:
        (grant,) = flow.grants_of(subject)
        assert grant.state.value == "needs_manual_review"
    mine = flow.api.get("/me/grants", user=ENTERPRISE_USER).json["items"][0]
    assert mine["state"] == "needs_manual_review"
    inbox = flow.inbox(ENTERPRISE_USER)
    assert inbox.count("policy.grant_needs_manual_review") == 1
    assert container.finance.entries(ENTERPRISE) == []

    # A redelivery of the same payment message changes nothing more.
    from chalicelib.service_layer.policies import PolicyDeps, hold_grant

    (grant,) = flow.grants_of(ENTERPRISE)
    assert hold_grant(PolicyDeps.from_container(container), grant.grant_id, "again") is None
    assert flow.inbox(ENTERPRISE_USER).count("policy.grant_needs_manual_review") == 1


def test_a_segment_that_meets_bad_data_shows_as_failed_in_the_match_progress(
    flow: Flow, monkeypatch, alerts
):
    from chalicelib.domain import policy_rules

    def unreadable(profile, licences):
        raise ValueError("Invalid isoformat string: '2026-02-30'")

    monkeypatch.setattr(policy_rules, "facts_from", unreadable)
    flow.publish(HIGH_TECH_POLICY)

    progress = flow.api.get(f"/policies/{HIGH_TECH_POLICY}/versions/1/match", user=SUPERVISOR)
    assert progress.status == 200, progress
    failed = progress.json["segments_failed"]
    assert failed and all("2026-02-30" in f["reason"] for f in failed)
    assert progress.json["segments_done"] + len(failed) == progress.json["segments"]
    assert ("policy_matcher", "ValueError") in alerts
    assert flow.grants_of(ENTERPRISE) == []

    # Once the data can be read, a new message for the segment resumes it and clears the mark.
    monkeypatch.undo()
    from chalicelib.service_layer.policies import PolicyDeps, start_population_match

    deps = PolicyDeps.from_container(flow.container)
    start_population_match(deps, flow.container.policy_store.get_version(HIGH_TECH_POLICY, 1))
    flow.flush()
    again = flow.api.get(f"/policies/{HIGH_TECH_POLICY}/versions/1/match", user=SUPERVISOR).json
    assert again["segments_failed"] == [] and again["segments_done"] == again["segments"]
    assert flow.grants_of(ENTERPRISE)
