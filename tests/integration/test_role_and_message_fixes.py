"""Role and message fixes found by trying the API as a mini-program developer would."""

from __future__ import annotations

from datetime import datetime

import pytest

from chalicelib.domain.notifications import notification_id_for

CITIZEN = "u-citizen-zhang"
OTHER_CITIZEN = "u-citizen-li"
SUPERVISOR = "u-supervisor-zhao"
WINDOW = "u-window-wang"
ONLINE_DIMENSIONS = ("整体满意度", "办事效率", "办事指南精确度", "办事便捷度", "平台操作性")


@pytest.fixture
def seeded(container):
    from local.seed import seed
    from local.seed_applications import seed_applications
    from local.seed_policies import seed_policies
    from local.seed_tickets import seed_routing_rules

    seed(container.directory)
    seed_applications(container)
    seed_policies(container)
    seed_routing_rules(container)
    return container


def test_the_supervisor_who_may_publish_a_draft_reads_it_first(api, seeded):
    from local.seed_policies import HIGH_TECH_POLICY

    path = f"/policies/{HIGH_TECH_POLICY}/versions/1"
    read = api.get(path, user=SUPERVISOR)
    assert read.status == 200, read
    assert read.json["state"] == "draft"
    assert api.get(path, user=CITIZEN).status in (403, 404)  # still not for the public
    assert api.post(f"{path}/publish", user=SUPERVISOR).status == 200


def test_a_question_routed_to_the_district_office_is_answered_by_its_supervisor(api, seeded):
    filed = api.post("/kb/questions", {"text": "周末可以来办事吗？"}, user=CITIZEN)
    assert filed.status == 201, filed
    assert filed.json["department_id"] == "dept-zwb"
    question_id = filed.json["question_id"]
    answered = api.post(
        f"/kb/questions/{question_id}/answer",
        {"answer": "区政务服务中心周六上午开放部分窗口。"},
        user=SUPERVISOR,
    )
    assert answered.status == 201, answered
    assert answered.json["question"]["state"] == "answered"


def test_a_departments_questions_are_still_not_the_supervisors_to_answer(api, seeded):
    filed = api.post(
        "/kb/questions",
        {"text": "灵活就业补贴断缴了还能领吗？", "item_code": "QP-RS-202"},
        user=CITIZEN,
    )
    assert filed.json["department_id"] == "dept-rsj"
    refused = api.post(
        f"/kb/questions/{filed.json['question_id']}/answer", {"answer": "可以"}, user=SUPERVISOR
    )
    assert refused.status in (403, 404)


def test_a_subject_with_a_wrong_check_digit_is_a_400_not_a_missing_profile(api, seeded):
    from local.seed_applications import ENTERPRISE

    wrong = "310118198503121234"  # the check digit of 31011819850312123 is 3
    refused = api.get(f"/me/policy-checkup?subject={wrong}", user=WINDOW)
    assert refused.status == 400, refused
    assert refused.json["code"] == "validation_failed"
    assert "校验位" in refused.json["fields"][0]["message"]
    assert api.get(f"/me/policy-checkup?subject={ENTERPRISE}", user=WINDOW).status == 200


def _rating(ticket_id: str) -> dict:
    return {
        "handling_type": "ticket",
        "handling_id": ticket_id,
        "rating": 5,
        "dimensions": dict.fromkeys(ONLINE_DIMENSIONS, 5),
    }


def test_rating_an_unrouted_own_ticket_says_it_is_not_complete(api, seeded):
    filed = api.post(
        "/tickets",
        {
            "kind": "cross_department",
            "channel": "mini_program",
            "description": "跨部门的事情没人管，希望有人统筹",
            "contact": {"method": "phone"},
        },
        user=CITIZEN,
    )
    assert filed.status == 201, filed
    assert filed.json["state"] == "submitted" and filed.json["department_id"] is None
    ticket_id = filed.json["ticket_id"]

    mine = api.post("/reviews", _rating(ticket_id), user=CITIZEN)
    assert mine.status == 422, mine
    assert mine.json["code"] == "handling_not_complete"
    others = api.post("/reviews", _rating(ticket_id), user=OTHER_CITIZEN)
    assert others.status == 404 and others.json["code"] == "handling_not_found"


def test_the_dev_user_list_has_every_account_that_can_get_a_token(api, seeded):
    from local.seed import USERS
    from local.seed_policies import ACCOUNTS

    listed: list[dict] = []
    cursor = None
    while True:
        query = "/dev/users?limit=5" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(query)
        assert page.status == 200, page
        listed += page.json["items"]
        cursor = page.json["next_cursor"]
        if not cursor:
            break
    ids = [u["user_id"] for u in listed]
    assert len(ids) == len(set(ids))
    assert {u.user_id for u in (*USERS, *ACCOUNTS)} <= set(ids)
    for user_id in ids:
        assert api.post("/dev/tokens", {"user_id": user_id}).status == 201


def test_seeded_policy_versions_say_when_they_were_created(seeded):
    from local.seed_policies import POLICIES

    for version in POLICIES:
        stored = seeded.policy_store.get_version(version.policy_id, version.version)
        assert datetime.fromisoformat(stored.created_at).tzinfo is not None, version.policy_id


def test_a_dispatch_notice_quotes_the_description_without_doubled_punctuation(api, seeded):
    filed = api.post(
        "/tickets",
        {
            "kind": "not_accepted",
            "channel": "mini_program",
            "description": "网上提交企业设立登记三次都被退回，每次退回的理由都不一样。",
            "contact": {"method": "phone"},
            "service_item_id": "item-qysl",
            "service_item_name": "企业设立登记",
        },
        user=CITIZEN,
    )
    assert filed.status == 201, filed
    ticket = filed.json
    dispatch = next(e for e in ticket["timeline"] if e["event"] == "dispatch")
    key = f"ticket:{ticket['ticket_id']}:{dispatch['seq']}:dispatched:{ticket['department_id']}"
    notice = seeded.notifier.get(notification_id_for(key))
    assert notice is not None
    assert "不一样。请于" in notice.body and "。。" not in notice.body
