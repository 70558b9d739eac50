"""Changes people make to customers: create, edit, move a stage, reassign.

Each change is made with the customer book's steps (`crm.customers`) and then handed to the
rules: a new customer is graded, and every other change goes through `triggers.on_event`
(grading and the event's triggers), whether it came from the API, the bot or an import.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import audit, completeness, custom_fields, fields, similar
from crm.actors import Actor, user_scope
from crm.customers import (
    EDITABLE_FIELDS,
    change_stage,
    clean_fields,
    get_customer,
    snapshot,
)
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from crm.rules import grading, triggers
from crm.text import check_text
from crm.vocab import Stage
from models import Customer, CustomerTag, StageChange, User

MAX_TAGS = 20


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
    similar.index_profile(session, customer=customer, now=now)
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
    similar.index_profile(session, customer=customer, now=now)
    triggers.on_event(
        session,
        customer=customer,
        event="customer_updated",
        now=now,
        data={"changed_fields": sorted(_changed(after, before))},
        regrade=grade is None,
    )
    return customer


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


def _changed(this: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in this.items() if other.get(k) != v}


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
