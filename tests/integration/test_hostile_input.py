"""The audit's hostile requests: each is answered 4xx and changes nothing stored."""

from __future__ import annotations

import json

import pytest

from local.seed_policies import HUAXIN
from tests.integration.test_tickets import body as ticket_body

ADMIN = "u-admin"


@pytest.fixture
def seeded(container):
    from local.seed_applications import seed_applications
    from local.seed_policies import seed_policies
    from local.seed_tickets import seed_routing_rules

    seed_applications(container)
    seed_policies(container)
    seed_routing_rules(container)
    return container


def _profile(container) -> dict:
    return container.application_store.get_profile(HUAXIN).to_dict()


@pytest.mark.parametrize(
    "raw",
    [
        '{"founded_on": "2026-02-30"}',
        '{"registered_capital": 1e400}',
        '{"employees": ' + "1" + "0" * 200 + "}",
        '{"employees": 10000001}',
        '{"name": "绿\\u0000境"}',
        '{"name": "a", "name": "b"}',
        '{"last_major_violation_on": "2025-13-01"}',
    ],
)
def test_a_bad_profile_update_is_refused_and_changes_nothing(api, seeded, raw):
    before = _profile(seeded)
    result = api.put(f"/profiles/{HUAXIN}", raw=raw, user=ADMIN)
    assert result.status == 400, result
    assert result.json["code"] in {
        "validation_failed",
        "invalid_json",
        "control_characters",
        "duplicate_json_key",
    }
    assert _profile(seeded) == before


def test_a_nul_in_a_ticket_description_is_refused_and_no_ticket_is_stored(api, seeded):
    raw = json.dumps(ticket_body(description="企业设立登记\u0000网上提交三次都被退回"))
    result = api.post("/tickets", raw=raw, user="u-citizen-zhang")
    assert result.status == 400 and result.json["code"] == "control_characters"
    assert api.get("/me/tickets", user="u-citizen-zhang").json["items"] == []


def test_a_material_valid_until_30_february_is_refused(api, seeded):
    from tests.integration.test_applications import pdf

    pre = api.get("/items/QP-SC-105/prefill", user="u-enterprise-lvjing").json
    values = {f["name"]: f["value"] for f in pre["fields"]}
    values["new_premises"] = "华新镇华志路1008号"
    result = api.post(
        "/applications",
        {
            "item_code": "QP-SC-105",
            "prefill_token": pre["prefill_token"],
            "fields": values,
            "materials": [pdf("floor_plan", valid_until="2026-02-30"), pdf("safety_rules")],
        },
        user="u-enterprise-lvjing",
    )
    assert result.status == 400 and result.json["code"] == "validation_failed"
    assert any(f["field"].endswith("valid_until") for f in result.json["fields"])
    mine = api.get("/me/applications", user="u-enterprise-lvjing")
    assert mine.status == 200 and mine.json["items"] == []
