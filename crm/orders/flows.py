"""The company's approval flow: the ordered nodes every new order goes through.

The default is 主管审批 → 财务审核 → 仓库排期. The flow, including which nodes `#加急#` may skip,
is the company's: only the boss changes it; everyone may read it. An order copies the nodes
into its own steps when it is created (crm/orders/book.py), so a change never touches an order
under way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm import audit
from crm.actors import Actor
from crm.errors import Conflict, Forbidden, Invalid
from crm.text import check_text
from models import ApprovalNode
from models.orders import Approver
from models.users import Role

MAX_NODES = 10
NODE_NAME_MAX_CHARS = 32
FLOW_AUDIT_ENTITY_ID = 0  # the flow is one company-wide record


@dataclass(frozen=True)
class NodeSpec:
    """One node of the approval flow as configured (positions follow the list order)."""

    name: str
    approver: str  # an Approver
    skippable: bool = False


DEFAULT_FLOW = (
    NodeSpec("主管审批", Approver.MANAGER, skippable=True),
    NodeSpec("财务审核", Approver.BOSS, skippable=True),
    NodeSpec("仓库排期", Approver.BOSS, skippable=False),
)


def flow(session: Session) -> list[NodeSpec]:
    """The configured nodes in order; DEFAULT_FLOW while nobody has configured one."""
    nodes = session.scalars(select(ApprovalNode).order_by(ApprovalNode.position)).all()
    if not nodes:
        return list(DEFAULT_FLOW)
    return [NodeSpec(n.name, n.approver, n.skippable) for n in nodes]


def is_default_flow(session: Session) -> bool:
    """True while the flow in force is DEFAULT_FLOW because none was configured."""
    return session.scalar(select(ApprovalNode.id).limit(1)) is None


def set_flow(
    session: Session, *, actor: Actor, nodes: Sequence[NodeSpec], now: datetime
) -> list[NodeSpec]:
    """Replace the company's approval flow at once (the boss only); running orders keep theirs."""
    if actor.role is not Role.BOSS:
        raise Forbidden("审批流程由老板设置，主管和销售只能查看")
    cleaned = _clean_nodes(nodes)
    before = flow(session)
    try:
        # Two editors at once: the second insert hits the unique positions of the first and
        # is told to retry instead of mixing both flows.
        with session.begin_nested():
            session.execute(delete(ApprovalNode))
            session.add_all(
                ApprovalNode(
                    position=index, name=node.name, approver=node.approver, skippable=node.skippable
                )
                for index, node in enumerate(cleaned, start=1)
            )
    except IntegrityError:
        raise Conflict("审批流程正在被他人修改，请刷新后重试", code="flow_changed") from None
    audit.record(
        session,
        actor=actor,
        entity="approval_flow",
        entity_id=FLOW_AUDIT_ENTITY_ID,
        action="set",
        before={"nodes": [_node_dict(n) for n in before]},
        after={"nodes": [_node_dict(n) for n in cleaned]},
        now=now,
    )
    session.flush()
    return cleaned


def _clean_nodes(nodes: Sequence[NodeSpec]) -> list[NodeSpec]:
    if not nodes:
        raise Invalid("审批流程至少需要一个节点", field="nodes")
    if len(nodes) > MAX_NODES:
        raise Invalid(f"审批流程最多 {MAX_NODES} 个节点", field="nodes")
    cleaned: list[NodeSpec] = []
    for index, node in enumerate(nodes):
        field = f"nodes.{index}"
        name = check_text(node.name, field=f"{field}.name").strip()
        if not name:
            raise Invalid(f"第 {index + 1} 个节点的名称不能为空", field=f"{field}.name")
        if len(name) > NODE_NAME_MAX_CHARS:
            raise Invalid(
                f"节点名称不能超过{NODE_NAME_MAX_CHARS}字：{name[:8]}…", field=f"{field}.name"
            )
        if name in (c.name for c in cleaned):
            raise Invalid(f"节点名称「{name}」重复了", field=f"{field}.name")
        if node.approver not in set(Approver):
            raise Invalid(
                "审批人只能是 manager（销售主管）或 boss（老板）", field=f"{field}.approver"
            )
        cleaned.append(NodeSpec(name, Approver(node.approver).value, bool(node.skippable)))
    return cleaned


def _node_dict(node: NodeSpec) -> dict[str, Any]:
    return {"name": node.name, "approver": node.approver, "skippable": node.skippable}
