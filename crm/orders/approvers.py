"""Who decides an order's step, and the messages that ask them and tell the order's creator.

The current step is the lowest pending one of a pending order; only its approvers decide it:
the active managers of the customer's team ('manager'; the bosses when the team has none) or
the active bosses ('boss'). Every message goes through the outbox in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.actors import Actor
from crm.notifications import ButtonCard, CardButton, notify
from models import Order, OrderStep, User
from models.orders import Approver, OrderStatus, StepStatus
from models.users import Role

# The buttons of an approval card; a click comes back with the card's subject and one of these.
APPROVE_KEY = "approve"
REJECT_KEY = "reject"
APPROVER_LABELS = {Approver.MANAGER: "销售主管", Approver.BOSS: "老板"}


def current_step(order: Order) -> OrderStep | None:
    """The step waiting for a decision: the lowest pending one of a pending order."""
    if order.status != OrderStatus.PENDING:
        return None
    pending = [s for s in order.steps if s.status == StepStatus.PENDING]
    return min(pending, key=lambda s: s.position) if pending else None


def step_approvers(session: Session, order: Order, step: OrderStep) -> list[User]:
    """Who decides `step`: the team's active managers (else the bosses), or the bosses."""
    team_id = order.customer.team_id
    if step.approver == Approver.MANAGER and team_id is not None:
        managers = _active(session, User.role == Role.MANAGER, User.team_id == team_id)
        if managers:
            return managers
    return _active(session, User.role == Role.BOSS)


def ask_approvers(session: Session, order: Order, step: OrderStep, now: datetime) -> None:
    """A card with 同意/驳回 to the step's approvers, once per step."""
    card = ButtonCard(
        subject={"order_id": order.id, "step_id": step.id},
        buttons=(CardButton(APPROVE_KEY, "同意", style=1), CardButton(REJECT_KEY, "驳回", style=2)),
        fields=(
            ("客户", order.customer.name),
            ("金额", amount_text(order.amount)),
            ("审批节点", step.name),
        ),
    )
    urgent = "【加急】" if order.expedited_at else ""
    notify(
        session,
        recipients=step_approvers(session, order, step),
        title=f"{urgent}订单待审批：{order.number}",
        text=f"请审批「{step.name}」。" + (f"加急原因：{order.expedite_reason}" if urgent else ""),
        now=now,
        customer_id=order.customer_id,
        dedupe_key=f"order:{order.id}:step:{step.id}",
        card=card,
    )


def tell_creator(session: Session, order: Order, actor: Actor, now: datetime) -> None:
    """Tell whoever created a closed order that it was approved, or where and why it was not."""
    creator = session.get(User, order.created_by)
    if creator is None:
        return
    if order.status == OrderStatus.APPROVED:
        title, text = f"订单已通过：{order.number}", f"订单 {order.number} 已完成全部审批。"
    else:
        step = next(s for s in order.steps if s.status == StepStatus.REJECTED)
        title = f"订单被驳回：{order.number}"
        text = f"{actor.name or '审批人'}在「{step.name}」驳回了订单 {order.number}：{step.comment}"
    notify(
        session,
        recipients=[creator],
        title=title,
        text=f"{text}\n客户：{order.customer.name}，金额：{amount_text(order.amount)}",
        now=now,
        customer_id=order.customer_id,
        dedupe_key=f"order:{order.id}:{order.status}",
    )


def amount_text(amount: Decimal) -> str:
    """An order amount as the messages show it: ¥12,345.00."""
    return f"¥{amount:,.2f}"


def _active(session: Session, *conditions: Any) -> list[User]:
    return list(
        session.scalars(select(User).where(User.is_active.is_(True), *conditions).order_by(User.id))
    )
