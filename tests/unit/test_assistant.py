"""The assistant's rules without AWS: choices named by number or name, when to hand over, the
lexicon's four-eyes review, the colloquial words reaching search, and the on-topic floor."""

from __future__ import annotations

from datetime import datetime

import pytest

from chalicelib.adapters.search_index import SearchIndex, article_tokens, tokenize
from chalicelib.domain import assistant as domain
from chalicelib.domain import knowledge as kb
from chalicelib.domain.assistant import Choice, Conversation, Turn, TurnKind
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput, RuleViolation
from chalicelib.domain.knowledge import lexicon
from local.seed_knowledge import article_id, contents

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)
CHOICES = (
    Choice("item", "QP-RS-202", "灵活就业人员社会保险费补贴申领"),
    Choice("policy", "qp-gxjs-first", "高新技术企业首次认定奖励"),
    Choice("item", "QP-RC-501", "人才安居补贴"),
)


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("1", "QP-RS-202"),
        ("第二个", "qp-gxjs-first"),
        ("3。", "QP-RC-501"),
        ("qp-rs-202", "QP-RS-202"),
        ("人才安居", "QP-RC-501"),
        ("高新技术企业首次认定奖励", "qp-gxjs-first"),
    ],
)
def test_a_reply_picks_a_choice_by_number_code_or_name(reply, code):
    picked = domain.pick_choice(reply, CHOICES)
    assert picked is not None and picked.code == code


@pytest.mark.parametrize("reply", ["4", "补贴", "随便", "我想问别的事情"])
def test_a_reply_naming_no_single_choice_picks_none(reply):
    assert domain.pick_choice(reply, CHOICES) is None


def _conversation(failed: int = 0) -> Conversation:
    return Conversation("c" * 32, "u-citizen-zhang", NOW, failed_turns=failed)


@pytest.mark.parametrize("text", ["转人工", "我要人工客服", "帮我转接人工", "找个真人"])
def test_asking_for_a_person_hands_over(text):
    assert domain.should_hand_over(_conversation(), text)


def test_two_failed_turns_hand_over_and_one_does_not():
    assert not domain.should_hand_over(_conversation(1), "社保卡丢了")
    assert domain.should_hand_over(_conversation(2), "社保卡丢了")
    assert domain.dissatisfied("没用！") and not domain.dissatisfied("没用过随申办怎么办")


def test_the_transcript_names_who_said_what_and_pending_choices_come_from_the_last_turn():
    c = domain.add_turn(_conversation(), Turn("user", TurnKind.QUESTION, "补贴怎么申请", NOW))
    c = domain.add_turn(c, Turn("assistant", TurnKind.CLARIFY, "您问的是", NOW, CHOICES))
    assert c.transcript() == ("用户：补贴怎么申请", "客服：您问的是")
    assert c.pending_choices == CHOICES
    back = domain.conversation_from_dict(domain.conversation_to_dict(c))
    assert back.turns == c.turns and back.pending_choices == CHOICES


def test_a_handed_over_conversation_takes_no_more_messages():
    c = domain.handed_over(_conversation(), "r" * 32)
    with pytest.raises(RuleViolation):
        domain.check_open(c)


def test_lexicon_entries_need_a_second_person():
    entry = lexicon.propose_entry("e" * 32, "没去成", "爽约", "u-dept-rsj", NOW)
    with pytest.raises(RuleViolation):
        lexicon.review_entry(entry, "u-dept-rsj", True, NOW)
    approved = lexicon.review_entry(entry, "u-supervisor-zhao", True, NOW)
    assert approved.state is lexicon.LexiconState.APPROVED
    with pytest.raises(RuleViolation):
        lexicon.review_entry(approved, "u-admin", False, NOW)
    with pytest.raises(InvalidInput):
        lexicon.propose_entry("e" * 32, "爽约", "爽约", "u-dept-rsj", NOW)
    assert lexicon.entry_from_dict(lexicon.entry_to_dict(approved)) == approved


def test_shipped_lexicon_words_stay_whole_and_map_to_the_official_word():
    assert "备案" in tokenize("网店卖饼干要备个案吗")
    assert "稳就业" in tokenize("怎么拿稳岗补贴")
    assert "费用" in tokenize("要多少钞票")
    assert "伐" not in tokenize("好办伐")


def test_every_shipped_colloquial_word_maps_into_one_group_only():
    seen: dict[str, str] = {}
    for colloquial, official in lexicon.COLLOQUIAL_LEXICON:
        assert seen.setdefault(colloquial, official) == official, colloquial
        assert colloquial != official


@pytest.fixture(scope="module")
def seeded_index() -> SearchIndex:
    index = SearchIndex(store=None, now=lambda: NOW)
    pairs = []
    for identifier, content in contents():
        draft, _ = kb.new_article(identifier, content, "u-admin", NOW)
        article = kb.publish_now(draft, NOW)
        pairs.append((article, article_tokens(article)))
    index.load_documents(pairs)
    return index


@pytest.mark.parametrize(
    "question", ["推荐一部好看的电影", "今天天气怎么样", "这个要多少钱", "怎么办"]
)
def test_a_question_naming_no_matter_of_the_field_finds_nothing(seeded_index, question):
    assert seeded_index.search(question, 5, refresh=False) == []
    assert not seeded_index.mentions_field(question)


def test_a_colloquial_question_finds_its_answer(seeded_index):
    hits = seeded_index.search("伊拉屋里生了小囡，上户口要跑几趟", 5, refresh=False)
    assert hits and hits[0].article_id == article_id("zw401-hukou")


# ---- off-topic: attribute words, everyday words mapped onto the field, "not ours" words -------


@pytest.mark.parametrize(
    ("off_topic", "ours", "slug"),
    [
        # 几点 and 关门 (→ 上班) ask when, not what: the hours answer needs the centre named.
        ("游泳馆晚上几点关门", "政务服务中心晚上几点关门", "hours"),
        # 孩子 is an everyday word: mapped onto 新生儿 it does not make a question ours alone.
        ("孩子不爱吃蔬菜怎么办", "孩子出生了怎么报户口", "zw401-hukou"),
        # 好吃 is not ours and takes back the one word of the field (面馆 → 餐饮).
        ("这附近哪家面馆好吃", "开面馆要办什么证", "canyin-license"),
    ],
)
def test_an_off_topic_question_sharing_a_word_with_an_answer_finds_nothing(
    seeded_index, off_topic, ours, slug
):
    assert seeded_index.search(off_topic, 5, refresh=False) == []
    assert not seeded_index.mentions_field(off_topic)
    hits = seeded_index.search(ours, 5, refresh=False)
    assert hits and hits[0].article_id == article_id(slug), [h.question for h in hits]


def test_the_general_frequency_is_jiebas_own_not_the_one_given_when_adding_a_word():
    from chalicelib.adapters import search_index

    tokenize("预热")
    assert search_index.general_frequency("孩子") > lexicon.EVERYDAY_FREQUENCY
    assert search_index.general_frequency("小囡") < lexicon.EVERYDAY_FREQUENCY
