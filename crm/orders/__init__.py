"""Orders (订单), the approval flow they go through, and the #加急# emergency lane.

One module per job, one surface for callers (`from crm import orders`):

- flows.py: the company's approval flow (the boss sets it; new orders copy it);
- book.py: opening an order, and reading the orders an actor may see;
- approvers.py: who decides the current step, and the messages that ask and tell them;
- approvals.py: approving or rejecting the current step;
- expediting.py: `#加急#`, which skips the skippable steps, and the report on its use.

The statuses and approver kinds are StrEnums beside the tables (models/orders.py).
"""

from crm.orders.approvals import decide
from crm.orders.approvers import APPROVE_KEY, REJECT_KEY, current_step
from crm.orders.book import OrderPage, OrderView, create_order, get_order, list_orders
from crm.orders.expediting import ExpediteReport, ExpediteResult, expedite, expedite_report
from crm.orders.flows import DEFAULT_FLOW, NodeSpec, flow, is_default_flow, set_flow

__all__ = [
    "APPROVE_KEY",
    "DEFAULT_FLOW",
    "REJECT_KEY",
    "ExpediteReport",
    "ExpediteResult",
    "NodeSpec",
    "OrderPage",
    "OrderView",
    "create_order",
    "current_step",
    "decide",
    "expedite",
    "expedite_report",
    "flow",
    "get_order",
    "is_default_flow",
    "list_orders",
    "set_flow",
]
