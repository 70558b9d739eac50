"""The five kinds of rule-set document, how each is checked, and the shapes the engine reads.

grading   {"rules": [{"name", "when", "grade"}], "default": "C"}            first match wins
triggers  {"rules": [{"name", "on", "when", "do": [actions]}]}
timers    {"rules": [{"name", "when", "clock", "exempt_grades", "steps": [
              {"after_days", "after_days_by_grade": {"A": 3}, "do": [actions]}]}]}
pool      {"claims_per_day", "max_holdings", "cooldown_days", "auto_assign"}
keywords  {"categories": [{"name", "words": [...]}], "negations": [...], "risk_words": [...]}
          the chat-capture dictionary, read by crm.keywords
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import keywords
from crm.rules import actions, conditions
from crm.rules.conditions import Problem
from crm.rules.facts import Context, Fact
from crm.rulesets.policy import AutoAssign, PoolPolicy
from crm.vocab import Grade
from models import User

KINDS = ("grading", "triggers", "timers", "pool", "keywords")
KIND_LABELS = {
    "grading": "客户分级",
    "triggers": "事件触发",
    "timers": "定时提醒",
    "pool": "公海规则",
    "keywords": "关键词词库",
}
EVENTS = {
    "follow_up_created": Context.FOLLOW_UP,
    "stage_changed": Context.STAGE_CHANGE,
    "customer_updated": Context.UPDATE,
}
EVENT_LABELS = {
    "follow_up_created": "新增跟进",
    "stage_changed": "阶段变更",
    "customer_updated": "客户资料修改",
}
CLOCKS = {
    "last_follow_up": "距上次跟进",
    "stage_entered": "进入当前阶段",
    # The customer's newest chat message, or entering the stage when that is later (or there
    # is none): "报价后客户 N 天没回话" counts from the quote, not from an older message.
    "customer_message": "客户上次发消息（或进入当前阶段，取较晚者）",
}
MAX_RULES = 50
MAX_STEPS = 5
MAX_DAYS = 3650
_GRADES = tuple(g.value for g in Grade)


@dataclass(frozen=True)
class GradingRule:
    name: str
    when: dict[str, Any]
    grade: str


@dataclass(frozen=True)
class TriggerRule:
    name: str
    on: str
    when: dict[str, Any] | None
    do: list[dict[str, Any]]


@dataclass(frozen=True)
class TimerStep:
    after_days: float
    after_days_by_grade: dict[str, float]
    do: list[dict[str, Any]]

    def days_for(self, grade: str | None) -> float:
        return self.after_days_by_grade.get(grade or "", self.after_days)


@dataclass(frozen=True)
class TimerRule:
    name: str
    when: dict[str, Any] | None
    clock: str
    exempt_grades: tuple[str, ...]
    steps: tuple[TimerStep, ...]


def grading_rules(document: Mapping[str, Any]) -> tuple[list[GradingRule], str | None]:
    rules = [GradingRule(r["name"], r["when"], r["grade"]) for r in document.get("rules", [])]
    return rules, document.get("default")


def trigger_rules(document: Mapping[str, Any]) -> list[TriggerRule]:
    return [
        TriggerRule(r["name"], r["on"], r.get("when"), r["do"]) for r in document.get("rules", [])
    ]


def timer_rules(document: Mapping[str, Any]) -> list[TimerRule]:
    return [
        TimerRule(
            name=r["name"],
            when=r.get("when"),
            clock=r.get("clock", "last_follow_up"),
            exempt_grades=tuple(r.get("exempt_grades", ())),
            steps=tuple(
                TimerStep(s["after_days"], dict(s.get("after_days_by_grade", {})), s["do"])
                for s in r["steps"]
            ),
        )
        for r in document.get("rules", [])
    ]


def facts_used(document: Mapping[str, Any]) -> set[str]:
    """Every fact a (checked) document's conditions name."""
    used: set[str] = set()
    for rule in document.get("rules", []):
        used |= conditions.facts_used(rule.get("when"))
    return used


# --- checking ---------------------------------------------------------------------------------


def check(
    session: Session, kind: str, document: Any, *, facts: Mapping[str, Fact]
) -> list[Problem]:
    """Everything wrong with a document of `kind`; [] means it may be published."""
    if kind not in KINDS:
        return [Problem("kind", f"规则类型只能是：{'、'.join(KINDS)}")]
    if not isinstance(document, dict):
        return [Problem("document", "规则内容应为 JSON 对象")]
    if kind == "pool":
        return _check_pool(document)
    if kind == "keywords":
        return _check_keywords(document)
    active_users = set(session.scalars(select(User.id).where(User.is_active)))
    allowed = {"rules"} | ({"default"} if kind == "grading" else set())
    problems = [Problem(key, f"未知的键「{key}」") for key in sorted(set(document) - allowed)]
    rules = document.get("rules", [])
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        return [*problems, Problem("rules", f"rules 应为最多 {MAX_RULES} 条规则的列表")]
    names: set[str] = set()
    for index, rule in enumerate(rules):
        path, where = f"rules[{index}]", f"第{index + 1}条规则"
        if not isinstance(rule, dict):
            problems.append(Problem(path, f"{where}应为对象"))
            continue
        name = rule.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            problems.append(Problem(f"{path}.name", f"{where}需要 1 到 64 个字符的名称"))
        elif name in names:
            problems.append(Problem(f"{path}.name", f"{where}的名称「{name}」与前面的规则重复"))
        else:
            names.add(name)
            where = f"{where}「{name}」"
        checker = {
            "grading": _check_grading_rule,
            "triggers": _check_trigger,
            "timers": _check_timer,
        }
        problems += checker[kind](rule, path, where, facts, active_users)
    if kind == "grading" and document.get("default") not in (None, *_GRADES):
        problems.append(Problem("default", f"默认等级只能是：{'、'.join(_GRADES)}，或不填"))
    return problems


def _unknown_keys(rule: dict, allowed: set[str], path: str, where: str) -> list[Problem]:
    return [
        Problem(f"{path}.{key}", f"{where}：未知的键「{key}」")
        for key in sorted(set(rule) - allowed, key=str)
    ]


def _check_grading_rule(
    rule: dict, path: str, where: str, facts: Mapping[str, Fact], _users: Collection[int]
) -> list[Problem]:
    problems = _unknown_keys(rule, {"name", "when", "grade"}, path, where)
    if rule.get("grade") not in _GRADES:
        problems.append(Problem(f"{path}.grade", f"{where}：等级只能是：{'、'.join(_GRADES)}"))
    if "when" not in rule:
        problems.append(Problem(f"{path}.when", f"{where}缺少条件（when）"))
    else:
        problems += conditions.check(rule["when"], facts=facts, path=f"{path}.when", where=where)
    return problems


def _check_trigger(
    rule: dict, path: str, where: str, facts: Mapping[str, Fact], users: Collection[int]
) -> list[Problem]:
    problems = _unknown_keys(rule, {"name", "on", "when", "do"}, path, where)
    on = rule.get("on")
    if on not in EVENTS:
        known = "、".join(f"{k}（{v}）" for k, v in EVENT_LABELS.items())
        return [*problems, Problem(f"{path}.on", f"{where}：触发事件「{on}」不认识，可用：{known}")]
    if "when" in rule:
        problems += conditions.check(
            rule["when"],
            facts=facts,
            contexts=(Context.CUSTOMER, EVENTS[on]),
            path=f"{path}.when",
            where=where,
        )
    problems += actions.check(rule.get("do"), path=f"{path}.do", where=where, active_user_ids=users)
    return problems


def _check_timer(
    rule: dict, path: str, where: str, facts: Mapping[str, Fact], users: Collection[int]
) -> list[Problem]:
    problems = _unknown_keys(rule, {"name", "when", "clock", "exempt_grades", "steps"}, path, where)
    if "when" in rule:
        problems += conditions.check(rule["when"], facts=facts, path=f"{path}.when", where=where)
    if rule.get("clock", "last_follow_up") not in CLOCKS:
        known = "、".join(f"{k}（{v}）" for k, v in CLOCKS.items())
        problems.append(Problem(f"{path}.clock", f"{where}：计时起点只能是：{known}"))
    exempt = rule.get("exempt_grades", [])
    if not isinstance(exempt, list) or any(g not in _GRADES for g in exempt):
        problems.append(
            Problem(f"{path}.exempt_grades", f'{where}：豁免等级应为等级列表，如 ["A"]')
        )
    steps = rule.get("steps")
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        return [*problems, Problem(f"{path}.steps", f"{where}：steps 应为 1 到 {MAX_STEPS} 级")]
    previous = -1.0
    for index, step in enumerate(steps):
        at, label = f"{path}.steps[{index}]", f"{where}第{index + 1}级"
        if not isinstance(step, dict):
            problems.append(Problem(at, f"{label}应为对象"))
            continue
        problems += _unknown_keys(step, {"after_days", "after_days_by_grade", "do"}, at, label)
        days: Any = step.get("after_days")
        if not _is_days(days):
            problems.append(Problem(f"{at}.after_days", f"{label}：天数应在 0 到 {MAX_DAYS} 之间"))
        elif days <= previous:
            problems.append(
                Problem(f"{at}.after_days", f"{label}：天数应大于上一级（{previous:g} 天）")
            )
        else:
            previous = days
        by_grade = step.get("after_days_by_grade", {})
        if not isinstance(by_grade, dict) or any(
            g not in _GRADES or not _is_days(d) for g, d in by_grade.items()
        ):
            problems.append(
                Problem(
                    f"{at}.after_days_by_grade",
                    f'{label}：按等级的天数应形如 {{"A": 3}}，天数在 0 到 {MAX_DAYS} 之间',
                )
            )
        problems += actions.check(
            step.get("do"), path=f"{at}.do", where=label, active_user_ids=users
        )
    return problems


def _is_days(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= MAX_DAYS
    )


_POOL_LIMITS = {
    "claims_per_day": (0, 100, "每日可领取数"),
    "max_holdings": (1, 100_000, "持有客户上限"),
    "cooldown_days": (0, 365, "原负责人冷却天数"),
}


def _check_pool(document: dict) -> list[Problem]:
    known = {*_POOL_LIMITS, "auto_assign"}
    problems = [Problem(k, f"未知的键「{k}」") for k in sorted(set(document) - known, key=str)]
    for key, (low, high, label) in _POOL_LIMITS.items():
        value = document.get(key, getattr(PoolPolicy(), key))
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(Problem(key, f"{label}应为 {low} 到 {high} 之间的整数"))
    if document.get("auto_assign", AutoAssign.LEAST_LOADED) not in tuple(AutoAssign):
        choices = "round_robin（轮流）、least_loaded（最少持有）"
        problems.append(Problem("auto_assign", f"自动分配方式只能是：{choices}"))
    return problems


MAX_CATEGORIES = 30
MAX_CATEGORY_NAME_CHARS = 32
MAX_WORDS = 200  # per category, and negations and risk words each
MAX_WORD_CHARS = 20
_WORD_LISTS = {"negations": "否定词", "risk_words": "风险词"}


def _check_keywords(document: dict) -> list[Problem]:
    known = {"categories", *_WORD_LISTS}
    problems = [Problem(k, f"未知的键「{k}」") for k in sorted(set(document) - known, key=str)]
    categories = document.get("categories")
    if not isinstance(categories, list) or not 1 <= len(categories) <= MAX_CATEGORIES:
        problems.append(
            Problem("categories", f"categories 应为 1 到 {MAX_CATEGORIES} 个类别的列表")
        )
        categories = []
    names: set[str] = set()
    owner: dict[str, str] = {}  # word -> the category (or list) that has it first
    for index, category in enumerate(categories):
        path, where = f"categories[{index}]", f"第{index + 1}个类别"
        if not isinstance(category, dict):
            problems.append(Problem(path, f"{where}应为对象"))
            continue
        problems += _unknown_keys(category, {"name", "words"}, path, where)
        name = category.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_CATEGORY_NAME_CHARS:
            problems.append(
                Problem(f"{path}.name", f"{where}需要 1 到 {MAX_CATEGORY_NAME_CHARS} 个字符的名称")
            )
        elif name in names:
            problems.append(Problem(f"{path}.name", f"{where}的名称「{name}」与前面的类别重复"))
        else:
            names.add(name)
            where = f"类别「{name}」"
        problems += _check_words(
            category.get("words"), f"{path}.words", where, owner, required=True
        )
    for key, label in _WORD_LISTS.items():
        if key not in document:
            problems.append(Problem(key, f"缺少{label}列表（{key}），没有时请写 []"))
            continue
        # A risk word may also be a keyword (a message is then both); a negation may not.
        seen = (
            owner
            if key == "negations"
            else {w: c for w, c in owner.items() if c == _WORD_LISTS["negations"]}
        )
        problems += _check_words(document[key], key, label, seen, required=False)
    return problems


def _check_words(
    words: Any, path: str, where: str, owner: dict[str, str], *, required: bool
) -> list[Problem]:
    """A list of words: strings jieba can cut out as one token, each in one list only."""
    low = 1 if required else 0
    if not isinstance(words, list) or not low <= len(words) <= MAX_WORDS:
        return [Problem(path, f"{where}：词语应为 {low} 到 {MAX_WORDS} 个的列表")]
    problems = []
    for index, word in enumerate(words):
        at = f"{path}[{index}]"
        if not isinstance(word, str) or not word.strip():
            problems.append(Problem(at, f"{where}：第{index + 1}个词是空的，请删除或填写"))
        elif len(word) > MAX_WORD_CHARS:
            problems.append(Problem(at, f"{where}：「{word}」过长（最多 {MAX_WORD_CHARS} 个字）"))
        elif not keywords.can_be_token(word):
            problems.append(
                Problem(at, f"{where}：「{word}」含有空格或标点，聊天里分词后不会成为一个词")
            )
        elif word in owner:
            problems.append(Problem(at, f"{where}：「{word}」已经在{owner[word]}里"))
        else:
            owner[word] = where
    return problems
