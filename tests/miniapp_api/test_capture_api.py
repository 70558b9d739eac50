"""POST /capture/preview: a manager tries a keyword dictionary on chat messages; it changes
nothing, refuses a bad dictionary at the wrong word, and follows the rule sets' scope."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select

from crm.actors import Actor
from crm.rules import publisher
from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from models import AuditEntry, RuleSetVersion
from tests.factories import make_company, sign_in

DEFAULT = DEFAULT_DOCUMENTS["keywords"]
MESSAGES = ["已发送正式报价单", "我向领导汇报价格", "还没报价", "太贵了，要投诉", "今天寄样品"]


@pytest.fixture
def company(session):
    return make_company(session)


def _with_samples(name="样品"):
    document = copy.deepcopy(DEFAULT)
    document["categories"].append({"name": name, "words": ["样品", "寄样"]})
    return document


def _preview(client, headers, **body):
    return client.post("/api/v1/capture/preview", headers=headers, json=body)


def _categories(response):
    assert response.status_code == 200, response.json
    return [r["categories"] for r in response.json["results"]]


def test_each_message_gets_its_categories_words_negations_and_risks(company, client, fake_wecom):
    headers = sign_in(client, fake_wecom, company.managers[0])

    response = _preview(client, headers, messages=MESSAGES)

    assert response.status_code == 200
    assert response.json["results"] == [
        {"categories": ["报价"], "keywords": ["正式报价单"], "negated": [], "risks": []},
        {"categories": [], "keywords": [], "negated": [], "risks": []},
        {"categories": [], "keywords": [], "negated": ["报价"], "risks": []},
        {"categories": [], "keywords": [], "negated": [], "risks": ["投诉", "太贵了"]},
        {"categories": [], "keywords": [], "negated": [], "risks": []},
    ]


def test_a_dictionary_in_the_request_is_tried_and_nothing_is_saved(
    company, client, session, fake_wecom
):
    headers = sign_in(client, fake_wecom, company.managers[0])
    audit_before = session.scalar(select(func.count()).select_from(AuditEntry))

    response = _preview(client, headers, messages=MESSAGES, dictionary=_with_samples())

    assert _categories(response)[4] == ["样品"]
    session.rollback()
    assert session.scalars(select(RuleSetVersion)).all() == []
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == audit_before
    assert _categories(_preview(client, headers, messages=MESSAGES))[4] == []


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            lambda d: d["categories"][1]["words"].__setitem__(0, "签 合同"),
            "categories[1].words[0]",
            "空格或标点",
        ),
        (
            lambda d: d["categories"][2]["words"].insert(0, "报价单"),
            "categories[2].words[0]",
            "已经在类别「报价」里",
        ),
        (lambda d: d["categories"][0]["words"].insert(0, ""), "categories[0].words[0]", "是空的"),
        (lambda d: d["categories"][3].__setitem__("name", "报价"), "categories[3].name", "重复"),
        (lambda d: d["categories"][4].__setitem__("words", []), "categories[4].words", "1 到 200"),
        (lambda d: d["negations"].insert(0, "报价"), "negations[0]", "已经在类别「报价」里"),
        (lambda d: d["risk_words"].insert(0, "没有"), "risk_words[0]", "已经在否定词里"),
        (lambda d: d.pop("risk_words"), "risk_words", "缺少风险词列表"),
        (lambda d: d.__setitem__("categories", []), "categories", "1 到 30 个类别"),
        (lambda d: d.__setitem__("synonyms", {}), "synonyms", "未知的键"),
    ],
)
def test_a_bad_dictionary_is_refused_at_the_wrong_part(
    change, field, words, company, client, fake_wecom
):
    headers = sign_in(client, fake_wecom, company.managers[0])
    document = copy.deepcopy(DEFAULT)
    change(document)

    response = _preview(client, headers, messages=["已报价"], dictionary=document)

    assert response.status_code == 422
    error = response.json["error"]
    assert (error["code"], error["field"]) == ("invalid_rule", f"dictionary.{field}")
    assert words in error["message"]
    checked = client.post(
        "/api/v1/rule-sets/validate",
        headers=headers,
        json={"kind": "keywords", "document": document},
    ).json
    assert [p["path"] for p in checked["problems"]] == [field]


@pytest.mark.parametrize(
    ("messages", "field"),
    [([], "messages"), (["好的"] * 501, "messages"), (["好" * 2001], "messages.0")],
)
def test_the_messages_are_one_to_500_texts_of_at_most_2000_characters(
    messages, field, company, client, fake_wecom
):
    headers = sign_in(client, fake_wecom, company.managers[0])

    response = _preview(client, headers, messages=messages)

    assert response.status_code == 422
    assert response.json["error"]["field"] == field
    assert len(_preview(client, headers, messages=["好的"] * 500).json["results"]) == 500


def test_the_dictionary_in_force_is_the_scopes_own(company, client, session, clock, fake_wecom):
    boss, manager = Actor.of(company.boss), Actor.of(company.managers[1])
    for actor, name in ((boss, "样品"), (manager, "寄样")):
        draft = publisher.create_draft(
            session,
            actor=actor,
            kind="keywords",
            document=_with_samples(name),
            note=None,
            now=clock(),
        )
        publisher.publish(session, actor=actor, draft_id=draft.id, reason="词库", now=clock())
    session.commit()
    message = ["今天寄样品"]
    as_boss = sign_in(client, fake_wecom, company.boss)

    assert _categories(_preview(client, as_boss, messages=message)) == [["样品"]]
    team = company.teams[1].id
    assert _categories(_preview(client, as_boss, messages=message, team_id=team)) == [["寄样"]]
    for index, expected in ((0, "样品"), (1, "寄样")):
        headers = sign_in(client, fake_wecom, company.managers[index])
        assert _categories(_preview(client, headers, messages=message)) == [[expected]]


def test_reps_and_another_teams_manager_are_refused(company, client, fake_wecom):
    rep = sign_in(client, fake_wecom, company.reps[0][0])
    manager = sign_in(client, fake_wecom, company.managers[0])

    refused = _preview(client, rep, messages=["已报价"])
    reaching = _preview(client, manager, messages=["已报价"], team_id=company.teams[1].id)

    assert refused.status_code == 403
    assert refused.json["error"]["message"] == "只有主管或老板可以查看和修改规则"
    assert reaching.status_code == 403
    assert reaching.json["error"]["message"] == "主管只能查看和修改本团队的规则"
    assert client.post("/api/v1/capture/preview", json={"messages": ["已报价"]}).status_code == 401
