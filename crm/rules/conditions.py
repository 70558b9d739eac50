"""Conditions: all/any/not trees over facts. Checked, evaluated in Python, compiled to SQL.

A leaf is `{"fact": "inquiry_count", "op": ">=", "value": 3}`; a branch is `{"all": [...]}`,
`{"any": [...]}` or `{"not": {...}}`. Every leaf is strictly true or false in both readings
(a missing value never turns into SQL's NULL), so `not` means the same thing in SQL and Python.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, not_, or_, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import Integer

from crm.rules.facts import Context, Fact, Kind, Subject

MAX_DEPTH = 8
MAX_NODES = 100
MAX_LIST_ITEMS = 100
MAX_TEXT = 200
MAX_PATTERN = 100
MAX_NUMBER = 1e12
MAX_DAYS = 3650

OP_LABELS = {
    "==": "等于",
    "!=": "不等于",
    ">": "大于",
    ">=": "大于等于",
    "<": "小于",
    "<=": "小于等于",
    "in": "属于其中之一",
    "not_in": "不属于其中任何一个",
    "contains": "包含",
    "not_contains": "不包含",
    "matches": "匹配正则表达式",
    "is_empty": "为空",
    "not_empty": "不为空",
    "has": "含有",
    "not_has": "不含有",
}
_ORDER = {">", ">=", "<", "<="}
_EMPTINESS = {"is_empty", "not_empty"}
OPS_BY_KIND: dict[Kind, frozenset[str]] = {
    Kind.NUMBER: frozenset({"==", "!=", "in", "not_in", *_ORDER, *_EMPTINESS}),
    Kind.BOOL: frozenset({"==", "!="}),
    Kind.TEXT: frozenset(
        {"==", "!=", "in", "not_in", "contains", "not_contains", "matches", *_EMPTINESS}
    ),
    Kind.ENUM: frozenset({"==", "!=", "in", "not_in", *_EMPTINESS}),
    Kind.DATE: frozenset({"==", "!=", *_ORDER, *_EMPTINESS}),
    Kind.DAYS: frozenset(_ORDER),
    Kind.SET: frozenset({"has", "not_has"}),
}
# Operators that hold for a missing value: "grade != A" is true of an ungraded customer.
_TRUE_WHEN_MISSING = {"!=", "not_in", "not_contains", "is_empty"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rule set: where (a JSON path) and what, in Chinese."""

    path: str
    message: str


class _Checker:
    def __init__(
        self, facts: Mapping[str, Fact], contexts: Collection[Context], where: str
    ) -> None:
        self.facts = facts
        self.contexts = contexts
        self.where = where
        self.problems: list[Problem] = []
        self.nodes = 0

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, f"{self.where}：{message}"))

    def node(self, node: Any, path: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.problem(path, f"条件过于复杂（最多{MAX_NODES}个节点）")
            return
        if depth > MAX_DEPTH:
            self.problem(path, f"条件嵌套过深（最多{MAX_DEPTH}层）")
            return
        if not isinstance(node, dict):
            self.problem(path, '条件应为对象，如 {"fact": …, "op": …, "value": …}')
            return
        branches = [key for key in ("all", "any", "not") if key in node]
        if branches:
            if len(node) != 1:
                self.problem(path, "「all」「any」「not」只能单独使用，不能与其他键并列")
                return
            key = branches[0]
            if key == "not":
                self.node(node["not"], f"{path}.not", depth + 1)
                return
            children = node[key]
            if not isinstance(children, list) or not children:
                self.problem(f"{path}.{key}", f"「{key}」应为非空的条件列表")
                return
            for index, child in enumerate(children):
                self.node(child, f"{path}.{key}[{index}]", depth + 1)
            return
        self.leaf(node, path)

    def leaf(self, node: dict, path: str) -> None:
        unknown = set(node) - {"fact", "op", "value"}
        if unknown:
            self.problem(path, f"未知的键「{'、'.join(sorted(map(str, unknown)))}」")
            return
        name = node.get("fact")
        fact = self.facts.get(name) if isinstance(name, str) else None
        if fact is None:
            self.problem(f"{path}.fact", f"没有名为「{name}」的条件字段")
            return
        if fact.context not in self.contexts:
            self.problem(
                f"{path}.fact", f"「{fact.label}」只能用于「{_CONTEXT_LABELS[fact.context]}」触发器"
            )
            return
        op = node.get("op")
        if op not in OPS_BY_KIND[fact.kind]:
            allowed = "、".join(f"{o}（{OP_LABELS[o]}）" for o in sorted(OPS_BY_KIND[fact.kind]))
            self.problem(f"{path}.op", f"运算符「{op}」不适用于「{fact.label}」，可用：{allowed}")
            return
        message = _check_value(fact, op, node.get("value"), "value" in node)
        if message:
            self.problem(f"{path}.value", f"「{fact.label}」{message}")


_CONTEXT_LABELS = {
    Context.CUSTOMER: "客户",
    Context.FOLLOW_UP: "新增跟进",
    Context.STAGE_CHANGE: "阶段变更",
    Context.UPDATE: "客户资料修改",
}


def check(
    condition: Any,
    *,
    facts: Mapping[str, Fact],
    contexts: Collection[Context] = (Context.CUSTOMER,),
    path: str,
    where: str,
) -> list[Problem]:
    """Everything wrong with a condition, each problem naming its path; [] when it is sound."""
    checker = _Checker(facts, contexts, where)
    checker.node(condition, path, 1)
    return checker.problems


def _check_value(fact: Fact, op: str, value: Any, present: bool) -> str | None:
    if op in _EMPTINESS:
        return "判断为空时不需要填写比较值" if present and value is not None else None
    if not present:
        return "缺少比较值（value）"
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST_ITEMS:
            return f"的比较值应为 1 到 {MAX_LIST_ITEMS} 项的列表"
        for item in value:
            message = _check_scalar(fact, item)
            if message:
                return message
        return None
    if op == "matches":
        if not isinstance(value, str) or not value or len(value) > MAX_PATTERN:
            return f"的正则表达式应为 1 到 {MAX_PATTERN} 个字符"
        try:
            re.compile(value)
        except re.error:
            return f"的正则表达式「{value}」写得不对"
        return None
    if fact.kind is Kind.DAYS:
        if not _is_number(value) or not 0 <= value <= MAX_DAYS:
            return f"应为 0 到 {MAX_DAYS} 之间的天数"
        return None
    if fact.kind is Kind.SET:
        if not isinstance(value, str) or not value.strip() or len(value) > 32:
            return "的比较值应为 1 到 32 个字符的文字"
        return None
    return _check_scalar(fact, value)


def _check_scalar(fact: Fact, value: Any) -> str | None:
    if fact.kind is Kind.NUMBER:
        if not _is_number(value) or abs(value) > MAX_NUMBER:
            return "的比较值应为数字"
    elif fact.kind is Kind.BOOL:
        if not isinstance(value, bool):
            return "的比较值应为 true 或 false"
    elif fact.kind is Kind.DATE:
        try:
            date.fromisoformat(value)
        except (TypeError, ValueError):
            return "的比较值应为日期，如 2026-03-01"
    elif not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        return f"的比较值应为 1 到 {MAX_TEXT} 个字符的文字"
    elif fact.kind is Kind.ENUM and fact.choices and value not in fact.choices:
        return f"只能是：{'、'.join(fact.choices)}（收到「{value}」）"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- Python -----------------------------------------------------------------------------------


def evaluate(condition: Mapping[str, Any], facts: Mapping[str, Fact], subject: Subject) -> bool:
    """Whether a checked condition holds for one subject."""
    if "all" in condition:
        return all(evaluate(c, facts, subject) for c in condition["all"])
    if "any" in condition:
        return any(evaluate(c, facts, subject) for c in condition["any"])
    if "not" in condition:
        return not evaluate(condition["not"], facts, subject)
    fact = facts[condition["fact"]]
    return _leaf(fact, condition["op"], condition.get("value"), fact.read(subject), subject.now)


def _leaf(fact: Fact, op: str, value: Any, actual: Any, now: datetime) -> bool:
    if op in _EMPTINESS:
        empty = actual is None or actual == ""
        return empty if op == "is_empty" else not empty
    if fact.kind is Kind.SET:
        return (value in actual) == (op == "has")
    if actual is None:
        return op in _TRUE_WHEN_MISSING
    if fact.kind is Kind.DAYS:
        # Compare moments, not rounded day counts, exactly as the SQL reading does.
        actual, value = now - actual, timedelta(days=value)
    if op == "==":
        return bool(actual == value)
    if op == "!=":
        return bool(actual != value)
    if op == "in":
        return actual in value
    if op == "not_in":
        return actual not in value
    if op == "contains":
        return value in actual
    if op == "not_contains":
        return value not in actual
    if op == "matches":
        return re.search(value, actual) is not None
    return bool(_ORDERINGS[op](actual, value))


_ORDERINGS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


# --- SQL --------------------------------------------------------------------------------------


class text_position(GenericFunction[int]):
    """1-based position of a substring, 0 when absent: exact and case-sensitive on both
    databases (LIKE ignores ASCII case on SQLite but not on PostgreSQL)."""

    type = Integer()
    inherit_cache = True


@compiles(text_position, "sqlite")
def _position_sqlite(element: text_position, compiler: Any, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(text_position, "postgresql")
def _position_postgresql(element: text_position, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


def compile_sql(
    condition: Mapping[str, Any], facts: Mapping[str, Fact], now: datetime
) -> ColumnElement[bool] | None:
    """The condition as a WHERE clause over customers, or None if part of it is Python-only."""
    if "all" in condition or "any" in condition:
        key = "all" if "all" in condition else "any"
        parts = [compile_sql(c, facts, now) for c in condition[key]]
        compiled = [p for p in parts if p is not None]
        if len(compiled) < len(parts):
            return None
        return and_(true(), *compiled) if key == "all" else or_(false(), *compiled)
    if "not" in condition:
        inner = compile_sql(condition["not"], facts, now)
        return None if inner is None else not_(inner)
    return _leaf_sql(facts[condition["fact"]], condition["op"], condition.get("value"), now)


def prefilter_sql(
    condition: Mapping[str, Any], facts: Mapping[str, Fact], now: datetime
) -> ColumnElement[bool]:
    """A WHERE clause every match satisfies (the compilable part of a top-level `all`), so
    Python only evaluates the rows SQL could not decide."""
    whole = compile_sql(condition, facts, now)
    if whole is not None:
        return whole
    if "all" in condition:
        parts = [compile_sql(c, facts, now) for c in condition["all"]]
        return and_(true(), *(p for p in parts if p is not None))
    return true()


def _leaf_sql(fact: Fact, op: str, value: Any, now: datetime) -> ColumnElement[bool] | None:
    if fact.kind is Kind.SET:
        if fact.sql_has is None:
            return None
        has = fact.sql_has(value)
        return has if op == "has" else not_(has)
    if fact.sql is None or op == "matches":
        return None
    column = fact.sql(now)
    if op in _EMPTINESS:
        empty = column.is_(None)
        if fact.kind in (Kind.TEXT, Kind.ENUM, Kind.DATE):
            empty = or_(empty, column == "")
        return empty if op == "is_empty" else not_(empty)
    if fact.kind is Kind.DAYS:
        # "more than N days since t" is "t before now - N days": an index-friendly comparison.
        cutoff = now - timedelta(days=value)
        flipped = {">": column < cutoff, ">=": column <= cutoff, "<": column > cutoff}
        return and_(column.is_not(None), flipped.get(op, column >= cutoff))
    expression = {
        "==": lambda: column == value,
        "!=": lambda: column != value,
        "in": lambda: column.in_(value),
        "not_in": lambda: column.not_in(value),
        ">": lambda: column > value,
        ">=": lambda: column >= value,
        "<": lambda: column < value,
        "<=": lambda: column <= value,
        "contains": lambda: text_position(column, value) > 0,
        "not_contains": lambda: text_position(column, value) == 0,
    }[op]()
    if op in _TRUE_WHEN_MISSING:
        return or_(column.is_(None), expression)
    return and_(column.is_not(None), expression)


def facts_used(condition: Any) -> set[str]:
    """The fact names a (checked) condition refers to."""
    if not isinstance(condition, dict):
        return set()
    for key in ("all", "any"):
        if key in condition:
            return set().union(*(facts_used(c) for c in condition[key]))
    if "not" in condition:
        return facts_used(condition["not"])
    return {condition["fact"]}
