"""The customer book: find, read, create, change, move through stages and reassign customers.

Every query starts from `customer_scope(actor)`, so a customer outside the actor's scope is
simply not there: reads and writes alike answer NotFound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from crm import audit, completeness, custom_fields, fields
from crm.actors import Actor, customer_scope, user_scope
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from crm.rules import grading, triggers
from crm.text import check_text, escape_like
from crm.vocab import ALLOWED_STAGE_MOVES, Stage
from models import ContactEvent, Customer, CustomerTag, FollowUp, StageChange, Task, User

MAX_PAGE_SIZE = 100
TIMELINE_LIMIT = 100
MAX_TAGS = 20

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
        .options(joinedload(FollowUp.author), selectinload(FollowUp.attachments))
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


def create_customer(
    session: Session,
    *,
    actor: Actor,
    values: dict[str, Any],
    now: datetime,
    owner_id: int | None = None,
    stage: str = Stage.LEAD,
    grade: str | None = None,
    tags: list[str] | None = None,
    custom_values: dict[str, Any] | None = None,
    cause: str = "新建客户",
) -> Customer:
    """Create a customer owned by the actor (or, for managers, by someone they manage)."""
    owner = _resolve_owner(session, actor, owner_id)
    # Every field, so an omitted one takes its default now: grading reads them before the flush.
    cleaned = clean_fields({**dict.fromkeys(EDITABLE_FIELDS), **values})
    _refuse_duplicate_phone(session, cleaned.get("phone"), exclude_id=None)
    customer = Customer(
        **cleaned,
        stage=fields.clean_value("stage", stage),
        grade=fields.clean_value("grade", grade),
        owner_id=owner.id if owner else None,
        team_id=owner.team_id if owner else actor.team_id,
        custom_values=custom_fields.clean_values(
            custom_fields.active_fields(session), custom_values or {}
        ),
        stage_entered_at=now,
        created_at=now,
        updated_at=now,
    )
    customer.tags = [CustomerTag(tag=t) for t in _clean_tags(tags or [])]
    customer.completeness = completeness.score(customer, completeness.required_custom_keys(session))
    session.add(customer)
    session.flush()
    if grade is None:  # a grade a manager imports or types in stands until the next event
        customer.grade = grading.grade_for(session, customer=customer, now=now)[0]
    session.add(
        StageChange(
            customer_id=customer.id,
            from_stage=None,
            to_stage=customer.stage,
            changed_at=now,
            actor_id=actor.user_id,
            cause=cause,
        )
    )
    audit.record(
        session,
        actor=actor,
        entity="customer",
        entity_id=customer.id,
        action="create",
        before={},
        after=snapshot(customer),
        now=now,
        reason=cause,
    )
    return customer


def update_customer(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    values: dict[str, Any],
    now: datetime,
    tags: list[str] | None = None,
    custom_values: dict[str, Any] | None = None,
    grade: str | None = None,
    reason: str | None = None,
) -> Customer:
    """Change plain fields, tags, custom values or (managers) the grade; audited."""
    customer = get_customer(session, actor=actor, customer_id=customer_id, for_update=True)
    session.refresh(customer, ["tags"])
    before = snapshot(customer)
    cleaned = clean_fields(values)
    if "phone" in cleaned and cleaned["phone"] != customer.phone:
        _refuse_duplicate_phone(session, cleaned["phone"], exclude_id=customer.id)
    for name, value in cleaned.items():
        setattr(customer, name, value)
    if tags is not None:
        existing = {t.tag: t for t in customer.tags}
        customer.tags = [existing.get(t) or CustomerTag(tag=t) for t in _clean_tags(tags)]
    if custom_values:
        customer.custom_values = custom_fields.clean_values(
            custom_fields.active_fields(session), custom_values, current=customer.custom_values
        )
    if grade is not None:
        if not actor.can_manage:
            raise Forbidden("客户等级由规则或主管设定")
        customer.grade = fields.clean_value("grade", grade)
    after = snapshot(customer)
    if after == before:
        return customer
    customer.completeness = completeness.score(customer, completeness.required_custom_keys(session))
    customer.updated_at = now
    audit.record(
        session,
        actor=actor,
        entity="customer",
        entity_id=customer.id,
        action="update",
        before=_changed(before, after),
        after=_changed(after, before),
        now=now,
        reason=reason,
    )
    session.flush()
    triggers.on_event(
        session,
        customer=customer,
        event="customer_updated",
        now=now,
        data={"changed_fields": sorted(_changed(after, before))},
        regrade=grade is None,
    )
    return customer


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
    return change


def move_stage(
    session: Session, *, actor: Actor, customer_id: int, to_stage: str, now: datetime, cause: str
) -> Customer:
    """Change stage on behalf of a person (the API and bot verb)."""
    customer = get_customer(session, actor=actor, customer_id=customer_id, for_update=True)
    change = change_stage(
        session,
        actor=actor,
        customer=customer,
        to_stage=to_stage,
        now=now,
        cause=cause or "手动调整",
    )
    triggers.on_event(
        session,
        customer=customer,
        event="stage_changed",
        now=now,
        data={"previous_stage": change.from_stage},
    )
    return customer


def reassign(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    owner_id: int | None,
    now: datetime,
    reason: str,
) -> Customer:
    """Give a customer to another rep (managers within their team; the boss anywhere)."""
    if not actor.can_manage:
        raise Forbidden("只有主管或老板可以调整客户归属")
    customer = get_customer(session, actor=actor, customer_id=customer_id, for_update=True)
    owner = _resolve_owner(session, actor, owner_id) if owner_id is not None else None
    before = {"owner_id": customer.owner_id, "team_id": customer.team_id}
    customer.owner_id = owner.id if owner else None
    if owner is not None:
        customer.team_id = owner.team_id
    customer.updated_at = now
    audit.record(
        session,
        actor=actor,
        entity="customer",
        entity_id=customer.id,
        action="reassign",
        before=before,
        after={"owner_id": customer.owner_id, "team_id": customer.team_id},
        now=now,
        reason=reason,
    )
    session.flush()
    triggers.on_event(
        session,
        customer=customer,
        event="customer_updated",
        now=now,
        data={"changed_fields": ["owner_id"]},
    )
    session.refresh(customer, ["owner"])
    return customer


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


def _changed(this: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in this.items() if other.get(k) != v}


def filter_conditions(session: Session, query: CustomerQuery) -> list[Any]:
    conditions: list[Any] = []
    if query.q:
        text = query.q.strip()
        like = f"%{escape_like(text)}%"
        options = [
            Customer.name.ilike(like, escape="\\"),
            Customer.company.ilike(like, escape="\\"),
        ]
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


def _resolve_owner(session: Session, actor: Actor, owner_id: int | None) -> User | None:
    """The owner a write names: a rep's own customers are theirs; managers pick within scope."""
    if owner_id is None:
        return session.get(User, actor.user_id) if actor.is_rep else None
    if owner_id != actor.user_id and not actor.can_manage:
        raise Forbidden("销售只能为自己创建客户")
    owner = session.scalar(select(User).where(User.id == owner_id, user_scope(actor)))
    if owner is None:
        raise NotFound("成员")
    if not owner.is_active:
        raise Invalid("不能分配给已停用的成员", field="owner_id")
    return owner


def _refuse_duplicate_phone(session: Session, phone: str | None, *, exclude_id: int | None) -> None:
    if not phone:
        return
    query = select(Customer.id).where(Customer.phone == phone)
    if exclude_id is not None:
        query = query.where(Customer.id != exclude_id)
    if session.scalar(query.limit(1)) is not None:
        # Which rep holds it is not said: that would leak another rep's customer.
        raise Conflict(f"电话 {phone} 已登记在其他客户名下（撞单）", code="duplicate_phone")


def _clean_tags(tags: list[str]) -> list[str]:
    cleaned = list(
        dict.fromkeys(check_text(t, field="tags").strip() for t in tags if t and t.strip())
    )
    if len(cleaned) > MAX_TAGS:
        raise Invalid(f"标签最多{MAX_TAGS}个", field="tags")
    if any(len(t) > 32 for t in cleaned):
        raise Invalid("单个标签不能超过32字", field="tags")
    return cleaned
