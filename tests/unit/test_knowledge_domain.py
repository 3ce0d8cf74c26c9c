"""Knowledge base domain: the article workflow, scheduling, "needs change", question routing and
the readiness deadline on the working-day calendar. Pure: no AWS, no clock reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from chalicelib.domain import knowledge as kb
from chalicelib.domain.calendar import CHINA_TZ, WorkingCalendar
from chalicelib.domain.errors import InvalidInput, RuleViolation
from chalicelib.domain.knowledge import ArticleAction, ArticleContent, ArticleState, ItemLink

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)
CONTENT = ArticleContent(
    question="跨省异地就医备案怎么在网上办？",
    answer="打开随申办搜索“跨省异地就医备案”，选择备案类型后提交，一般即时办结。",
    department_id="dept-ybj",
    tags=("医保", "异地就医"),
    item_links=(ItemLink("QP-YB-301", 1),),
)


def _draft() -> kb.Article:
    article, _ = kb.new_article("a" * 32, CONTENT, "u-dept", NOW)
    return article


def _approved() -> kb.Article:
    article = _draft()
    article, _ = kb.transition(article, ArticleAction.SUBMIT, "u-dept", NOW, 1)
    article, _ = kb.transition(article, ArticleAction.APPROVE, "u-super", NOW, 2)
    return article


def test_new_article_is_a_draft_with_a_created_revision_listing_every_field():
    article, revision = kb.new_article("a" * 32, CONTENT, "u-dept", NOW)
    assert article.state is ArticleState.DRAFT and article.revision == 1
    assert revision.action == "created" and revision.by == "u-dept"
    assert revision.changes["question"] == [None, CONTENT.question]


def test_workflow_draft_review_approved_published_archived():
    article = _approved()
    assert article.state is ArticleState.APPROVED and article.approved_by == "u-super"
    article, _ = kb.transition(article, ArticleAction.PUBLISH, "u-super", NOW, 3)
    assert article.state is ArticleState.PUBLISHED and article.published_at == NOW
    article, revision = kb.transition(article, ArticleAction.ARCHIVE, "u-super", NOW, 4)
    assert article.state is ArticleState.ARCHIVED and revision.seq == 5


def test_publishing_a_draft_is_refused():
    with pytest.raises(RuleViolation) as error:
        kb.transition(_draft(), ArticleAction.PUBLISH, "u-super", NOW, 1)
    assert error.value.code == "invalid_transition"


def test_the_submitter_cannot_approve_their_own_article():
    article, _ = kb.transition(_draft(), ArticleAction.SUBMIT, "u-dept", NOW, 1)
    with pytest.raises(RuleViolation) as error:
        kb.transition(article, ArticleAction.APPROVE, "u-dept", NOW, 2)
    assert error.value.code == "four_eyes"


def test_rejecting_needs_a_reason_and_returns_to_draft():
    article, _ = kb.transition(_draft(), ArticleAction.SUBMIT, "u-dept", NOW, 1)
    with pytest.raises(InvalidInput):
        kb.transition(article, ArticleAction.REJECT, "u-super", NOW, 2)
    back, revision = kb.transition(article, ArticleAction.REJECT, "u-super", NOW, 2, comment="补充")
    assert back.state is ArticleState.DRAFT and revision.comment == "补充"


def test_editing_a_published_article_makes_a_new_draft_revision_and_records_the_change():
    article, _ = kb.transition(_approved(), ArticleAction.PUBLISH, "u-super", NOW, 3)
    article = replace(article, needs_change=("item:QP-YB-301:v2",))
    changed = replace(CONTENT, answer=CONTENT.answer + "备案后即时生效。")
    edited, revision = kb.edit(article, changed, "u-dept", NOW, 4)
    assert edited.state is ArticleState.DRAFT and edited.revision == 2
    assert edited.needs_change == ()
    assert list(revision.changes) == ["answer"] and revision.by == "u-dept"


def test_an_unchanged_edit_is_refused():
    with pytest.raises(InvalidInput):
        kb.edit(_draft(), CONTENT, "u-dept", NOW, 1)


def test_a_future_publish_is_scheduled_and_run_when_due():
    at = NOW + timedelta(days=1)
    article, revision = kb.transition(_approved(), ArticleAction.PUBLISH, "u-super", NOW, 3, at=at)
    assert article.state is ArticleState.APPROVED and article.publish_at == at
    assert article.next_due == at and revision.changes["scheduled_at"][1] == at.isoformat()
    assert kb.run_schedule(article, at - timedelta(seconds=1), 4) is None
    published, revision = kb.run_schedule(article, at, 4)
    assert published.state is ArticleState.PUBLISHED and revision.action == "scheduled_publish"
    assert published.next_due is None


def test_an_expiry_date_schedules_the_archive_for_the_next_midnight():
    article = replace(_approved(), content=replace(CONTENT, expires_on=date(2026, 12, 31)))
    published, _ = kb.transition(article, ArticleAction.PUBLISH, "u-super", NOW, 3)
    assert published.archive_at == datetime(2027, 1, 1, 0, 0, tzinfo=CHINA_TZ)
    archived, revision = kb.run_schedule(published, published.archive_at, 4)
    assert archived.state is ArticleState.ARCHIVED and revision.action == "scheduled_archive"


def test_needs_change_is_raised_once_per_reason():
    flagged, revision = kb.flag_needs_change(_draft(), "policy:P1:v2", NOW, 1)
    assert flagged.needs_change == ("policy:P1:v2",) and revision.action == "needs_change"
    assert kb.flag_needs_change(flagged, "policy:P1:v2", NOW, 2) is None


def test_content_validation_lists_the_fields():
    with pytest.raises(InvalidInput) as error:
        kb.validate_content(replace(CONTENT, question="短", tags=("x" * 30,)))
    assert {f["field"] for f in error.value.fields} == {"question", "tags"}


def test_mapping_round_trips():
    article = replace(_approved(), publish_at=NOW, needs_change=("x",))
    assert kb.article_from_dict(kb.article_to_dict(article)) == article


@pytest.mark.parametrize(
    "item,policy,tags,text,expected",
    [
        (("QP-YB-301", "dept-ybj"), ("P", "dept-rsj"), (), "", ("dept-ybj", "item:QP-YB-301")),
        (None, ("P", "dept-rsj"), ("医保",), "", ("dept-rsj", "policy:P")),
        (None, None, ("医保",), "", ("dept-ybj", "tag:医保")),
        (None, None, (), "我想问灵活就业的补贴", ("dept-rsj", "tag:灵活就业")),
        (None, None, (), "随便问问", ("dept-zwb", "default")),
    ],
)
def test_questions_are_routed_by_item_then_policy_then_topic(item, policy, tags, text, expected):
    assert kb.route_question(item=item, policy=policy, tags=tags, text=text) == expected


# ---- readiness on the working-day calendar (2026: National Day 10/1-10/7, 10/10 a workday) --

CAL = WorkingCalendar()


def test_readiness_target_is_the_working_day_before_the_effective_date():
    assert kb.readiness_target(CAL, date(2026, 12, 1)) == date(2026, 11, 30)  # Tue → Mon
    assert kb.readiness_target(CAL, date(2026, 11, 30)) == date(2026, 11, 27)  # Mon → Fri
    # Effective the Thursday after the National Day holiday: ready by the last day before it.
    assert kb.readiness_target(CAL, date(2026, 10, 8)) == date(2026, 9, 30)
    # Effective on the Monday after the make-up Saturday 10/10: that Saturday is the day before.
    assert kb.readiness_target(CAL, date(2026, 10, 12)) == date(2026, 10, 10)


def test_readiness_clock_plan_counts_working_days_from_today_to_the_target():
    # 9/22-9/30 less the Mid-Autumn Festival (Friday 9/25) and the weekend.
    start, limit = kb.readiness_clock_plan(CAL, date(2026, 9, 21), date(2026, 9, 30))
    assert start == date(2026, 9, 21) and limit == 6
    due, _ = CAL.add_working_days(start, limit)
    assert due == date(2026, 9, 30)


def test_readiness_clock_plan_with_less_than_a_day_left_starts_the_day_before_the_target():
    start, limit = kb.readiness_clock_plan(CAL, date(2026, 11, 30), date(2026, 11, 30))
    assert (start, limit) == (date(2026, 11, 27), 1)
    assert CAL.add_working_days(start, limit)[0] == date(2026, 11, 30)
    late_start, _ = kb.readiness_clock_plan(CAL, date(2026, 12, 2), date(2026, 11, 30))
    assert late_start == date(2026, 11, 27)


def test_every_search_word_belongs_to_one_synonym_group_only():
    seen: dict[str, str] = {}
    for group in kb.SYNONYM_GROUPS:
        for word in group:
            assert word not in seen, f"{word} is in the groups of {seen[word]} and {group[0]}"
            seen[word] = group[0]
    mapping = kb.canonical_words()
    assert all(mapping[group[0]] == group[0] for group in kb.SYNONYM_GROUPS)


def test_colloquial_words_map_to_the_official_ones():
    mapping = kb.canonical_words()
    assert mapping["生孩子"] == "出生" and mapping["开饭店"] == "餐饮"
    assert mapping["养老金"] == "退休" and mapping["交社保"] == "参保"
    assert mapping["注册公司"] == "设立登记" and mapping["奖励"] == "补贴"
    assert mapping["公司"] == "企业" and mapping["食品证"] == "食品经营许可证"


def test_topic_words_are_neither_generic_words_nor_stopwords():
    topics = {group[0] for group in kb.SYNONYM_GROUPS} - kb.GENERIC_WORDS
    assert {"出生", "餐饮", "退休", "参保", "设立登记", "补贴"} <= topics
    assert not (kb.STOPWORDS & set(kb.canonical_words()))
