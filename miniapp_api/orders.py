"""/orders and /approval-flow: orders (订单), their approvals and the #加急# emergency lane."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from crm import orders
from miniapp_api import api
from miniapp_api.context import actor, now, session
from miniapp_api.routing import operation
from miniapp_api.schemas import (
    ApprovalFlowIn,
    ApprovalFlowOut,
    ExpediteIn,
    ExpediteOut,
    ExpediteReportOut,
    ExpediteReportQuery,
    OrderApproveIn,
    OrderDetailOut,
    OrderIn,
    OrderPageOut,
    OrderQuery,
    OrderRejectIn,
)
from models import OrderStep, User


def _flow(nodes: list[orders.NodeSpec]) -> dict[str, Any]:
    return {
        "nodes": [{"position": i, **asdict(node)} for i, node in enumerate(nodes, start=1)],
        "is_default": orders.is_default_flow(session()),
    }


def _person(user: User | None) -> dict[str, Any] | None:
    return {"id": user.id, "name": user.name} if user else None


def _order(view: orders.OrderView) -> dict[str, Any]:
    order, step = view.order, view.current_step
    return {
        "id": order.id,
        "number": order.number,
        "customer": order.customer,
        "amount": order.amount,
        "status": order.status,
        "current_step": step.name if step else None,
        "created_by": _person(view.creator),
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "decided_at": order.decided_at,
        "expedited_by": _person(view.expediter),
        "expedited_at": order.expedited_at,
        "expedite_reason": order.expedite_reason,
    }


def _step(step: OrderStep) -> dict[str, Any]:
    return {
        "id": step.id,
        "position": step.position,
        "name": step.name,
        "approver": step.approver,
        "skippable": step.skippable,
        "status": step.status,
        "decided_by": _person(step.decider),
        "decided_at": step.decided_at,
        "comment": step.comment,
    }


def _detail(order_id: int) -> dict[str, Any]:
    view = orders.get_order(session(), actor=actor(), order_id=order_id)
    return {
        **_order(view),
        "steps": [_step(s) for s in view.order.steps],
        "waiting_for": [_person(u) for u in view.waiting_for],
    }


@operation(
    api, "GET", "/approval-flow", summary="订单审批流程", tag="orders", response=ApprovalFlowOut
)
def get_approval_flow() -> Any:
    return _flow(orders.flow(session()))


@operation(
    api,
    "PUT",
    "/approval-flow",
    summary="修改订单审批流程（老板；进行中的订单不受影响）",
    tag="orders",
    body=ApprovalFlowIn,
    response=ApprovalFlowOut,
)
def set_approval_flow(body: ApprovalFlowIn) -> Any:
    nodes = [orders.NodeSpec(n.name, n.approver, n.skippable) for n in body.nodes]
    return _flow(orders.set_flow(session(), actor=actor(), nodes=nodes, now=now()))


@operation(
    api,
    "POST",
    "/orders",
    summary="新建订单（按当前审批流程送审）",
    tag="orders",
    body=OrderIn,
    response=OrderDetailOut,
    status=201,
)
def create_order(body: OrderIn) -> Any:
    order = orders.create_order(
        session(),
        actor=actor(),
        number=body.number,
        customer_id=body.customer_id,
        amount=body.amount,
        now=now(),
    )
    return _detail(order.id)


@operation(
    api,
    "GET",
    "/orders",
    summary="订单列表（权限范围内，最新在前）",
    tag="orders",
    query=OrderQuery,
    response=OrderPageOut,
)
def list_orders(query: OrderQuery) -> Any:
    page = orders.list_orders(
        session(),
        actor=actor(),
        status=query.status,
        customer_id=query.customer_id,
        page=query.page,
        page_size=query.page_size,
    )
    return {
        "items": [_order(view) for view in page.items],
        "total": page.total,
        "page": page.page,
        "page_size": page.page_size,
    }


@operation(
    api,
    "GET",
    "/orders/expedite-report",
    summary="加急统计：次数、加急人、原因、被跳过的节点",
    tag="orders",
    query=ExpediteReportQuery,
    response=ExpediteReportOut,
)
def expedite_report(query: ExpediteReportQuery) -> Any:
    return orders.expedite_report(session(), actor=actor(), since=query.since, until=query.until)


@operation(
    api,
    "GET",
    "/orders/{order_id}",
    summary="订单详情（各节点的审批人和结果、加急信息）",
    tag="orders",
    response=OrderDetailOut,
)
def get_order(order_id: int) -> Any:
    return _detail(order_id)


@operation(
    api,
    "POST",
    "/orders/{order_id}/approve",
    summary="同意当前审批节点",
    tag="orders",
    body=OrderApproveIn,
    response=OrderDetailOut,
)
def approve_order(order_id: int, body: OrderApproveIn) -> Any:
    orders.decide(
        session(),
        actor=actor(),
        order_id=order_id,
        step_id=body.step_id,
        approve=True,
        comment=body.comment,
        now=now(),
    )
    return _detail(order_id)


@operation(
    api,
    "POST",
    "/orders/{order_id}/reject",
    summary="驳回订单（需写明原因）",
    tag="orders",
    body=OrderRejectIn,
    response=OrderDetailOut,
)
def reject_order(order_id: int, body: OrderRejectIn) -> Any:
    orders.decide(
        session(),
        actor=actor(),
        order_id=order_id,
        step_id=body.step_id,
        approve=False,
        comment=body.comment,
        now=now(),
    )
    return _detail(order_id)


@operation(
    api,
    "POST",
    "/orders/{order_id}/expedite",
    summary="加急订单：跳过可跳过的节点并通知后续审批人（主管、老板）",
    tag="orders",
    body=ExpediteIn,
    response=ExpediteOut,
)
def expedite_order(order_id: int, body: ExpediteIn) -> Any:
    number = orders.get_order(session(), actor=actor(), order_id=order_id).order.number
    result = orders.expedite(session(), actor=actor(), number=number, reason=body.reason, now=now())
    return {
        "order": _detail(order_id),
        "skipped": result.skipped,
        "remaining": result.remaining,
        "notified": result.notified,
    }
