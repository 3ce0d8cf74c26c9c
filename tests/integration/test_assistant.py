"""The assistant (智能客服) through the API on in-process moto: asking back when a question fits
several matters and resolving on the reply, context across turns, off-topic answers without
articles, unanswered questions filed with their clock, hand-over to live help with the
transcript, and the colloquial lexicon's review."""

from __future__ import annotations

import pytest

CITIZEN = "u-citizen-zhang"
OTHER = "u-citizen-li"
AGENT = "u-window-wang"
DEPT = "u-dept-rsj"
SUPERVISOR = "u-supervisor-zhao"


@pytest.fixture
def chat(api, container):
    from local.seed_applications import seed_applications
    from local.seed_knowledge import seed_knowledge

    seed_applications(container)
    seed_knowledge(container)
    return api


def _start(api, text: str | None = None, user: str = CITIZEN) -> dict:
    result = api.post("/assistant/conversations", {"text": text} if text else {}, user=user)
    assert result.status == 201, result
    return result.json


def _say(api, conversation_id: str, text: str, user: str = CITIZEN) -> dict:
    result = api.post(
        f"/assistant/conversations/{conversation_id}/messages", {"text": text}, user=user
    )
    assert result.status == 200, result
    return result.json


def _rs202_articles() -> set[str]:
    from local.seed_knowledge import article_id

    return {article_id("rs202-who"), article_id("rs202-amount")}


def test_an_ambiguous_question_is_asked_back_and_the_reply_resolves_it(chat):
    started = _start(chat, "补贴怎么申请")
    clarify = started["turns"][-1]
    assert clarify["kind"] == "clarify"
    assert clarify["articles"] == []
    codes = [c["code"] for c in clarify["choices"]]
    assert len(codes) >= 2 and "QP-RS-202" in codes

    number = codes.index("QP-RS-202") + 1
    resolved = _say(chat, started["conversation_id"], f"第{number}个")
    answer = resolved["turns"][-1]
    assert answer["kind"] == "answer"
    assert answer["articles"][0] in _rs202_articles()
    assert {
        "kind": "guide",
        "title": "灵活就业人员社会保险费补贴申领",
        "href": "/items/QP-RS-202",
    } in (answer["links"])
    booking = next(link for link in answer["links"] if link["kind"] == "booking")
    assert booking["prefill"] == {"item_code": "QP-RS-202"}
    assert resolved["context"]["item"] == "QP-RS-202"

    # The follow-up names no matter: it is about the one already settled.
    follow_up = _say(chat, started["conversation_id"], "要准备什么材料")["turns"][-1]
    assert follow_up["kind"] == "answer"
    assert follow_up["articles"][0] in _rs202_articles()


def test_a_clear_question_is_answered_with_links_filled_in(chat):
    from local.seed_knowledge import article_id

    turn = _start(chat, "预约了去不了，取消掉会拉黑伐")["turns"][-1]
    assert turn["kind"] == "answer"
    assert turn["articles"][0] == article_id("booking")
    booking = next(link for link in turn["links"] if link["kind"] == "booking")
    assert booking["prefill"]["text"] == "预约了去不了，取消掉会拉黑伐"


def test_an_off_topic_question_gets_the_hotline_and_no_articles(chat):
    turn = _start(chat, "明天会下雨吗")["turns"][-1]
    assert turn["kind"] == "off_topic"
    assert turn["articles"] == []
    assert "12345" in turn["text"]
    assert turn["links"][0]["kind"] == "ask"


@pytest.mark.parametrize(
    ("off_topic", "ours", "slug"),
    [
        ("游泳馆礼拜天几点开门", "政务中心礼拜天开门伐", "hours"),
        ("附近哪家奶茶铺好吃", "想开个奶茶铺要办啥证", "canyin-license"),
    ],
)
def test_off_topic_sharing_a_word_with_an_answer_gets_the_ask_link_and_ours_its_article(
    chat, off_topic, ours, slug
):
    from local.seed_knowledge import article_id

    turn = _start(chat, off_topic)["turns"][-1]
    assert (turn["kind"], turn["articles"]) == ("off_topic", [])
    assert [link["kind"] for link in turn["links"]] == ["ask"]
    turn = _start(chat, ours)["turns"][-1]
    assert turn["kind"] == "answer"
    assert turn["articles"][0] == article_id(slug)


def test_zhuan_ren_gong_reaches_live_help_with_the_transcript(chat):
    conversation = _start(chat, "补贴怎么申请")
    cid = conversation["conversation_id"]
    handed = _say(chat, cid, "转人工")
    assert handed["state"] == "handed_over"
    assert handed["turns"][-1]["kind"] == "handover"
    request_id = handed["help_request_id"]

    waiting = chat.get("/help-requests", user=AGENT)
    assert waiting.status == 200, waiting
    request = next(r for r in waiting.json["items"] if r["request_id"] == request_id)
    assert request["conversation_id"] == cid
    assert request["transcript"][0] == "用户：补贴怎么申请"
    assert request["transcript"][1].startswith("客服：您问的是下面哪一项")
    assert request["transcript"][-1] == "用户：转人工"
    assert request["topic"] == "补贴怎么申请"

    mine = chat.get("/me/assistant/conversations?limit=1", user=CITIZEN).json
    assert mine["items"][0]["conversation_id"] == cid and mine["items"][0]["state"] == "handed_over"
    assert chat.get("/me/assistant/conversations", user=OTHER).json["items"] == []

    # The agent reads the conversation; another person does not see it.
    assert chat.get(f"/assistant/conversations/{cid}", user=AGENT).status == 200
    assert chat.get(f"/assistant/conversations/{cid}", user=OTHER).status == 404
    closed = chat.post(f"/assistant/conversations/{cid}/messages", {"text": "还在吗"}, user=CITIZEN)
    assert closed.status == 422
    assert closed.json["code"] == "conversation_handed_over"


def test_two_failed_turns_hand_over(chat):
    conversation = _start(chat, "补贴怎么申请")
    cid = conversation["conversation_id"]
    once = _say(chat, cid, "没用")
    assert once["state"] == "open" and once["failed_turns"] == 1
    twice = _say(chat, cid, "不对")
    assert twice["state"] == "handed_over"
    assert twice["help_request_id"]


def test_an_unanswered_question_becomes_a_knowledge_base_question_with_its_clock(chat):
    turn_view = _start(chat, "医疗费用零星报销怎么弄")
    turn = turn_view["turns"][-1]
    assert turn["kind"] == "no_answer"
    assert turn["articles"] == []
    (question_id,) = turn_view["question_ids"]
    question = chat.get(f"/kb/questions/{question_id}", user=CITIZEN)
    assert question.status == 200, question
    assert question.json["text"] == "医疗费用零星报销怎么弄"
    assert question.json["due_at"]  # 5 working days


def test_a_lexicon_entry_takes_effect_only_once_someone_else_approves_it(chat):
    from local.seed_knowledge import article_id

    query = "/kb/search?q=" + "没去成几次了"
    assert chat.get(query, user=CITIZEN).json["results"] == []

    proposed = chat.post(
        "/assistant/lexicon", {"colloquial": "没去成", "official": "爽约"}, user=DEPT
    )
    assert proposed.status == 201, proposed
    entry_id = proposed.json["entry_id"]
    assert chat.get(query, user=CITIZEN).json["results"] == []
    listed = chat.get("/assistant/lexicon?state=proposed", user=DEPT)
    assert entry_id in [e["entry_id"] for e in listed.json["items"]]

    own = chat.post(f"/assistant/lexicon/{entry_id}/review", {"decision": "approve"}, user=DEPT)
    assert own.status in (403, 422)
    approved = chat.post(
        f"/assistant/lexicon/{entry_id}/review", {"decision": "approve"}, user=SUPERVISOR
    )
    assert approved.status == 200, approved
    assert approved.json["state"] == "approved"

    results = chat.get(query, user=CITIZEN).json["results"]
    assert results and results[0]["article_id"] == article_id("booking")


def test_a_conversation_stored_meanwhile_under_the_same_key_is_the_answer(chat, container):
    """Two requests with one key: the one whose transaction finds the conversation stored
    answers that conversation, and writes nothing of its own."""
    from chalicelib.service_layer import assistant

    deps = assistant.AssistantDeps.from_container(container)
    principal = container.directory.get_user(CITIZEN).principal()
    first = assistant.start_conversation(deps, principal, "社保卡丢了怎么补办", key="k-race")
    stored = deps.store.get_conversation(first.conversation_id)
    look_ups = iter([None, stored])  # the early look finds nothing: the other request is late
    racing = assistant.AssistantDeps(
        store=_LateStore(deps.store, look_ups),
        search=deps.search,
        audit_log=deps.audit_log,
        clock=deps.clock,
        services=deps.services,
        transactions=deps.transactions,
    )
    again = assistant.start_conversation(racing, principal, "另一句话", key="k-race")
    assert again.conversation_id == first.conversation_id
    assert [t.text for t in again.turns if t.role == "user"] == ["社保卡丢了怎么补办"]


class _LateStore:
    def __init__(self, store, look_ups) -> None:
        self._store, self._look_ups = store, look_ups

    def get_conversation(self, conversation_id: str):
        return next(self._look_ups)

    def __getattr__(self, name: str):
        return getattr(self._store, name)
