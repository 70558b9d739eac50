"""The customer book: find and read customers, clean their fields, move them through stages.

Every query starts from `customer_scope(actor)`, so a customer outside the actor's scope is
simply not there: reads and writes alike answer NotFound. These are the steps the rules use
too (a trigger's stage move is `change_stage`); the changes people make, which the rules react
to, are in `crm.customer_changes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from crm import audit, custom_fields, fields, similar
from crm.actors import Actor, customer_scope
from crm.errors import Conflict, Invalid, NotFound
from crm.text import escape_like
from crm.vocab import ALLOWED_STAGE_MOVES, Stage
from models import ContactEvent, Customer, CustomerTag, FollowUp, StageChange, Task

MAX_PAGE_SIZE = 100
TIMELINE_LIMIT = 100

# Plain fields a create or an update may set; owner, stage and grade have their own verbs.
EDITABLE_FIELDS = fields.EDITABLE_KEYS
AUDITED_FIELDS = (*(f.key for f in fields.CATALOGUE), "owner_id", "tags", "custom_values")

SORTS: dict[str, Any] = {
    "updated_at": Customer.updated_at,
    "created_at": Customer.created_at,
    "name": Customer.name,
    "expected_amount": Customer.expected_amount,
    "last_follow_up_at": Customer.last_follow_up_at,
    "completeness": Customer.completeness,
    "grade": Customer.grade,
}


@dataclass(frozen=True)
class CustomerQuery:
    """What a list asks for: search text, filters, a sort and a page."""

    q: str | None = None
    stages: tuple[str, ...] = ()
    grades: tuple[str, ...] = ()
    region: str | None = None
    category: str | None = None
    owner_id: int | None = None
    tag: str | None = None
    custom: tuple[tuple[str, str], ...] = ()
    sort: str = "-updated_at"
    page: int = 1
    page_size: int = 20


@dataclass
class CustomerPage:
    items: list[Customer]
    total: int
    page: int
    page_size: int


@dataclass
class TimelineEvent:
    kind: str  # follow_up / stage_change / task / contact
    at: datetime
    record: FollowUp | StageChange | Task | ContactEvent


@dataclass
class CustomerDetail:
    customer: Customer
    timeline: list[TimelineEvent] = field(default_factory=list)


def scoped_customers(actor: Actor) -> Select[Customer]:
    """SELECT customers the actor may see; every customer read starts here."""
    return select(Customer).where(customer_scope(actor))


def get_customer(
    session: Session, *, actor: Actor, customer_id: int, for_update: bool = False
) -> Customer:
    """One customer in scope, or NotFound whether it is missing or merely not the actor's."""
    query = scoped_customers(actor).where(Customer.id == customer_id)
    if for_update:
        query = query.with_for_update()
    customer = session.scalar(query)
    if customer is None:
        raise NotFound("客户")
    return customer


def list_customers(session: Session, *, actor: Actor, query: CustomerQuery) -> CustomerPage:
    """A page of customers in scope, filtered and sorted (three statements, whatever the size)."""
    conditions = [customer_scope(actor), *filter_conditions(session, query)]
    total = session.scalar(select(func.count()).select_from(Customer).where(*conditions)) or 0
    page_size = min(max(query.page_size, 1), MAX_PAGE_SIZE)
    rows = session.scalars(
        select(Customer)
        .where(*conditions)
        .options(joinedload(Customer.owner), selectinload(Customer.tags))
        .order_by(*sort_order(query.sort))
        .limit(page_size)
        .offset((max(query.page, 1) - 1) * page_size)
    )
    return CustomerPage(items=list(rows), total=total, page=query.page, page_size=page_size)


def customer_detail(session: Session, *, actor: Actor, customer_id: int) -> CustomerDetail:
    """A customer with its timeline: follow-ups, stage changes, tasks and WeChat contact changes,
    newest first."""
    customer = session.scalar(
        scoped_customers(actor)
        .where(Customer.id == customer_id)
        .options(joinedload(Customer.owner), selectinload(Customer.tags))
    )
    if customer is None:
        raise NotFound("客户")
    follow_ups = session.scalars(
        select(FollowUp)
        .where(FollowUp.customer_id == customer_id)
        .options(
            joinedload(FollowUp.author),
            selectinload(FollowUp.attachments),
            selectinload(FollowUp.recordings),
        )
        .order_by(FollowUp.happened_at.desc(), FollowUp.id.desc())
        .limit(TIMELINE_LIMIT)
    )
    changes = session.scalars(
        select(StageChange)
        .where(StageChange.customer_id == customer_id)
        .options(joinedload(StageChange.actor))
        .order_by(StageChange.changed_at.desc(), StageChange.id.desc())
        .limit(TIMELINE_LIMIT)
    )
    tasks = session.scalars(
        select(Task)
        .where(Task.customer_id == customer_id)
        .options(joinedload(Task.assignee))
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(TIMELINE_LIMIT)
    )
    contacts = session.scalars(
        select(ContactEvent)
        .where(ContactEvent.customer_id == customer_id)
        .options(joinedload(ContactEvent.user))
        .order_by(ContactEvent.at.desc(), ContactEvent.id.desc())
        .limit(TIMELINE_LIMIT)
    )
    events = [TimelineEvent("follow_up", f.happened_at, f) for f in follow_ups]
    events += [TimelineEvent("stage_change", c.changed_at, c) for c in changes]
    events += [TimelineEvent("task", t.created_at, t) for t in tasks]
    events += [TimelineEvent("contact", c.at, c) for c in contacts]
    events.sort(key=lambda e: e.at, reverse=True)
    return CustomerDetail(customer=customer, timeline=events[:TIMELINE_LIMIT])


def change_stage(
    session: Session,
    *,
    actor: Actor | None,
    customer: Customer,
    to_stage: str,
    now: datetime,
    cause: str,
) -> StageChange:
    """Move a customer along the allowed stage moves, recording history and audit."""
    target = Stage(fields.clean_value("stage", to_stage))
    current = Stage(customer.stage)
    if target == current:
        raise Conflict(f"客户已处于「{current}」阶段", code="same_stage")
    if target not in ALLOWED_STAGE_MOVES[current]:
        raise Invalid(
            f"不能从「{current}」直接变为「{target}」", code="stage_move_not_allowed", field="stage"
        )
    change = StageChange(
        customer_id=customer.id,
        from_stage=current,
        to_stage=target,
        changed_at=now,
        actor_id=actor.user_id if actor else None,
        cause=cause,
    )
    session.add(change)
    customer.stage = target
    customer.stage_entered_at = now
    customer.updated_at = now
    audit.record(
        session,
        actor=actor,
        entity="customer",
        entity_id=customer.id,
        action="stage",
        before={"stage": current.value},
        after={"stage": target.value},
        now=now,
        reason=cause,
    )
    session.flush()
    if target is Stage.INTEREST:
        similar.push_similar_deals(session, customer=customer, now=now)
    return change


def find_by_phone(session: Session, phone: str) -> Customer | None:
    """The customer with this normalised phone, in any scope (imports and duplicate checks)."""
    return session.scalar(select(Customer).where(Customer.phone == phone).limit(1))


def clean_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise the plain fields (`crm.fields`); Invalid names the field."""
    unknown = next((name for name in values if name not in EDITABLE_FIELDS), None)
    if unknown is not None:
        raise Invalid(f"未知字段「{unknown}」", field=unknown)
    return {name: fields.clean_value(name, raw) for name, raw in values.items()}


def snapshot(customer: Customer) -> dict[str, Any]:
    """The audited view of a customer, for before/after comparisons."""
    values = {name: getattr(customer, name) for name in AUDITED_FIELDS if name != "tags"}
    values["tags"] = sorted(t.tag for t in customer.tags)
    if values.get("expected_amount") is not None:
        values["expected_amount"] = str(values["expected_amount"])
    values["custom_values"] = dict(customer.custom_values or {})
    return values


def name_or_company_contains(text: str) -> ColumnElement[bool]:
    """Customers whose name or company contains `text` (any case; LIKE's wildcards escaped)."""
    like = f"%{escape_like(text)}%"
    return or_(Customer.name.ilike(like, escape="\\"), Customer.company.ilike(like, escape="\\"))


def filter_conditions(session: Session, query: CustomerQuery) -> list[Any]:
    conditions: list[Any] = []
    if query.q:
        text = query.q.strip()
        options: list[ColumnElement[bool]] = [name_or_company_contains(text)]
        digits = "".join(ch for ch in text if ch.isdigit())
        if len(digits) >= 3:
            options.append(Customer.phone.like(f"%{digits}%"))
        conditions.append(or_(*options))
    if query.stages:
        conditions.append(Customer.stage.in_(query.stages))
    if query.grades:
        conditions.append(Customer.grade.in_(query.grades))
    if query.region:
        conditions.append(Customer.region == query.region)
    if query.category:
        conditions.append(Customer.category == query.category)
    if query.owner_id is not None:
        conditions.append(Customer.owner_id == query.owner_id)
    if query.tag:
        conditions.append(
            exists().where(
                and_(CustomerTag.customer_id == Customer.id, CustomerTag.tag == query.tag)
            )
        )
    if query.custom:
        definitions = {d.key: d for d in custom_fields.active_fields(session)}
        for key, raw in query.custom:
            definition = definitions.get(key)
            if definition is None:
                raise Invalid(f"没有名为「{key}」的自定义字段", field="custom")
            value = custom_fields.clean_value(definition, raw)
            element = Customer.custom_values[key]
            if isinstance(value, bool):
                conditions.append(element.as_boolean() == value)
            elif isinstance(value, (int, float)):
                conditions.append(element.as_float() == float(value))
            else:
                conditions.append(element.as_string() == value)
    return conditions


def sort_order(sort: str) -> list[Any]:
    descending = sort.startswith("-")
    column = SORTS.get(sort.lstrip("-"))
    if column is None:
        raise Invalid(f"不支持的排序「{sort}」", field="sort")
    primary = column.desc() if descending else column.asc()
    return [primary, Customer.id.desc() if descending else Customer.id.asc()]
