"""A click on an order's approval card: what the card was about, the decision, the reply.

WeCom sends the click as a template_card_event with the card's task id and the button's key.
The task id names the order and the step the approver saw (wecom/task_ids.py); the decision
is crm's (crm/orders/approvals.py); the words of the reply are the bot's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from crm import orders
from crm.actors import Actor
from crm.errors import Invalid
from wecom import task_ids

ORDER_STEP = {"order_id", "step_id"}  # the subject of an approval card
REJECT_COMMENT = "企业微信卡片驳回"  # a button has no room for a reason


def decide(session: Session, *, actor: Actor, task_id: str, key: str, now: datetime) -> str:
    """Decide the order step a card names by the button clicked; returns the reply.

    Refusals (a card already handled, someone not the step's approver) raise DomainErrors
    whose messages are the reply."""
    subject = task_ids.subject_of(task_id)
    if subject is None or subject.keys() != ORDER_STEP:
        raise Invalid("无法识别这张卡片，请在小程序中处理订单", code="unknown_card")
    if key not in (orders.APPROVE_KEY, orders.REJECT_KEY):
        raise Invalid("无法识别这个按钮，请在小程序中处理订单", code="unknown_button")
    approve = key == orders.APPROVE_KEY
    order = orders.decide(
        session,
        actor=actor,
        order_id=subject["order_id"],
        step_id=subject["step_id"],
        approve=approve,
        comment=None if approve else REJECT_COMMENT,
        now=now,
    )
    decided = next(s for s in order.steps if s.id == subject["step_id"])
    if not approve:
        return f"已驳回订单 {order.number}（{decided.name}）。"
    nxt = orders.current_step(order)
    if nxt is None:
        return f"已同意「{decided.name}」，订单 {order.number} 审批通过。"
    return f"已同意订单 {order.number} 的「{decided.name}」，已转「{nxt.name}」。"
