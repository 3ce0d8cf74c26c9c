"""The stream consumers decide from a record's keys and images alone what concerns them."""

from __future__ import annotations

import json
from types import SimpleNamespace

from chalicelib.entrypoints.events.knowledge import item_version, policy_change

V = {
    "policy_id": "qp-x",
    "version": 2,
    "title": "稳岗补贴",
    "state": "published",
    "effective_from": "2027-01-01",
    "summary": "旧",
}


def _record(name: str, pk: str, sk: str, new=None, old=None):
    return SimpleNamespace(
        event_name=SimpleNamespace(name=name),
        dynamodb=SimpleNamespace(
            keys={"pk": pk, "sk": sk},
            new_image={"data": json.dumps(new)} if new else None,
            old_image={"data": json.dumps(old)} if old else None,
        ),
    )


def test_new_guide_versions_are_picked_out_of_the_applications_stream():
    assert item_version(_record("INSERT", "item#QP-RS-202", "v#000002")) == ("QP-RS-202", 2)
    assert item_version(_record("MODIFY", "item#QP-RS-202", "latest")) is None
    assert item_version(_record("INSERT", "item#QP-RS-202", "latest")) is None
    assert item_version(_record("INSERT", "app#abc", "app")) is None
    assert item_version(_record("INSERT", "subject#1", "profile")) is None


def test_policy_writes_are_classified_by_what_an_article_cites():
    pk, sk = "policy#qp-x", "v#000002"
    draft = {**V, "state": "draft"}
    assert policy_change(_record("MODIFY", pk, sk, V, draft)) == (V, "published")
    assert policy_change(_record("INSERT", pk, sk, V)) == (V, "published")
    changed = {**V, "summary": "新"}
    assert policy_change(_record("MODIFY", pk, sk, changed, V)) == (changed, "modified")
    retired = {**V, "state": "retired"}
    assert policy_change(_record("MODIFY", pk, sk, retired, V)) == (retired, "retired")
    # A rewrite changing nothing cited, a draft, a head record, a removal.
    assert policy_change(_record("MODIFY", pk, sk, {**V, "created_by": "x"}, V)) == (
        V | {"created_by": "x"},
        None,
    )
    assert policy_change(_record("INSERT", pk, sk, draft))[1] is None
    assert policy_change(_record("MODIFY", pk, "head", V, V)) is None
    assert policy_change(_record("REMOVE", pk, sk, None, V)) is None
