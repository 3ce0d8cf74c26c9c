"""Knowledge base through the API and its handlers, on in-process moto and a ManualClock:
workflow and revisions, scheduled publish and archive, the question clock and the readiness clock
on the working-day calendar, "needs change" from real stream records, search and authorisation."""

from __future__ import annotations

from datetime import date, datetime

import boto3
import pytest
from botocore.config import Config

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.domain.notifications import notification_id_for

# Questions and readiness clocks run on dates before the fixture clock's start.
pytestmark = pytest.mark.first_sweep

DEPT = "u-dept-rsj"
OTHER_DEPT = "u-dept-scjgj"
SUPERVISOR = "u-supervisor-zhao"
CITIZEN = "u-citizen-zhang"
ARTICLE = {
    "question": "打零工的人交社保有补贴吗？",
    "answer": "以灵活方式就业并按规定缴纳社会保险费的就业困难人员，可以申请灵活就业社保补贴。",
    "department_id": "dept-rsj",
    "tags": ["灵活就业", "社保"],
    "item_links": [{"code": "QP-RS-202"}],
}


@pytest.fixture
def kb(api, container):
    from local.seed_applications import seed_applications

    seed_applications(container)
    return api


def _deps(container):
    from chalicelib.service_layer.knowledge import KnowledgeDeps

    return KnowledgeDeps.from_container(container)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)


def _create(api, body=None, user=DEPT) -> dict:
    result = api.post("/kb/articles", body or ARTICLE, user=user)
    assert result.status == 201, result
    return result.json


def _act(api, article_id: str, action: str, user: str, **extra) -> dict:
    result = api.post(f"/kb/articles/{article_id}/actions", {"action": action, **extra}, user=user)
    assert result.status == 200, result
    return result.json


def _approved(api, body=None) -> str:
    article_id = _create(api, body)["article_id"]
    _act(api, article_id, "submit", DEPT)
    _act(api, article_id, "approve", SUPERVISOR)
    return article_id


def _search(api, q: str) -> list[dict]:
    result = api.get(f"/kb/search?q={q}")
    assert result.status == 200, result
    return result.json["results"]


def _notified(container, key: str):
    return container.notifier.get(notification_id_for(key))


def _run_jobs(container) -> dict:
    """The due sweep (scheduled publish and archive) and the knowledge schedule (readiness)."""
    from chalicelib.service_layer.due import sweep
    from chalicelib.service_layer.knowledge import run_due_jobs

    outcomes = sweep(container.due_store, container.clock, container).outcomes
    summary = run_due_jobs(_deps(container)).summary()
    return {**summary, **{k: outcomes.get(k, 0) for k in ("published", "archived")}}


def _sweep(container) -> list[str]:
    """The due sweep; answers the clocks' ladder steps it took ("<clock id>:<step>")."""
    from chalicelib.service_layer import deadlines
    from chalicelib.service_layer.due import sweep

    taken: list[str] = []
    take_step = deadlines._take_step

    def recording(deps, clock, step, *args, **kwargs):
        take_step(deps, clock, step, *args, **kwargs)
        taken.append(f"{clock.clock_id}:{step.name}")

    deadlines._take_step = recording
    try:
        report = sweep(container.due_store, container.clock, container)
    finally:
        deadlines._take_step = take_step
    assert report.failures == []
    return taken


# ---- articles -------------------------------------------------------------------------------


def test_reviewed_article_is_published_found_by_search_with_its_guide_link(kb, container):
    article_id = _approved(kb)
    assert _search(kb, "打零工社保补贴") == []  # approved is not yet public
    published = _act(kb, article_id, "publish", SUPERVISOR)
    assert published["state"] == "published"
    assert published["item_links"] == [{"code": "QP-RS-202", "version": 1}]

    results = _search(kb, "打零工社保补贴")
    assert results[0]["article_id"] == article_id
    assert {"kind": "item", "code": "QP-RS-202", "href": "/items/QP-RS-202"} in results[0]["links"]
    assert kb.get(f"/kb/articles/{article_id}").status == 200  # public once published

    revisions = kb.get(f"/kb/articles/{article_id}/revisions", user=SUPERVISOR).json["items"]
    assert [(r["action"], r["by"]) for r in revisions] == [
        ("created", DEPT),
        ("submit", DEPT),
        ("approve", SUPERVISOR),
        ("publish", SUPERVISOR),
    ]


def test_editing_a_published_article_takes_it_out_of_search_until_reviewed(kb):
    article_id = _approved(kb)
    _act(kb, article_id, "publish", SUPERVISOR)
    edited = kb.put(
        f"/kb/articles/{article_id}",
        {**ARTICLE, "answer": ARTICLE["answer"] + "补贴按月发放。", "expected_revision": 1},
        user=DEPT,
    )
    assert edited.status == 200, edited
    assert edited.json["state"] == "draft" and edited.json["revision"] == 2
    assert _search(kb, "打零工社保补贴") == []
    stale = kb.put(f"/kb/articles/{article_id}", {**ARTICLE, "expected_revision": 1}, user=DEPT)
    assert stale.status == 409


def test_scheduled_publish_and_archive_run_on_the_injected_clock(kb, container, clock):
    article_id = _approved(kb)
    _act(kb, article_id, "publish", SUPERVISOR, at="2026-11-27T09:00:00+08:00")
    assert _run_jobs(container)["published"] == 0
    assert _search(kb, "打零工社保补贴") == []

    clock.set(_at("2026-11-27T09:01:00"))
    assert _run_jobs(container)["published"] == 1
    assert _search(kb, "打零工社保补贴")[0]["article_id"] == article_id
    assert _run_jobs(container)["published"] == 0  # a second run finds nothing due

    _act(kb, article_id, "archive", SUPERVISOR, at="2026-11-30T00:00:00+08:00")
    clock.set(_at("2026-11-29T23:59:00"))
    assert _run_jobs(container)["archived"] == 0
    clock.set(_at("2026-11-30T00:04:00"))
    assert _run_jobs(container)["archived"] == 1
    assert _search(kb, "打零工社保补贴") == []
    article = kb.get(f"/kb/articles/{article_id}", user=SUPERVISOR).json
    assert article["state"] == "archived"


def test_expiry_date_archives_the_article_after_its_last_day(kb, container, clock):
    article_id = _approved(kb, {**ARTICLE, "expires_on": "2026-12-31"})
    published = _act(kb, article_id, "publish", SUPERVISOR)
    assert published["archive_at"] == "2027-01-01T00:00:00+08:00"
    clock.set(_at("2027-01-01T00:05:00"))
    assert _run_jobs(container)["archived"] == 1


def test_authorisation_of_articles(kb):
    assert kb.post("/kb/articles", ARTICLE, user=CITIZEN).status == 403
    # Another department's staff may not write for this department.
    assert kb.post("/kb/articles", ARTICLE, user=OTHER_DEPT).status == 404
    article_id = _create(kb)["article_id"]
    # Drafts are invisible to the public and to other departments.
    assert kb.get(f"/kb/articles/{article_id}").status == 404
    assert kb.get(f"/kb/articles/{article_id}", user=CITIZEN).status == 404
    assert kb.get(f"/kb/articles/{article_id}", user=OTHER_DEPT).status == 404
    _act(kb, article_id, "submit", DEPT)
    # The submitter may not approve it; department staff may not publish.
    refused = kb.post(f"/kb/articles/{article_id}/actions", {"action": "approve"}, user=DEPT)
    assert refused.status == 422 and refused.json["code"] == "four_eyes"
    _act(kb, article_id, "approve", SUPERVISOR)
    publish = kb.post(f"/kb/articles/{article_id}/actions", {"action": "publish"}, user=DEPT)
    assert publish.status == 403


# ---- unanswered questions -------------------------------------------------------------------


def test_question_has_a_five_working_day_clock_and_its_answer_becomes_a_draft(kb, container, clock):
    clock.set(_at("2026-09-28T10:00:00"))
    filed = kb.post(
        "/kb/questions",
        {"text": "灵活就业补贴断缴了还能领吗？", "item_code": "QP-RS-202"},
        user=CITIZEN,
    )
    assert filed.status == 201, filed
    question = filed.json
    # 5 working days after 9/28 across the National Day holiday: the make-up Saturday 10/10.
    assert question["due_at"] == "2026-10-10T23:59:59+08:00"
    assert question["department_id"] == "dept-rsj" and question["routed_by"] == "item:QP-RS-202"
    assert question["channel"] == "mini_program"
    qid = question["question_id"]
    assert _notified(container, f"kb-question:{qid}:routed:dept-rsj") is not None

    queue = kb.get("/kb/questions", user=DEPT).json["items"]
    assert [q["question_id"] for q in queue] == [qid]
    assert kb.get("/kb/questions", user=OTHER_DEPT).json["items"] == []
    assert kb.get(f"/kb/questions/{qid}", user="u-citizen-li").status == 404

    clock.set(_at("2026-10-09T15:00:00"))
    answered = kb.post(
        f"/kb/questions/{qid}/answer",
        {"answer": "断缴期间不发放补贴，补缴后可按规定继续申领剩余期限的补贴。"},
        user=DEPT,
    )
    assert answered.status == 201, answered
    article = answered.json["article"]
    assert article["state"] == "draft" and article["source_question_id"] == qid
    assert article["item_links"][0]["code"] == "QP-RS-202"
    mine = kb.get(f"/kb/questions/{qid}", user=CITIZEN).json
    assert mine["state"] == "answered" and mine["article_id"] == article["article_id"]
    told = _notified(container, f"kb-question:{qid}:answered:{CITIZEN}")
    assert told is not None and "断缴期间" in told.body
    clock_state = container.clock_store.get(question_clock_id(container, qid)).state.value
    assert clock_state == "met"
    again = kb.post(f"/kb/questions/{qid}/answer", {"answer": "重复答复的内容。"}, user=DEPT)
    assert again.status == 422


def question_clock_id(container, qid: str) -> str:
    return container.knowledge_store.get_question(qid)[0].clock_id


def test_unanswered_question_is_urged_at_its_deadline_and_supervised_after(kb, container, clock):
    clock.set(_at("2026-09-28T10:00:00"))
    qid = kb.post(
        "/kb/questions",
        {"text": "来电人问：孩子出生以后医保怎么办？", "channel": "hotline"},
        user="u-dispatcher-chen",
    ).json["question_id"]
    question = container.knowledge_store.get_question(qid)[0]
    assert question.department_id == "dept-ybj" and question.asker_user_id is None
    clock_id = question.clock_id

    clock.set(_at("2026-10-10T23:00:00"))  # before the deadline: only the warning
    assert [s.split(":")[1] for s in _sweep(container)] == ["warning"]
    clock.set(_at("2026-10-12T10:00:00"))  # deadline 10/10 passed: urge
    assert [s.split(":")[1] for s in _sweep(container)] == ["urge"]
    clock.set(_at("2026-10-13T10:00:00"))  # 1 working day overdue: 督办 by the district office
    assert [s.split(":")[1] for s in _sweep(container)] == ["supervise"]
    assert _notified(container, f"clock:{clock_id}:supervise").recipient_id == "dept-zwb"


def test_a_retried_question_with_the_same_idempotency_key_files_it_once(kb, container):
    body = {"text": "灵活就业补贴断缴了还能领吗？"}
    headers = {"Idempotency-Key": "question-retry-0001"}
    first = kb.post("/kb/questions", body, user=CITIZEN, headers=headers).json
    again = kb.post("/kb/questions", body, user=CITIZEN, headers=headers).json
    assert again["question_id"] == first["question_id"]
    assert len(kb.get("/me/kb-questions", user=CITIZEN).json["items"]) == 1
    assert len(kb.get("/kb/questions", user=DEPT).json["items"]) == 1


def test_staff_answer_for_a_caller_without_an_account_goes_to_the_staff_member(kb, container):
    qid = kb.post(
        "/kb/questions", {"text": "营业执照地址变了食品许可证要换吗？"}, user="u-window-wang"
    ).json["question_id"]
    question = container.knowledge_store.get_question(qid)[0]
    assert question.channel.value == "window" and question.department_id == "dept-scjgj"
    kb.post(
        f"/kb/questions/{qid}/answer",
        {"answer": "经营场所变化的须办理食品经营许可证变更，换发新证。"},
        user=OTHER_DEPT,
    )
    told = _notified(container, f"kb-question:{qid}:answered:u-window-wang")
    assert told is not None and "请回复提问人" in told.body


# ---- readiness before a policy takes effect --------------------------------------------------


class FakeCatalog:
    available = True

    def __init__(self, *infos):
        self.infos = {(i.policy_id, i.version): i for i in infos}

    def get(self, policy_id, version):
        return self.infos.get((policy_id, version))

    def latest(self, policy_id):
        found = [i for (p, _), i in self.infos.items() if p == policy_id]
        return max(found, key=lambda i: i.version) if found else None

    def effective_between(self, start, end):
        return [i for i in self.infos.values() if i.effective_from and start <= i.effective_from]


@pytest.fixture
def policy(container):
    from chalicelib.service_layer import knowledge

    info = knowledge.PolicyInfo(
        "qp-test-policy",
        2,
        "青浦区灵活就业社保补贴（2026年修订）",
        "dept-rsj",
        date(2026, 10, 8),
        "published",
    )
    container.policy_catalog = FakeCatalog(info)
    return info


def _readiness(api) -> list[dict]:
    result = api.get("/kb/readiness?from=2026-09-01", user=SUPERVISOR)
    assert result.status == 200, result
    return result.json["items"]


def test_readiness_clock_warns_then_stops_when_a_linked_article_is_approved(
    kb, container, clock, policy
):
    clock.set(_at("2026-09-21T10:00:00"))
    assert _run_jobs(container)["readiness_started"] == 1  # the catch-up finds the version
    [row] = _readiness(kb)
    # Effective Thursday 10/8 after the National Day holiday: ready by the end of 9/30.
    assert row["target_date"] == "2026-09-30" and row["due_at"] == "2026-09-30T23:59:59+08:00"
    assert row["status"] == "pending"

    clock.set(_at("2026-09-29T20:00:00"))  # 80% of the working days used
    assert [s.split(":")[1] for s in _sweep(container)] == ["warning"]
    assert _readiness(kb)[0]["status"] == "at_risk"

    body = {**ARTICLE, "policy_links": [{"policy_id": policy.policy_id, "version": 2}]}
    article_id = _approved(kb, body)
    [row] = _readiness(kb)
    assert row["status"] == "ready" and row["article_id"] == article_id
    clock.set(_at("2026-10-09T10:00:00"))
    assert _sweep(container) == []  # stopped: no urge, no 督办


def test_missed_readiness_escalates_through_the_same_sweep(kb, container, clock, policy):
    from chalicelib.service_layer.knowledge import ensure_readiness

    clock.set(_at("2026-09-21T10:00:00"))
    record = ensure_readiness(_deps(container), policy)
    clock.set(_at("2026-10-01T09:00:00"))
    assert sorted(s.split(":")[1] for s in _sweep(container)) == ["urge", "warning"]
    assert _readiness(kb)[0]["status"] == "missed"
    clock.set(_at("2026-10-09T09:00:00"))  # 10/8 (1 working day overdue) has ended
    assert [s.split(":")[1] for s in _sweep(container)] == ["supervise"]
    assert _notified(container, f"clock:{record.clock_id}:supervise") is not None


def test_readiness_of_a_policy_already_answered_starts_ready(kb, container, clock, policy):
    from chalicelib.service_layer.knowledge import ensure_readiness

    clock.set(_at("2026-09-21T10:00:00"))
    body = {**ARTICLE, "policy_links": [{"policy_id": policy.policy_id, "version": 2}]}
    article_id = _approved(kb, body)
    record = ensure_readiness(_deps(container), policy)
    assert record.state.value == "ready" and record.article_id == article_id
    assert record.clock_id is None


def test_department_staff_see_only_their_departments_readiness(kb, container, clock, policy):
    clock.set(_at("2026-09-21T10:00:00"))
    _run_jobs(container)
    assert len(kb.get("/kb/readiness?from=2026-09-01", user=DEPT).json["items"]) == 1
    assert kb.get("/kb/readiness?from=2026-09-01", user=OTHER_DEPT).json["items"] == []
    assert kb.get("/kb/readiness", user=CITIZEN).status == 403


# ---- "needs change" from the tables' streams ------------------------------------------------


class Streams:
    """Plays Lambda's event source mapping: the records written since the last read."""

    def __init__(self, provisioned, table: str):
        self.arn = provisioned.stream_arns[table]
        self.client = boto3.client(
            "dynamodbstreams",
            region_name="us-east-1",
            config=Config(account_id_endpoint_mode="disabled"),
        )
        self.iterators: dict[str, str] = {}
        self.event()  # start after what is already there

    def event(self) -> dict:
        records = []
        for shard in self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            iterator = (
                self.iterators.get(shard_id)
                or self.client.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            page = self.client.get_records(ShardIterator=iterator)
            self.iterators[shard_id] = page["NextShardIterator"]
            for r in page["Records"]:
                dynamodb = dict(r["dynamodb"])
                dynamodb["ApproximateCreationDateTime"] = int(
                    dynamodb["ApproximateCreationDateTime"].timestamp()
                )
                records.append({**r, "dynamodb": dynamodb, "eventSourceARN": self.arn})
        return {"Records": records}


def test_new_guide_version_flags_linked_articles_from_the_applications_stream(
    kb, container, provisioned
):
    from dataclasses import replace

    from chalicelib.domain.identity import SYSTEM
    from chalicelib.service_layer.applications.common import ApplicationDeps
    from chalicelib.service_layer.applications.guide import publish_item

    article_id = _approved(kb)
    _act(kb, article_id, "publish", SUPERVISOR)
    streams = Streams(provisioned, "applications")
    deps = ApplicationDeps.from_container(container)
    item = container.application_store.latest_item("QP-RS-202")
    publish_item(deps, SYSTEM, replace(item, conditions=(*item.conditions, "新增条件")))

    event = streams.event()
    assert len(event["Records"]) >= 2  # the version and the "latest" pointer
    result = kb.client.lambda_.invoke("kb_item_changed", event).payload
    assert result == {"batchItemFailures": []}
    article = kb.get(f"/kb/articles/{article_id}", user=DEPT).json
    assert article["needs_change"] == ["item:QP-RS-202:v2"]
    assert article["state"] == "published"  # still answers people until it is revised
    flagged = kb.get("/kb/articles?state=published&needs_change=true", user=DEPT).json["items"]
    assert [a["article_id"] for a in flagged] == [article_id]
    assert (
        _notified(container, f"kb-article:{article_id}:needs_change:item:QP-RS-202:v2").recipient_id
        == "dept-rsj"
    )
    # Redelivery of the same records changes nothing.
    kb.client.lambda_.invoke("kb_item_changed", event)
    revisions = kb.get(f"/kb/articles/{article_id}/revisions", user=DEPT).json["items"]
    assert [r["action"] for r in revisions].count("needs_change") == 1


def test_policy_version_events_flag_articles_and_follow_readiness(kb, container, clock, policy):
    from types import SimpleNamespace

    from chalicelib.entrypoints.events.knowledge import _policy_record

    clock.set(_at("2026-09-21T10:00:00"))
    body = {**ARTICLE, "policy_links": [{"policy_id": policy.policy_id, "version": 2}]}
    article_id = _create(kb, body)["article_id"]

    def record(name, new, old):
        import json

        return SimpleNamespace(
            event_name=SimpleNamespace(name=name),
            dynamodb=SimpleNamespace(
                keys={"pk": f"policy#{policy.policy_id}", "sk": f"v#{new['version']:06d}"},
                new_image={"data": json.dumps(new)},
                old_image={"data": json.dumps(old)} if old else None,
            ),
        )

    v2 = {
        "policy_id": policy.policy_id,
        "version": 2,
        "title": policy.title,
        "department_id": "dept-rsj",
        "effective_from": "2026-10-08",
        "state": "published",
    }
    # A published version changed what the article cites: flagged, readiness opened.
    _policy_record(record("MODIFY", {**v2, "summary": "新"}, {**v2, "summary": "旧"}))
    article = kb.get(f"/kb/articles/{article_id}", user=DEPT).json
    assert article["needs_change"] == [f"policy:{policy.policy_id}:v2"]
    assert [r["status"] for r in _readiness(kb)] == ["pending"]
    # Retired: the readiness clock is withdrawn (cancelled).
    _policy_record(record("MODIFY", {**v2, "state": "retired"}, v2))
    assert [r["status"] for r in _readiness(kb)] == ["withdrawn"]
    # Heads and other keys are skipped from the keys alone.
    head = record("MODIFY", v2, None)
    head.dynamodb.keys = {"pk": f"policy#{policy.policy_id}", "sk": "head"}
    _policy_record(head)


# ---- search over the seed ----------------------------------------------------------------


def test_search_over_the_seeded_answers_is_public_and_links_the_policy_checkup(kb, container):
    from local.seed_knowledge import article_id, seed_knowledge

    assert seed_knowledge(container) == len(
        __import__("local.seed_knowledge").seed_knowledge.ARTICLES
    )
    assert seed_knowledge(container) == 0  # idempotent
    results = _search(kb, "高企奖励要自己申请吗")
    assert results[0]["article_id"] == article_id("gxjs-reward")
    assert {"kind": "policy_checkup", "href": "/me/policy-checkup"} in results[0]["links"]
    # The dictionary holds the seeded items' names: a full item name is one token.
    from chalicelib.adapters.search_index import tokenize

    assert "灵活就业人员社会保险费补贴申领" in tokenize("灵活就业人员社会保险费补贴申领怎么办")
    assert kb.get("/kb/search?q=").status == 400
    assert kb.get(f"/kb/search?q={'长' * 101}").status == 400


def test_a_new_policy_version_flags_seeded_answers_and_opens_readiness_from_the_real_stream(
    kb, container, provisioned, clock
):
    """Through the policy capability itself: its store's writes, its stream, our consumer."""
    from chalicelib.domain.identity import SYSTEM
    from chalicelib.service_layer import policies
    from local.seed_knowledge import article_id, seed_knowledge
    from local.seed_policies import TALENT_POLICY, seed_policies

    seed_policies(container)
    seed_knowledge(container)
    streams = Streams(provisioned, "policies")
    deps = policies.PolicyDeps.from_container(container)
    policies.new_version(
        deps, SYSTEM, TALENT_POLICY, {"effective_from": "2027-01-01", "summary": "补贴提高"}
    )
    policies.publish_version(deps, SYSTEM, TALENT_POLICY, 2)

    result = kb.client.lambda_.invoke("kb_policy_changed", streams.event()).payload
    assert result == {"batchItemFailures": []}
    for slug in ("rc501-who", "rc501-amount"):
        article = kb.get(f"/kb/articles/{article_id(slug)}", user=DEPT).json
        assert article["needs_change"] == [f"policy:{TALENT_POLICY}:v2"], slug
    [row] = _readiness(kb)
    assert (row["policy_id"], row["version"], row["status"]) == (TALENT_POLICY, 2, "pending")
    assert row["target_date"] == "2026-12-31"
