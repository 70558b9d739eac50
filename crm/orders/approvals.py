"""Deciding an order's current step: approve (on to the next step) or reject (order closed).

The API's approve/reject and a click on an approval card (bot/cards.py) both land here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from crm.actors import Actor
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from crm.orders.approvers import (
    APPROVER_LABELS,
    ask_approvers,
    current_step,
    step_approvers,
    tell_creator,
)
from crm.orders.book import ORDER_STATUS_LABELS, clean_note, order_for_change, record_change
from models import Order
from models.orders import Approver, OrderStatus, StepStatus

COMMENT_MAX_CHARS = 255  # the audit trail keeps it as the reason
STEP_STATUS_LABELS = {
    StepStatus.PENDING: "待审批",
    StepStatus.APPROVED: "已同意",
    StepStatus.REJECTED: "已驳回",
    StepStatus.SKIPPED: "已跳过",
}


def decide(
    session: Session,
    *,
    actor: Actor,
    order_id: int,
    approve: bool,
    comment: str | None,
    now: datetime,
    step_id: int | None = None,
) -> Order:
    """The current step's approver approves (on to the next step) or rejects (order closed).

    `step_id` names the step the decider saw; if it was decided meanwhile the call is refused
    rather than deciding the next step, which may have the same approver."""
    order = order_for_change(session, actor, Order.id == order_id)
    step = current_step(order)
    if step is None:
        label = ORDER_STATUS_LABELS[OrderStatus(order.status)]
        raise Conflict(f"订单 {order.number} {label}，无需再审批", code="order_closed")
    if step_id is not None and step.id != step_id:
        seen = next((s for s in order.steps if s.id == step_id), None)
        if seen is None:
            raise NotFound("审批节点")
        label = STEP_STATUS_LABELS[StepStatus(seen.status)]
        raise Conflict(
            f"订单 {order.number} 的「{seen.name}」{label}，当前在「{step.name}」",
            code="stale_step",
        )
    if actor.user_id not in {u.id for u in step_approvers(session, order, step)}:
        who = APPROVER_LABELS[Approver(step.approver)]
        raise Forbidden(f"「{step.name}」需由{who}审批，你不是该节点的审批人")
    note = clean_note(comment or "", field="comment", limit=COMMENT_MAX_CHARS)
    if not approve and not note:
        raise Invalid("驳回时请写明原因", code="required", field="comment")
    step.status = StepStatus.APPROVED if approve else StepStatus.REJECTED
    step.decided_by = actor.user_id
    step.decided_at = now
    step.comment = note or None
    order.updated_at = now
    if not approve:
        order.status = OrderStatus.REJECTED
        order.decided_at = now
    nxt = current_step(order)
    if approve and nxt is None:
        order.status = OrderStatus.APPROVED
        order.decided_at = now
    record_change(
        session,
        actor,
        order,
        "approve" if approve else "reject",
        before={"step": step.name, "status": StepStatus.PENDING},
        after={"step": step.name, "status": step.status, "order_status": order.status},
        now=now,
        reason=note or None,
    )
    if nxt is not None:
        ask_approvers(session, order, nxt, now)
    else:
        tell_creator(session, order, actor, now)
    session.flush()
    return order
