"""Keyword capture reads jieba tokens, not substrings: traps stay traps, negations deny, risks
are reported apart, and each team's dictionary is its own."""

from __future__ import annotations

import copy

import jieba
import pytest

from crm import keywords
from crm.actors import Actor
from crm.keywords import Dictionary, Hits, dictionary_for
from crm.rules import publisher
from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from tests.factories import make_company

DEFAULT = DEFAULT_DOCUMENTS["keywords"]


def _with_category(name, words, document=DEFAULT):
    changed = copy.deepcopy(document)
    changed["categories"].append({"name": name, "words": words})
    return changed


@pytest.fixture(scope="module")
def default():
    return Dictionary.of(DEFAULT)


@pytest.mark.parametrize(
    "text",
    [
        "汇报价格",
        "符合同行业",
        "一定金额",
        "我向领导汇报价格后再回复您",
        "这款砖的价格符合同行业标准",
        "需要一定金额的预算",
        "报价格",  # 报/价格
        "这个订金额",  # 这个/订/金额
    ],
)
def test_a_keyword_inside_other_words_is_no_hit(text, default):
    assert default.match(text) == Hits()


@pytest.mark.parametrize(
    ("text", "categories", "words"),
    [
        ("已发送正式报价单", ("报价",), ("正式报价单",)),
        ("报价单发您了，请查收", ("报价",), ("报价单",)),
        ("我们已报价", ("报价",), ("已报价",)),
        ("合同盖章后打款", ("合同", "付款"), ("合同盖章", "打款")),
        ("收到转账了吗", ("付款",), ("转账",)),
        ("下单付定金", ("定金",), ("付定金",)),
        ("货已经到货了", ("发货",), ("到货",)),
        ("明天上门安装，顺便收尾款", ("付款", "安装"), ("收尾款", "上门安装")),
    ],
)
def test_a_word_or_synonym_hits_its_category(text, categories, words, default):
    hits = default.match(text)

    assert (hits.categories, hits.keywords) == (categories, words)
    assert hits and hits.captured


@pytest.mark.parametrize(
    "text",
    ["还没报价", "不用报价了", "还没给您发报价单", "暂不安装", "没有定金", "还没报价、发货"],
)
def test_a_negation_shortly_before_a_keyword_denies_it(text, default):
    hits = default.match(text)

    assert not hits and hits.keywords == ()
    assert hits.negated


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("合同还没签", ("合同",)),  # the negation is after: still a talk about the contract
        ("还没吃饭吧，明天发货", ("发货",)),  # another clause
        ("别担心我们明天下午一定准时发货", ("发货",)),  # too far before
        ("还没报价，明天报价", ("报价",)),  # found negated once and plainly once: a hit
    ],
)
def test_a_negation_after_far_from_or_in_another_clause_than_the_keyword_does_not(
    text, words, default
):
    hits = default.match(text)

    assert hits.keywords == words
    assert hits.negated == ()


def test_a_double_negation_stays_negated(default):
    # 不是不想付款 mostly goes on 只是现在没钱: documented in crm/keywords.py.
    assert default.match("不是不想付款") == Hits(negated=("付款",))


@pytest.mark.parametrize("text", ["再不处理就退货", "不满意的话我要投诉"])
def test_a_negation_does_not_reach_past_a_connective_that_starts_a_new_predicate(text, default):
    hits = default.match(text)
    assert hits.risks and not hits.negated


def test_risk_words_are_reported_apart_and_a_message_may_be_both(default):
    assert default.match("客户说太贵了要退货") == Hits(risks=("退货", "太贵了"))
    both = default.match("合同签了，但是地砖有色差要退货")
    assert (both.categories, both.risks) == (("合同",), ("退货", "色差"))
    reassured = default.match("我们的产品没有质量问题")
    assert (reassured.risks, reassured.negated) == ((), ("质量问题",))


def test_match_many_answers_each_text_in_order(default):
    texts = ["好的", "已发送正式报价单", "好的", "汇报价格", "要投诉"]

    results = default.match_many(texts)

    assert results == [default.match(t) for t in texts]
    assert [r.captured for r in results] == [False, True, False, False, False]
    assert results[4].risks == ("投诉",)


def test_a_dictionary_is_built_once_per_content_and_its_words_stay_its_own(default):
    sample = _with_category("样品", ["样品", "寄样"])

    assert Dictionary.of(copy.deepcopy(DEFAULT)) is Dictionary.of(DEFAULT)
    assert Dictionary.of(sample) is Dictionary.of(copy.deepcopy(sample))
    assert Dictionary.of(sample).match("今天给您寄样").categories == ("样品",)
    assert default.match("今天给您寄样") == Hits()
    # jieba's process-wide tokenizer never saw our words.
    assert "寄样" not in jieba.dt.FREQ and "正式报价单" not in jieba.dt.FREQ


def test_the_cache_keeps_only_the_most_recently_used_dictionaries():
    size = keywords.CACHED_DICTIONARIES
    documents = [_with_category(f"类别{n}", [f"词{n}"]) for n in range(size + 1)]
    built = [Dictionary.of(document) for document in documents[:size]]
    assert Dictionary.of(documents[0]) is built[0]  # used again: now the most recent

    Dictionary.of(documents[size])  # one too many: the least recently used goes

    assert Dictionary.of(documents[0]) is built[0]
    assert Dictionary.of(documents[1]) is not built[1]


def _publish(session, actor, document, now):
    draft = publisher.create_draft(
        session, actor=actor, kind="keywords", document=document, note=None, now=now
    )
    published = publisher.publish(session, actor=actor, draft_id=draft.id, reason="词库", now=now)
    session.commit()
    return published


def test_a_team_dictionary_overrides_the_companys_and_a_publish_changes_matching(session, clock):
    company = make_company(session)
    boss, manager = Actor.of(company.boss), Actor.of(company.managers[0])
    own, other = company.teams[0].id, company.teams[1].id
    text = "明天给您寄样品"
    assert dictionary_for(session, None).match(text) == Hits()

    _publish(session, boss, _with_category("样品", ["样品"]), clock())
    assert dictionary_for(session, None).match(text).categories == ("样品",)
    assert dictionary_for(session, own).match(text).categories == ("样品",)

    team_document = _with_category("寄样", ["寄样", "样品"])
    _publish(session, manager, team_document, clock())
    assert dictionary_for(session, own).match(text).categories == ("寄样",)
    assert dictionary_for(session, other).match(text).categories == ("样品",)

    publisher.rollback(
        session, actor=manager, kind="keywords", version=0, reason="沿用公司词库", now=clock()
    )
    session.commit()
    assert dictionary_for(session, own).match(text).categories == ("样品",)


def test_a_keywords_preview_changes_no_customer_and_lists_the_words_changed(session, clock):
    company = make_company(session)
    document = _with_category("样品", ["样品", "寄样"])
    document["categories"][0]["words"].remove("询价")
    document["risk_words"].append("假货")

    preview = publisher.preview(
        session, actor=Actor.of(company.boss), kind="keywords", document=document, now=clock()
    )

    assert preview.problems == [] and preview.changed == 0
    assert [(r["rule"], r["added"], r["removed"]) for r in preview.rules] == [
        ("类别「报价」", [], ["询价"]),
        ("类别「样品」", ["样品", "寄样"], []),
        ("风险词", ["假货"], []),
    ]
    assert "不改动任何客户" in preview.note
