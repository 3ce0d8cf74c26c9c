"""How people say it ↔ how the guide says it: the colloquial lexicon.

Two sources, both data: the entries shipped with the code (`COLLOQUIAL_LEXICON`, reviewed like
code) and the entries staff add through the API, which take effect only once a second person
approves them (the same four-eyes rule as articles). Search maps a colloquial word to the
official word's canonical form, for documents and queries alike, and keeps it whole when
segmenting ("备个案" is one word, not 备/个案).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import InvalidInput, RuleViolation
from chalicelib.domain.knowledge.common import moment_or_none

# (colloquial, official). Shanghainese and everyday words, common typos, and split-prone
# phrases; the official word is one the guide or the articles use.
COLLOQUIAL_LEXICON: tuple[tuple[str, str], ...] = (
    # children and birth
    ("小囡", "新生儿"),
    ("小人", "新生儿"),
    ("小孩", "新生儿"),
    ("孩子", "新生儿"),
    ("生小囡", "出生"),
    ("养小囡", "出生"),
    ("生好小人", "出生"),
    ("生小人", "出生"),
    ("生下来", "出生"),
    ("生出来", "出生"),
    # money
    ("钞票", "费用"),
    ("几钿", "费用"),
    ("多少钞票", "费用"),
    ("铜钿", "费用"),
    # booking
    ("拉黑", "爽约"),
    ("放鸽子", "爽约"),
    ("撤销", "取消"),
    ("撤回", "取消"),
    ("退掉", "取消"),
    ("取消掉", "取消"),
    ("不去了", "取消"),
    ("取号", "预约"),
    # food business
    ("生煎", "餐饮"),
    ("生煎店", "餐饮"),
    ("面馆", "餐饮"),
    ("馄饨店", "餐饮"),
    ("早餐店", "餐饮"),
    ("早饭摊", "餐饮"),
    ("小吃摊", "餐饮"),
    ("包子铺", "餐饮"),
    ("饮食店", "餐饮"),
    ("大排档", "餐饮"),
    ("烧烤店", "餐饮"),
    ("咖啡店", "餐饮"),
    ("奶茶铺", "餐饮"),
    ("小饭店", "餐饮"),
    ("烟杂店", "预包装食品"),
    ("小卖部", "预包装食品"),
    ("便利店", "预包装食品"),
    ("小超市", "预包装食品"),
    ("包装好", "预包装食品"),
    ("袋装", "预包装食品"),
    ("瓶装", "预包装食品"),
    ("备个案", "备案"),
    ("许可正", "许可证"),
    # premises
    ("门面", "地址"),
    ("店面", "地址"),
    ("铺面", "地址"),
    ("搬场", "变更"),
    ("搬店", "变更"),
    # jobs and social insurance
    ("稳岗", "稳就业"),
    ("稳岗补贴", "稳就业"),
    ("拿稳岗", "稳就业"),
    ("员工", "职工"),
    ("工人", "职工"),
    ("伙计", "职工"),
    ("入职", "用工"),
    ("招人", "用工"),
    ("招工", "用工"),
    ("招了", "用工"),
    ("送外卖", "灵活就业"),
    ("跑外卖", "灵活就业"),
    ("开网约车", "灵活就业"),
    ("补帖", "补贴"),
    ("转过来", "转移"),
    ("转进来", "转移"),
    ("转到", "转移"),
    ("转入", "转移"),
    ("外省", "外地"),
    # health insurance
    ("看毛病", "就医"),
    ("看病", "就医"),
    ("看医生", "就医"),
    ("寻不着", "丢失"),
    ("找不到", "丢失"),
    ("弄丢", "丢失"),
    ("掉了", "丢失"),
    ("丢了", "丢失"),
    ("遗失", "丢失"),
    ("补卡", "补办"),
    # talent housing
    ("租房子", "租房"),
    ("房租", "租房"),
    ("安居", "租房"),
    # enterprise awards
    ("评上", "认定"),
    ("评到", "认定"),
    # help
    ("年纪大", "老年人"),
    ("老人", "老年人"),
    ("老人家", "老年人"),
    ("弄不来", "不会"),
    ("搞不来", "不会"),
    ("上门来", "上门"),
    # complaints and reviews
    ("告状", "投诉"),
    ("举报", "投诉"),
    ("打差评", "差评"),
    ("给差评", "差评"),
    ("态度差", "差评"),
    # opening hours
    ("礼拜六", "周末"),
    ("礼拜天", "周末"),
    ("礼拜日", "周末"),
    ("星期六", "周末"),
    ("星期天", "周末"),
    ("双休日", "周末"),
    ("下班", "上班"),
    ("开门", "上班"),
    ("关门", "上班"),
    ("几点钟", "上班"),
    # e-licences
    ("电子证", "电子证照"),
    ("亮证", "电子证照"),
)

# Shanghainese function words that carry no topic (added to the stopwords).
_DIALECT_TEXT = (
    "伐 哦 咯 嘞 额 阿拉 侬 伊 伊拉 屋里 屋里厢 哪能 啥 啥个 晓得 辰光 啥辰光 好伐 蛮 交关 "
    "老 一趟 一记 么 好 个 点 下 几 帮 跟 讲 伐啦 吗啊 啊呀"
)
DIALECT_STOPWORDS: frozenset[str] = frozenset(_DIALECT_TEXT.split(" "))

# What a question asks about a matter (when, who, whether) or about its moment, never which
# matter: they do not make a question ours. "超市几点关门" and "政务中心几点下班" share 几点 and
# 上班; only the second names something of the field.
_ATTRIBUTE_TEXT = (
    "几点 几点钟 上班 下班 开门 关门 周末 礼拜 星期 双休日 节假日 今天 明天 昨天 今晚 昨晚 "
    "早上 上午 下午 晚上 中午 谁 不要 不会 不能 能不能 有没有 多大 年纪 附近 最近"
)
ATTRIBUTE_WORDS: frozenset[str] = frozenset(_ATTRIBUTE_TEXT.split(" "))
# Words of what people ask a chat box that is not ours (weather, lottery, timetables, market
# tips, recipes and eating out, sport, shows and stars, homework, games, small talk). Each one in
# a question takes back what one word of the field gives: a question naming a matter of the
# field once and one of these ("生煎" is 餐饮 to a shop owner) is not ours; naming two is.
_NOT_OURS_TEXT = (
    "天气 气温 降温 下雨 下雪 台风 雾霾 空气质量 天气预报 "
    "彩票 双色球 大乐透 福利彩票 体育彩票 开奖 中奖 "
    "地铁 号线 首班车 末班车 头班车 公交车 航班 机票 火车票 高铁票 "
    "股票 炒股 基金 比特币 涨停 理财 "
    "菜谱 做法 好吃 美食 火锅 餐厅推荐 "
    "比赛 球赛 足球 篮球 世界杯 奥运会 夺冠 "
    "明星 演唱会 电视剧 电影 综艺 歌手 "
    "作业 作文 数学题 考试题 "
    "游戏 王者荣耀 上分 笑话 唱歌 聊天 机器人"
)
NOT_OURS_WORDS: frozenset[str] = frozenset(_NOT_OURS_TEXT.split())
# An everyday word mapped onto a word of the field (孩子 → 新生儿, 开门 → 上班) says less
# than the word itself: from this frequency in general Chinese (jieba's dictionary, counts per
# 60 million words) it is weak evidence that a question is ours.
EVERYDAY_FREQUENCY = 1000

_MAX_WORD = 12


class LexiconState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class LexiconEntry:
    entry_id: str
    colloquial: str
    official: str
    state: LexiconState
    proposed_by: str
    proposed_at: datetime
    note: str = ""
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    comment: str = ""


def _word(value: str, field: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= _MAX_WORD or any(c.isspace() for c in value):
        raise InvalidInput(f"{field}应为1到{_MAX_WORD}个字且不含空格", code="invalid_lexicon_word")
    return value.lower()


def propose_entry(
    entry_id: str, colloquial: str, official: str, by: str, now: datetime, note: str = ""
) -> LexiconEntry:
    colloquial, official = _word(colloquial, "口语词"), _word(official, "规范词")
    if colloquial == official:
        raise InvalidInput("口语词与规范词相同", code="invalid_lexicon_word")
    return LexiconEntry(
        entry_id, colloquial, official, LexiconState.PROPOSED, by, now, note.strip()[:200]
    )


def review_entry(
    entry: LexiconEntry, by: str, approve: bool, now: datetime, comment: str = ""
) -> LexiconEntry:
    """A second person approves or rejects a proposal; nobody approves their own."""
    if entry.state is not LexiconState.PROPOSED:
        raise RuleViolation("该词条已审核", code="lexicon_already_reviewed")
    if by == entry.proposed_by:
        raise RuleViolation("不能审核自己提交的词条", code="lexicon_self_review")
    return replace(
        entry,
        state=LexiconState.APPROVED if approve else LexiconState.REJECTED,
        reviewed_by=by,
        reviewed_at=now,
        comment=comment.strip()[:200],
    )


def entry_to_dict(entry: LexiconEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "colloquial": entry.colloquial,
        "official": entry.official,
        "state": entry.state.value,
        "proposed_by": entry.proposed_by,
        "proposed_at": entry.proposed_at.isoformat(),
        "note": entry.note,
        "reviewed_by": entry.reviewed_by,
        "reviewed_at": entry.reviewed_at.isoformat() if entry.reviewed_at else None,
        "comment": entry.comment,
    }


def entry_from_dict(d: dict[str, Any]) -> LexiconEntry:
    return LexiconEntry(
        entry_id=d["entry_id"],
        colloquial=d["colloquial"],
        official=d["official"],
        state=LexiconState(d["state"]),
        proposed_by=d["proposed_by"],
        proposed_at=moment_or_none(d["proposed_at"]),  # type: ignore[arg-type]
        note=d.get("note") or "",
        reviewed_by=d.get("reviewed_by"),
        reviewed_at=moment_or_none(d.get("reviewed_at")),
        comment=d.get("comment") or "",
    )
