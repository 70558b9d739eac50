"""A bad rule is refused with a Chinese message that points at the wrong part."""

from __future__ import annotations

import copy

import pytest

from crm.rules import publisher
from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from tests.factories import make_company


@pytest.fixture
def company(session):
    return make_company(session)


def _grading(when, grade="A"):
    return {"rules": [{"name": "高意向", "when": when, "grade": grade}], "default": "C"}


@pytest.mark.parametrize("kind", sorted(DEFAULT_DOCUMENTS))
def test_the_default_pack_is_valid(kind, session, company):
    assert publisher.problems(session, kind, DEFAULT_DOCUMENTS[kind]) == []


@pytest.mark.parametrize(
    ("when", "path", "words"),
    [
        ({"fact": "inquiry_count", "op": ">>", "value": 3}, "rules[0].when.op", "运算符「>>」"),
        ({"fact": "询价", "op": ">=", "value": 3}, "rules[0].when.fact", "没有名为「询价」"),
        ({"fact": "inquiry_count", "op": ">=", "value": "三"}, "rules[0].when.value", "数字"),
        ({"fact": "inquiry_count", "op": ">=", "value": True}, "rules[0].when.value", "数字"),
        ({"fact": "inquiry_count", "op": ">="}, "rules[0].when.value", "缺少比较值"),
        ({"fact": "stage", "op": "==", "value": "签约"}, "rules[0].when.value", "潜在、意向"),
        (
            {"all": [{"fact": "has_budget", "op": "==", "value": True}, {"fact": "x"}]},
            "rules[0].when.all[1].fact",
            "「x」",
        ),
        ({"any": []}, "rules[0].when.any", "非空"),
        ({"not": "grade"}, "rules[0].when.not", "应为对象"),
        (
            {"fact": "follow_up.text", "op": "contains", "value": "报价"},
            "rules[0].when.fact",
            "新增跟进",
        ),
        ({"fact": "name", "op": "matches", "value": "(湘"}, "rules[0].when.value", "正则"),
        ({"fact": "days_since_follow_up", "op": "==", "value": 7}, "rules[0].when.op", "不适用"),
    ],
)
def test_a_bad_condition_is_named_by_its_path(when, path, words, session, company):
    problems = publisher.problems(session, "grading", _grading(when))
    assert [p.path for p in problems] == [path]
    assert "第1条规则「高意向」" in problems[0].message
    assert words in problems[0].message


def test_a_grading_rule_needs_a_known_grade_and_a_unique_name(session, company):
    document = {
        "rules": [
            {"name": "甲", "when": {"fact": "has_budget", "op": "==", "value": True}, "grade": "E"},
            {"name": "甲", "when": {"fact": "has_budget", "op": "==", "value": True}, "grade": "A"},
        ],
        "default": "Z",
        "extra": 1,
    }
    paths = {p.path for p in publisher.problems(session, "grading", document)}
    assert paths == {"extra", "rules[0].grade", "rules[1].name", "default"}


def test_trigger_actions_are_checked_against_the_registry(session, company):
    document = copy.deepcopy(DEFAULT_DOCUMENTS["triggers"])
    rule = document["rules"][0]
    rule["do"] = [
        {"action": "explode"},
        {"action": "set_stage"},
        {"action": "notify", "to": "owner", "text": "请联系{客户}"},
        {"action": "create_task", "for": "user", "title": "回访"},
        {"action": "create_task", "for": "user", "user_id": 999999, "title": "回访"},
        {"action": "notify", "to": "owner", "text": "好", "colour": "red"},
    ]
    problems = {p.path: p.message for p in publisher.problems(session, "triggers", document)}
    assert set(problems) == {
        "rules[0].do[0].action",
        "rules[0].do[1].stage",
        "rules[0].do[2].text",
        "rules[0].do[3].user_id",
        "rules[0].do[4].user_id",
        "rules[0].do[5].colour",
    }
    assert "没有「explode」这个动作" in problems["rules[0].do[0].action"]
    assert "{客户}" in problems["rules[0].do[2].text"]
    assert "999999" in problems["rules[0].do[4].user_id"]


def test_a_trigger_names_a_known_event(session, company):
    document = {"rules": [{"name": "x", "on": "customer_deleted", "do": []}]}
    problems = publisher.problems(session, "triggers", document)
    assert [p.path for p in problems] == ["rules[0].on"]


def test_timer_ladders_must_climb_and_grades_must_exist(session, company):
    document = copy.deepcopy(DEFAULT_DOCUMENTS["timers"])
    ladder = document["rules"][0]
    ladder["exempt_grades"] = ["S"]
    ladder["steps"].append({"after_days": 7, "do": [{"action": "reassign"}]})
    ladder["steps"][0]["after_days_by_grade"] = {"A": -1}
    ladder["clock"] = "whenever"
    paths = {p.path for p in publisher.problems(session, "timers", document)}
    assert paths == {
        "rules[0].exempt_grades",
        "rules[0].steps[1].after_days",
        "rules[0].steps[0].after_days_by_grade",
        "rules[0].clock",
    }


def test_pool_policy_values_are_bounded(session, company):
    document = {"claims_per_day": -1, "max_holdings": 0, "cooldown_days": 7.5, "auto_assign": "x"}
    paths = {p.path for p in publisher.problems(session, "pool", document)}
    assert paths == {"claims_per_day", "max_holdings", "cooldown_days", "auto_assign"}


@pytest.mark.parametrize(
    "document",
    [[], "rules", {"rules": "x"}, {"rules": [1]}, {"rules": [{"name": float("nan")}]}],
)
def test_malformed_documents_are_problems_not_crashes(document, session, company):
    assert publisher.problems(session, "grading", document)
