"""Search basics without AWS: segmentation with the domain dictionary and synonyms, BM25 ranking,
and the in-memory index following the store's "changed since" feed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest

from chalicelib.adapters import search_index
from chalicelib.adapters.search_index import FEED_MAX_AGE, SearchIndex, article_tokens, tokenize
from chalicelib.domain import knowledge as kb
from chalicelib.domain.calendar import CHINA_TZ
from local.seed_knowledge import ARTICLES, article_id, contents

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)


def _published(identifier: str, content: kb.ArticleContent) -> kb.Article:
    draft, _ = kb.new_article(identifier, content, "u-admin", NOW)
    return kb.publish_now(draft, NOW)


@dataclass
class Entry:
    article: kb.Article
    tokens: list[str] | None
    changed_at: str


class FakeStore:
    """The two reads the index makes: published articles, and the feed of changes."""

    def __init__(self) -> None:
        self.feed: list[Entry] = []
        self.feed_reads = 0

    def write(self, article: kb.Article, tokens: list[str] | None, at: datetime) -> None:
        self.feed = [e for e in self.feed if e.article.article_id != article.article_id]
        self.feed.append(Entry(article, tokens, f"{at.isoformat()}#{article.article_id}"))

    def published(self):
        for e in self.feed:
            if e.article.state is kb.ArticleState.PUBLISHED:
                yield e

    def changed_since(self, since: str):
        self.feed_reads += 1
        return [e for e in self.feed if e.changed_at > since]


@pytest.fixture(scope="module")
def seeded() -> list[tuple[kb.Article, list[str]]]:
    return [(a, article_tokens(a)) for a in (_published(i, c) for i, c in contents())]


def _index(seeded) -> SearchIndex:
    index = SearchIndex(store=FakeStore(), now=lambda: NOW)
    index.load_documents(seeded)
    return index


def test_synonyms_map_to_one_canonical_word():
    assert "医保" in tokenize("医疗保险怎么交")
    assert "异地就医" in tokenize("外地看病要备案吗")
    assert "新生儿" in tokenize("宝宝刚出生")


def test_stopwords_and_punctuation_are_dropped():
    tokens = tokenize("请问，我怎么办理备案？")
    assert "请问" not in tokens and "，" not in tokens and "？" not in tokens
    assert "备案" in tokens


def test_item_names_added_to_the_dictionary_stay_whole_and_keep_their_parts():
    search_index.add_words(["长三角示范区新生儿出生一件事"])
    tokens = tokenize("长三角示范区新生儿出生一件事")
    assert "长三角示范区新生儿出生一件事" in tokens
    assert "新生儿" in tokens


@pytest.mark.parametrize(
    "query,expected",
    [
        ("外地看病怎么在网上备案", {"yb301-how"}),
        ("开便利店只卖饮料零食要办什么", {"sc103-what"}),
        ("打零工的社保有补贴吗", {"rs202-who", "rs202-amount"}),
        ("孩子出生怎么上户口", {"zw401-hukou"}),
        ("高企奖励要自己申请吗", {"gxjs-reward"}),
        ("医保卡丢了怎么办", {"ybcard-lost"}),
    ],
)
def test_questions_in_peoples_own_words_find_the_right_answer_first(seeded, query, expected):
    hits = _index(seeded).search(query, 5, refresh=False)
    assert hits, query
    assert hits[0].article_id in {article_id(s) for s in expected}, [h.question for h in hits]


def test_a_query_with_no_known_word_finds_nothing(seeded):
    assert _index(seeded).search("量子纠缠", 5, refresh=False) == []


def test_hits_carry_the_links_of_the_article(seeded):
    hit = _index(seeded).search("人才安居补贴多少钱", 1, refresh=False)[0]
    assert hit.item_codes == ("QP-RC-501",) and hit.policy_links == (("qp-rencai-anju", 1),)


def test_the_index_follows_the_feed_without_resegmenting(seeded):
    store = FakeStore()
    clock = [NOW]
    index = SearchIndex(store=store, now=lambda: clock[0])
    first, tokens = seeded[0]
    store.write(first, tokens, NOW)
    assert index.search("预包装食品备案", 3)[0].article_id == first.article_id
    rebuilds = index.rebuilds

    # Archived elsewhere: the next search after the feed's max age reads it and drops it.
    clock[0] = later = NOW + timedelta(minutes=5)
    store.write(replace(first, state=kb.ArticleState.ARCHIVED), None, later)
    assert index.search("预包装食品备案", 3) == []
    assert index.rebuilds == rebuilds + 1

    # Nothing changed: the feed is read again but the BM25 matrix is not rebuilt.
    reads = store.feed_reads
    clock[0] = later + FEED_MAX_AGE
    index.search("预包装食品备案", 3)
    assert store.feed_reads == reads + 1 and index.rebuilds == rebuilds + 1


def test_the_feed_is_read_at_most_once_per_max_age(seeded):
    store = FakeStore()
    clock = [NOW]
    index = SearchIndex(store=store, now=lambda: clock[0])
    first, tokens = seeded[0]
    store.write(first, tokens, NOW)
    index.search("预包装食品备案", 3)  # the first load
    index.search("预包装食品备案", 3)
    reads = store.feed_reads

    # Archived elsewhere within the max age: searches answer from the index as it is.
    clock[0] = NOW + FEED_MAX_AGE / 2
    store.write(replace(first, state=kb.ArticleState.ARCHIVED), None, clock[0])
    assert index.search("预包装食品备案", 3)[0].article_id == first.article_id
    assert store.feed_reads == reads

    clock[0] = NOW + FEED_MAX_AGE
    assert index.search("预包装食品备案", 3) == []
    assert store.feed_reads == reads + 1


# ---- colloquial questions, synonyms both ways, the relevance floor ----------------------------


def _slugs(hits) -> list[str]:
    by_id = {article_id(slug): slug for slug, *_ in ARTICLES}
    return [by_id.get(h.article_id, h.article_id) for h in hits]


def test_opening_a_restaurant_finds_the_food_business_licence_answer(seeded):
    hits = _index(seeded).search("开饭店要办什么证", 5, refresh=False)
    assert _slugs(hits)[0] == "canyin-license", [h.question for h in hits]


def test_after_having_a_baby_finds_the_birth_one_thing_and_nothing_unrelated(seeded):
    slugs = _slugs(_index(seeded).search("生孩子后要办哪些手续", 5, refresh=False))
    assert "zw401-what" in slugs[:3], slugs
    assert slugs and all(s.startswith("zw401-") for s in slugs), slugs


def test_a_question_sharing_only_generic_words_with_the_articles_finds_nothing(seeded):
    without_food = [(a, t) for a, t in seeded if a.article_id != article_id("canyin-license")]
    index = _index(without_food)
    assert index.search("开饭店要办什么证", 5, refresh=False) == []
    assert index.search("我想办个证要多久", 5, refresh=False) == []


def test_the_floor_keeps_ranking_on_every_word_among_topical_matches(seeded):
    # 材料 is generic: it does not let other articles through, but it still ranks the matches.
    slugs = _slugs(_index(seeded).search("出生一件事要什么材料", 5, refresh=False))
    assert slugs[0] == "zw401-materials" and all(s.startswith("zw401-") for s in slugs), slugs


def _tiny(*articles: tuple[str, str]) -> SearchIndex:
    pairs = []
    for n, (question, answer) in enumerate(articles):
        content = kb.ArticleContent(question=question, answer=answer, department_id="dept-zwb")
        article = _published(f"{n:032x}", content)
        pairs.append((article, article_tokens(article)))
    index = SearchIndex(store=FakeStore(), now=lambda: NOW)
    index.load_documents(pairs)
    return index


@pytest.mark.parametrize(
    "written,asked",
    [
        ("生孩子以后怎么领补助？", "出生后补贴怎么申请"),
        ("新生儿出生后补贴怎么申请？", "生孩子以后怎么领补助"),
        ("开饭店怎么办手续？", "餐饮许可"),
        ("餐饮服务怎么办手续？", "开个饭馆"),
        ("养老金怎么领？", "退休待遇"),
        ("退休待遇怎么领？", "养老金"),
    ],
)
def test_synonyms_work_both_ways(written, asked):
    index = _tiny(
        (written, "请带身份证到社区事务受理中心咨询。"),
        ("居住证怎么办？", "请带身份证到派出所咨询。"),
    )
    hits = index.search(asked, 5, refresh=False)
    assert [h.question for h in hits] == [written]


def test_stored_tokens_follow_the_current_synonyms_and_stopwords():
    article = _published(
        "b" * 32, kb.ArticleContent("旧的问题", "以前发布的旧答复内容", "dept-zwb")
    )
    index = SearchIndex(store=FakeStore(), now=lambda: NOW)
    # Tokens stored before 奖励 joined the 补贴 group and 后要 became a stopword.
    index.load_documents([(article, ["奖励", "后要", "高新技术企业"])])
    assert index.docs[article.article_id].tokens == ["补贴", "高新技术企业"]
    assert index.search("高企补助", 5, refresh=False)[0].article_id == article.article_id


def test_normalising_is_idempotent():
    tokens = tokenize("生孩子后开饭店要交社保，养老金和奖励怎么领？")
    assert search_index.normalise(tokens) == tokens
