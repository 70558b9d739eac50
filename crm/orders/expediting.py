"""The #加急# emergency lane: skip an order's skippable steps, and the report on its use.

A manager or the boss expedites a pending order once, with a reason: every pending step the
flow marks as skippable is skipped, and the approvers of the remaining steps are told why.
The report counts how often the lane was used, by whom, why and what it skipped, so the
company can tell whether its normal flow needs changing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm import calendar
from crm.actors import Actor, customer_scope
from crm.errors import Conflict, Forbidden, Invalid
from crm.notifications import notify
from crm.orders.approvers import amount_text, ask_approvers, step_approvers, tell_creator
from crm.orders.book import ORDER_STATUS_LABELS, clean_note, order_for_change, record_change
from models import Customer, Order, OrderStep, User
from models.orders import OrderStatus, StepStatus

REASON_MAX_CHARS = 255
REPORT_FIRST_YEAR = 2000
REPORT_LAST_YEAR = 2100


@dataclass(frozen=True)
class ExpediteResult:
    """What #加急# did: the steps it skipped, those left, and who was told."""

    order: Order
    skipped: list[str]
    remaining: list[str]
    notified: list[str]  # names of the people at the remaining steps who were messaged

    @property
    def is_approved(self) -> bool:
        return self.order.status == OrderStatus.APPROVED


@dataclass(frozen=True)
class PersonCount:
    user_id: int
    name: str
    count: int


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    count: int


@dataclass(frozen=True)
class StepCount:
    name: str
    count: int


@dataclass(frozen=True)
class ExpediteReport:
    """How often the emergency lane was used in [since, until], by whom, why, and what it
    skipped; the team reads it to decide whether the normal flow needs changing."""

    since: date
    until: date
    orders_created: int
    expedited: int
    by_person: list[PersonCount]
    by_reason: list[ReasonCount]
    skipped_steps: list[StepCount]


def expedite(
    session: Session, *, actor: Actor, number: str, reason: str, now: datetime
) -> ExpediteResult:
    """#加急#: skip the pending skippable steps, record who and why, tell the people left."""
    if not actor.can_manage:
        raise Forbidden("只有销售主管或老板可以加急订单")
    why = clean_note(reason, field="reason", limit=REASON_MAX_CHARS)
    if not why:
        raise Invalid("请写明加急原因，如：#加急# SO-20260302-001 客户工地周五开工", field="reason")
    order = order_for_change(session, actor, Order.number == number.strip().upper())
    if order.status != OrderStatus.PENDING:
        label = ORDER_STATUS_LABELS[OrderStatus(order.status)]
        raise Conflict(f"订单 {order.number} {label}，无需加急", code="order_closed")
    if order.expedited_at is not None:
        raise Conflict(
            f"订单 {order.number} 已于 {calendar.local_date(order.expedited_at):%m月%d日} 加急过",
            code="already_expedited",
        )
    pending = sorted(
        (s for s in order.steps if s.status == StepStatus.PENDING), key=lambda s: s.position
    )
    skipped = [s for s in pending if s.skippable]
    remaining = [s for s in pending if not s.skippable]
    for step in skipped:
        step.status = StepStatus.SKIPPED
        step.decided_by = actor.user_id
        step.decided_at = now
        step.comment = why
    order.expedited_by = actor.user_id
    order.expedited_at = now
    order.expedite_reason = why
    order.updated_at = now
    if not remaining:
        order.status = OrderStatus.APPROVED
        order.decided_at = now
    record_change(
        session,
        actor,
        order,
        "expedite",
        before={"steps": {s.name: StepStatus.PENDING.value for s in pending}},
        after={"steps": {s.name: s.status for s in pending}, "order_status": order.status},
        now=now,
        reason=why,
    )
    notified: list[User] = []
    if remaining:
        notified = _tell_downstream(session, order, actor, skipped, remaining, now)
        ask_approvers(session, order, remaining[0], now)
    else:
        tell_creator(session, order, actor, now)
    session.flush()
    return ExpediteResult(
        order=order,
        skipped=[s.name for s in skipped],
        remaining=[s.name for s in remaining],
        notified=[u.name for u in notified],
    )


def _tell_downstream(
    session: Session,
    order: Order,
    actor: Actor,
    skipped: list[OrderStep],
    remaining: list[OrderStep],
    now: datetime,
) -> list[User]:
    """The urgent notice to everyone at a remaining step (not to the one who expedited)."""
    people: dict[int, User] = {}
    for step in remaining:
        people.update((u.id, u) for u in step_approvers(session, order, step))
    people.pop(actor.user_id, None)
    skipped_names = "".join(f"「{s.name}」" for s in skipped) or "无"
    remaining_names = "".join(f"「{s.name}」" for s in remaining)
    queued = notify(
        session,
        recipients=list(people.values()),
        title=f"【加急】订单 {order.number} 请尽快审批",
        text=(
            f"{actor.name or '主管'}加急了订单 {order.number}"
            f"（{order.customer.name}，{amount_text(order.amount)}）。\n"
            f"原因：{order.expedite_reason}\n已跳过：{skipped_names}\n待审批：{remaining_names}"
        ),
        now=now,
        customer_id=order.customer_id,
        dedupe_key=f"order:{order.id}:expedite",
    )
    told = {m.recipient_id for m in queued}
    return [u for u in people.values() if u.id in told]


def expedite_report(session: Session, *, actor: Actor, since: date, until: date) -> ExpediteReport:
    """Expedites of orders in scope on the business days since..until (both included)."""
    if until < since:
        raise Invalid("结束日期不能早于开始日期", field="until")
    if since.year < REPORT_FIRST_YEAR or until.year > REPORT_LAST_YEAR:
        raise Invalid(f"日期应在 {REPORT_FIRST_YEAR} 到 {REPORT_LAST_YEAR} 年之间", field="since")
    start, end = calendar.day_start(since), calendar.day_start(until + timedelta(days=1))
    scoped = (
        select(Order.id)
        .join(Customer, Customer.id == Order.customer_id)
        .where(customer_scope(actor))
        .correlate(None)  # used inside queries on orders too: never bind to their FROM
    )
    created = session.scalar(
        select(func.count()).select_from(
            scoped.where(Order.created_at >= start, Order.created_at < end).subquery()
        )
    )
    expedited = scoped.where(Order.expedited_at >= start, Order.expedited_at < end)
    in_window = Order.id.in_(expedited)
    count = func.count().label("times")
    by_person = session.execute(
        select(User.id, User.name, count)
        .join(Order, Order.expedited_by == User.id)
        .where(in_window)
        .group_by(User.id, User.name)
        .order_by(count.desc(), User.id)
    ).all()
    by_reason = session.execute(
        select(Order.expedite_reason, count)
        .where(in_window)
        .group_by(Order.expedite_reason)
        .order_by(count.desc(), Order.expedite_reason)
    ).all()
    skipped = session.execute(
        select(OrderStep.name, count)
        .where(OrderStep.order_id.in_(expedited), OrderStep.status == StepStatus.SKIPPED)
        .group_by(OrderStep.name)
        .order_by(count.desc(), OrderStep.name)
    ).all()
    return ExpediteReport(
        since=since,
        until=until,
        orders_created=created or 0,
        expedited=sum(row.times for row in by_reason),
        by_person=[PersonCount(row.id, row.name, row.times) for row in by_person],
        by_reason=[ReasonCount(row.expedite_reason or "", row.times) for row in by_reason],
        skipped_steps=[StepCount(row.name, row.times) for row in skipped],
    )
