"""The order book: opening an order, and reading the orders an actor may see.

An order is visible exactly when its customer is (`customer_scope`); any other order answers
NotFound("订单"), like one that does not exist. Every change to an order is audited here
(`record_change`), whichever module made it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from crm import audit
from crm.actors import Actor, customer_scope
from crm.customers import get_customer
from crm.errors import Conflict, Invalid, NotFound
from crm.orders.approvers import ask_approvers, current_step, step_approvers
from crm.orders.flows import flow
from crm.text import check_text
from models import Customer, Order, OrderStep, User
from models.orders import OrderStatus, StepStatus

NUMBER_MAX_CHARS = 32
NUMBER_PATTERN = re.compile(r"[A-Z0-9](?:[A-Z0-9-]*[A-Z0-9])?")
AMOUNT_LIMIT = Decimal("1e12")  # Numeric(14, 2)
MAX_PAGE_SIZE = 100
ORDER_STATUS_LABELS = {
    OrderStatus.PENDING: "审批中",
    OrderStatus.APPROVED: "已通过",
    OrderStatus.REJECTED: "已驳回",
}


@dataclass
class OrderView:
    """An order with the people it names: its creator, who expedited it, who must act now."""

    order: Order
    creator: User | None
    expediter: User | None
    waiting_for: list[User]

    @property
    def current_step(self) -> OrderStep | None:
        return current_step(self.order)


@dataclass
class OrderPage:
    items: list[OrderView]
    total: int
    page: int
    page_size: int


def create_order(
    session: Session,
    *,
    actor: Actor,
    number: str,
    customer_id: int,
    amount: Any,
    now: datetime,
) -> Order:
    """Open an order for a customer in scope; it starts at the flow's first node."""
    customer = get_customer(session, actor=actor, customer_id=customer_id)
    number = _clean_number(number)
    value = _clean_amount(amount)
    if session.scalar(select(Order.id).where(Order.number == number)) is not None:
        raise _duplicate(number)
    order = Order(
        number=number,
        customer_id=customer.id,
        amount=value,
        status=OrderStatus.PENDING,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
        steps=[
            OrderStep(
                position=position,
                name=node.name,
                approver=node.approver,
                skippable=node.skippable,
                status=StepStatus.PENDING,
            )
            for position, node in enumerate(flow(session), start=1)
        ],
    )
    order.customer = customer
    try:
        with session.begin_nested():  # a concurrent order may have taken the number meanwhile
            session.add(order)
    except IntegrityError:
        raise _duplicate(number) from None
    record_change(
        session,
        actor,
        order,
        "create",
        before={},
        after={"number": number, "amount": value},
        now=now,
        reason=None,
    )
    step = current_step(order)
    assert step is not None  # a flow has at least one node
    ask_approvers(session, order, step, now)
    return order


def _clean_number(number: str) -> str:
    cleaned = number.strip().upper()
    if not cleaned:
        raise Invalid("请填写订单号", code="required", field="number")
    if len(cleaned) > NUMBER_MAX_CHARS or not NUMBER_PATTERN.fullmatch(cleaned):
        raise Invalid(
            f"订单号只能由字母、数字和短横线组成，最长{NUMBER_MAX_CHARS}位，如 SO-20260302-001",
            field="number",
        )
    return cleaned


def _clean_amount(amount: Any) -> Decimal:
    try:
        value = Decimal(str(amount).replace(",", "").strip()).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise Invalid("订单金额应为数字", field="amount") from None
    if not value.is_finite() or value <= 0 or value >= AMOUNT_LIMIT:
        raise Invalid("订单金额应大于 0 且小于 1 万亿", field="amount")
    return value


def _duplicate(number: str) -> Conflict:
    return Conflict(f"订单号 {number} 已存在", code="duplicate_number", field="number")


def scoped_orders(actor: Actor) -> Select[Order]:
    """SELECT orders whose customer the actor may see; every order read starts here."""
    return (
        select(Order).join(Customer, Customer.id == Order.customer_id).where(customer_scope(actor))
    )


def _with_details(query: Select[Order]) -> Select[Order]:
    return query.options(
        joinedload(Order.customer),
        selectinload(Order.steps).joinedload(OrderStep.decider),
    )


def list_orders(
    session: Session,
    *,
    actor: Actor,
    status: str | None = None,
    customer_id: int | None = None,
    page: int = 1,
    page_size: int = 20,
) -> OrderPage:
    """Orders in scope, newest first."""
    query = scoped_orders(actor)
    if status is not None:
        query = query.where(Order.status == status)
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page_size = min(max(page_size, 1), MAX_PAGE_SIZE)
    page = max(page, 1)
    rows = session.scalars(
        _with_details(query)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    return OrderPage(
        items=describe(session, list(rows)), total=total, page=page, page_size=page_size
    )


def get_order(session: Session, *, actor: Actor, order_id: int) -> OrderView:
    """One order in scope with its steps and people, or NotFound."""
    order = session.scalar(_with_details(scoped_orders(actor).where(Order.id == order_id)))
    if order is None:
        raise NotFound("订单")
    return describe(session, [order], with_approvers=True)[0]


def describe(
    session: Session, orders: Sequence[Order], *, with_approvers: bool = False
) -> list[OrderView]:
    """Orders (loaded with customer and steps) with the people they name, in one look-up."""
    ids = {o.created_by for o in orders} | {o.expedited_by for o in orders if o.expedited_by}
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}
    views = []
    for order in orders:
        step = current_step(order)
        waiting = step_approvers(session, order, step) if with_approvers and step else []
        views.append(
            OrderView(
                order=order,
                creator=people.get(order.created_by),
                expediter=people.get(order.expedited_by) if order.expedited_by else None,
                waiting_for=waiting,
            )
        )
    return views


def order_for_change(session: Session, actor: Actor, condition: Any) -> Order:
    """The order in scope, locked for the change (decisions on one order queue up here)."""
    order = session.scalar(
        _with_details(scoped_orders(actor).where(condition))
        .with_for_update(of=Order)
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound("订单")
    return order


def clean_note(value: str, *, field: str, limit: int) -> str:
    """A comment or reason as stored: checked, trimmed, at most `limit` characters."""
    cleaned = check_text(value, field=field).strip()
    if len(cleaned) > limit:
        raise Invalid(f"内容不能超过{limit}字", field=field)
    return cleaned


def record_change(
    session: Session,
    actor: Actor,
    order: Order,
    action: str,
    *,
    before: dict[str, Any],
    after: dict[str, Any],
    now: datetime,
    reason: str | None,
) -> None:
    """Audit one change to an order (a new order gets its id first)."""
    session.flush()
    audit.record(
        session,
        actor=actor,
        entity="order",
        entity_id=order.id,
        action=action,
        before=before,
        after=after,
        now=now,
        reason=reason,
    )
