"""Search basics without AWS: segmentation with the domain dictionary and synonyms, BM25 ranking,
and the in-memory index following the store's "changed since" feed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest

from chalicelib.adapters import search_index
from chalicelib.adapters.search_index import SearchIndex, article_tokens, tokenize
from chalicelib.domain import knowledge as kb
from chalicelib.domain.calendar import CHINA_TZ
from local.seed_knowledge import article_id, contents

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
    index = SearchIndex(store=store, now=lambda: NOW)
    first, tokens = seeded[0]
    store.write(first, tokens, NOW)
    assert index.search("预包装食品备案", 3)[0].article_id == first.article_id
    rebuilds = index.rebuilds

    # Archived elsewhere: the next search reads the feed and drops it.
    later = NOW + timedelta(minutes=5)
    store.write(replace(first, state=kb.ArticleState.ARCHIVED), None, later)
    assert index.search("预包装食品备案", 3) == []
    assert index.rebuilds == rebuilds + 1

    # Nothing changed: the feed is read again but the BM25 matrix is not rebuilt.
    reads = store.feed_reads
    index.search("预包装食品备案", 3)
    assert store.feed_reads == reads + 1 and index.rebuilds == rebuilds + 1
