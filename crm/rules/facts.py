"""What a rule may ask about a customer: the fact registry.

Each fact has a Python reading (from a `Subject`) and, where SQL can say the same thing on both
databases, a SQL expression. Both readings must agree on every customer: a bulk re-grade uses
the SQL one, a single event the Python one (tests/crm/test_rules_agree.py checks this).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import Session

from crm.fields import CATALOGUE, FieldKind
from crm.vocab import ContactMethod, Stage
from models import Customer, CustomerTag, CustomField


class Kind(StrEnum):
    NUMBER = "number"
    BOOL = "bool"
    TEXT = "text"
    ENUM = "enum"
    DATE = "date"  # ISO dates (custom date fields): compared as text, which orders correctly
    DAYS = "days"  # days since a moment; compared with a number of days
    SET = "set"  # a set of words (tags, attachment types): has / not_has


class Context(StrEnum):
    """Where a fact has a value: every customer, or only inside one kind of event."""

    CUSTOMER = "customer"
    FOLLOW_UP = "follow_up_created"
    STAGE_CHANGE = "stage_changed"
    UPDATE = "customer_updated"


@dataclass
class Subject:
    """One customer as a rule sees it, plus the event being handled (if any)."""

    values: Mapping[Any, Any]  # Customer columns by attribute name (a dict or a Core row)
    tags: frozenset[str]
    now: datetime
    event: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fact:
    name: str
    label: str
    kind: Kind
    read: Callable[[Subject], Any]
    sql: Callable[[datetime], Any] | None = None  # None: Python only
    sql_has: Callable[[str], ColumnElement[bool]] | None = None  # SET facts: "has this word"
    choices: tuple[str, ...] = ()
    context: Context = Context.CUSTOMER


def _column(name: str, label: str, kind: Kind, choices: tuple[str, ...] = ()) -> Fact:
    """A fact that is just a customer column."""
    column = getattr(Customer, name)
    return Fact(
        name, label, kind, lambda s: s.values.get(name), lambda _now: column, choices=choices
    )


def _values(enum: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


# A field's kind as a rule compares it; custom fields' kinds are the same.
FIELD_KINDS = {
    FieldKind.TEXT: Kind.TEXT,
    FieldKind.NUMBER: Kind.NUMBER,
    FieldKind.BOOL: Kind.BOOL,
    FieldKind.ENUM: Kind.ENUM,
    FieldKind.DATE: Kind.DATE,
}
# Every catalogue field rules may ask about, then the columns the system keeps.
_COLUMNS = [
    *(_column(f.key, f.label, FIELD_KINDS[f.kind], f.choices) for f in CATALOGUE if f.is_fact),
    _column("completeness", "资料完整度", Kind.NUMBER),
    _column("owner_id", "负责人", Kind.NUMBER),
    _column("team_id", "所属团队", Kind.NUMBER),
]


def _since(attribute: str, fallback: str | None = None) -> tuple[Callable, Callable]:
    """Python and SQL readings of "the moment days are counted from"."""

    def read(subject: Subject) -> datetime | None:
        moment = subject.values.get(attribute)
        return moment if moment is not None or fallback is None else subject.values.get(fallback)

    def sql(_now: datetime) -> Any:
        column = getattr(Customer, attribute)
        return column if fallback is None else func.coalesce(column, getattr(Customer, fallback))

    return read, sql


_last_follow_up = _since("last_follow_up_at", "created_at")
_stage_entered = _since("stage_entered_at")
_created = _since("created_at")
_customer_message = _since("last_customer_message_at")  # no chat: no value

BUILT_IN: dict[str, Fact] = {
    **{fact.name: fact for fact in _COLUMNS},
    "tags": Fact("tags", "标签", Kind.SET, lambda s: s.tags, sql_has=lambda tag: has_tag_sql(tag)),
    "days_since_follow_up": Fact(
        "days_since_follow_up", "距上次跟进天数", Kind.DAYS, *_last_follow_up
    ),
    "days_in_stage": Fact("days_in_stage", "当前阶段停留天数", Kind.DAYS, *_stage_entered),
    "days_since_created": Fact("days_since_created", "建档天数", Kind.DAYS, *_created),
    # From the chat archive (crm/chat_capture.py): "silent N days after a quote".
    "days_since_customer_message": Fact(
        "days_since_customer_message", "距客户上次发消息天数", Kind.DAYS, *_customer_message
    ),
    "follow_up.text": Fact(
        "follow_up.text",
        "本次跟进内容",
        Kind.TEXT,
        lambda s: s.event.get("text"),
        context=Context.FOLLOW_UP,
    ),
    "follow_up.method": Fact(
        "follow_up.method",
        "本次跟进方式",
        Kind.ENUM,
        lambda s: s.event.get("method"),
        choices=_values(ContactMethod),
        context=Context.FOLLOW_UP,
    ),
    "follow_up.attachment_types": Fact(
        "follow_up.attachment_types",
        "本次跟进附件类型",
        Kind.SET,
        lambda s: frozenset(s.event.get("attachment_types", ())),
        context=Context.FOLLOW_UP,
    ),
    "previous_stage": Fact(
        "previous_stage",
        "变更前阶段",
        Kind.ENUM,
        lambda s: s.event.get("previous_stage"),
        choices=_values(Stage),
        context=Context.STAGE_CHANGE,
    ),
    "changed_fields": Fact(
        "changed_fields",
        "本次修改的字段",
        Kind.SET,
        lambda s: frozenset(s.event.get("changed_fields", ())),
        context=Context.UPDATE,
    ),
}


def _custom(key: str, label: str, field_kind: str, options: list[str]) -> Fact:
    kind = FIELD_KINDS[FieldKind(field_kind)]

    def read(subject: Subject) -> Any:
        return (subject.values.get("custom_values") or {}).get(key)

    def sql(_now: datetime) -> Any:
        element = Customer.custom_values[key]
        if kind is Kind.NUMBER:
            return element.as_float()
        if kind is Kind.BOOL:
            return element.as_boolean()
        return element.as_string()

    return Fact(f"custom.{key}", label, kind, read, sql, choices=tuple(options))


def registry(session: Session, *, include_retired: bool = False) -> dict[str, Fact]:
    """Every fact a rule may name: the built-in ones and one per custom field.

    New rules may only name active custom fields; rules already published keep reading a field
    a manager has since retired (its values are still stored), so they never break.
    """
    facts = dict(BUILT_IN)
    query = select(CustomField).order_by(CustomField.id)
    if not include_retired:
        query = query.where(CustomField.is_active)
    for definition in session.scalars(query):
        fact = _custom(definition.key, definition.label, definition.kind, definition.options)
        facts[fact.name] = fact
    return facts


def has_tag_sql(tag: str) -> ColumnElement[bool]:
    """The customer carries `tag`."""
    return exists(
        select(CustomerTag.customer_id).where(
            and_(CustomerTag.customer_id == Customer.id, CustomerTag.tag == tag)
        )
    )
