"""Orders (订单), the approval flow they go through, and the #加急# emergency lane.

The flow is an ordered list of nodes (主管审批 → 财务审核 → 仓库排期 by default) that managers edit.
An order copies the nodes into its own steps when it is created, so editing the flow never
changes an order under way. The current step is the lowest pending one; only its approvers
decide it: the active managers of the customer's team ('manager'; the boss when the team has
none) or the active bosses ('boss'). `#加急#` skips every pending step the flow marks as
skippable and tells the people at the remaining steps why.

An order is visible exactly when its customer is (`customer_scope`); any other order answers
NotFound("订单"), like one that does not exist. Every change is audited and every message goes
through the outbox in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from crm import audit, calendar
from crm.actors import Actor, customer_scope
from crm.customers import get_customer
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from crm.notifications import ButtonCard, CardButton, notify
from crm.text import check_text
from models import ApprovalNode, Customer, Order, OrderStep, User
from models.users import Role


class Approver(StrEnum):
    MANAGER = "manager"  # the managers of the order customer's team
    BOSS = "boss"


class OrderStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class StepStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class NodeSpec:
    """One node of the approval flow as configured (positions follow the list order)."""

    name: str
    approver: str
    skippable: bool = False


DEFAULT_FLOW = (
    NodeSpec("主管审批", Approver.MANAGER, skippable=True),
    NodeSpec("财务审核", Approver.BOSS, skippable=True),
    NodeSpec("仓库排期", Approver.BOSS, skippable=False),
)
MAX_NODES = 10
NODE_NAME_MAX_CHARS = 32
NUMBER_MAX_CHARS = 32
NUMBER_PATTERN = re.compile(r"[A-Z0-9](?:[A-Z0-9-]*[A-Z0-9])?")
AMOUNT_LIMIT = Decimal("1e12")  # Numeric(14, 2)
REASON_MAX_CHARS = 255
COMMENT_MAX_CHARS = 255  # the audit trail keeps it as the reason
MAX_PAGE_SIZE = 100
REPORT_FIRST_YEAR = 2000
REPORT_LAST_YEAR = 2100
FLOW_AUDIT_ENTITY_ID = 0  # the flow is one company-wide record

# WeCom template cards: the click comes back with this task id and the button's key.
APPROVE_KEY = "approve"
REJECT_KEY = "reject"
CARD_TASK_PREFIX = "order-{order_id}-step-{step_id}"
_CARD_TASK_ID = re.compile(r"order-(\d{1,10})-step-(\d{1,10})-u\d{1,10}")
CARD_REJECT_COMMENT = "企业微信卡片驳回"

APPROVER_LABELS = {Approver.MANAGER: "销售主管", Approver.BOSS: "老板"}
ORDER_STATUS_LABELS = {
    OrderStatus.PENDING: "审批中",
    OrderStatus.APPROVED: "已通过",
    OrderStatus.REJECTED: "已驳回",
}
STEP_STATUS_LABELS = {
    StepStatus.PENDING: "待审批",
    StepStatus.APPROVED: "已同意",
    StepStatus.REJECTED: "已驳回",
    StepStatus.SKIPPED: "已跳过",
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


# --- the approval flow -------------------------------------------------------------------------


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
    """Replace the approval flow at once (managers and the boss); running orders keep theirs."""
    if not actor.can_manage:
        raise Forbidden("只有销售主管或老板可以修改审批流程")
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


# --- orders ------------------------------------------------------------------------------------


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
    _audit(session, actor, order, "create", {}, {"number": number, "amount": value}, now, None)
    step = current_step(order)
    assert step is not None  # a flow has at least one node
    _ask_approvers(session, order, step, now)
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


def _active(session: Session, *conditions: Any) -> list[User]:
    return list(
        session.scalars(select(User).where(User.is_active.is_(True), *conditions).order_by(User.id))
    )


# --- deciding ----------------------------------------------------------------------------------


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
    order = _order_for_change(session, actor, Order.id == order_id)
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
    note = _clean_text(comment or "", field="comment", limit=COMMENT_MAX_CHARS)
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
    _audit(
        session,
        actor,
        order,
        "approve" if approve else "reject",
        {"step": step.name, "status": StepStatus.PENDING},
        {"step": step.name, "status": step.status, "order_status": order.status},
        now,
        note or None,
    )
    if nxt is not None:
        _ask_approvers(session, order, nxt, now)
    else:
        _tell_creator(session, order, actor, now)
    session.flush()
    return order


def decide_from_card(
    session: Session, *, actor: Actor, task_id: str, key: str, now: datetime
) -> str:
    """A click on an approval card's button (WeCom's template_card_event); returns the reply.

    Refusals (a card already handled, someone not the step's approver) raise DomainErrors
    whose messages are the reply."""
    matched = _CARD_TASK_ID.fullmatch(task_id)
    if matched is None:
        raise Invalid("无法识别这张卡片，请在小程序中处理订单", code="unknown_card")
    if key not in (APPROVE_KEY, REJECT_KEY):
        raise Invalid("无法识别这个按钮，请在小程序中处理订单", code="unknown_button")
    approve = key == APPROVE_KEY
    order = decide(
        session,
        actor=actor,
        order_id=int(matched.group(1)),
        step_id=int(matched.group(2)),
        approve=approve,
        comment=None if approve else CARD_REJECT_COMMENT,
        now=now,
    )
    decided = next(s for s in order.steps if s.id == int(matched.group(2)))
    if not approve:
        return f"已驳回订单 {order.number}（{decided.name}）。"
    nxt = current_step(order)
    if nxt is None:
        return f"已同意「{decided.name}」，订单 {order.number} 审批通过。"
    return f"已同意订单 {order.number} 的「{decided.name}」，已转「{nxt.name}」。"


# --- the emergency lane ------------------------------------------------------------------------


def expedite(
    session: Session, *, actor: Actor, number: str, reason: str, now: datetime
) -> ExpediteResult:
    """#加急#: skip the pending skippable steps, record who and why, tell the people left."""
    if not actor.can_manage:
        raise Forbidden("只有销售主管或老板可以加急订单")
    why = _clean_text(reason, field="reason", limit=REASON_MAX_CHARS)
    if not why:
        raise Invalid("请写明加急原因，如：#加急# SO-20260302-001 客户工地周五开工", field="reason")
    order = _order_for_change(session, actor, Order.number == number.strip().upper())
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
    _audit(
        session,
        actor,
        order,
        "expedite",
        {"steps": {s.name: StepStatus.PENDING.value for s in pending}},
        {"steps": {s.name: s.status for s in pending}, "order_status": order.status},
        now,
        why,
    )
    notified: list[User] = []
    if remaining:
        notified = _tell_downstream(session, order, actor, skipped, remaining, now)
        _ask_approvers(session, order, remaining[0], now)
    else:
        _tell_creator(session, order, actor, now)
    session.flush()
    return ExpediteResult(
        order=order,
        skipped=[s.name for s in skipped],
        remaining=[s.name for s in remaining],
        notified=[u.name for u in notified],
    )


def expedite_summary(result: ExpediteResult) -> str:
    """The bot's reply to #加急#."""
    number = result.order.number
    skipped = "".join(f"「{name}」" for name in result.skipped)
    done = f"已跳过{skipped}" if skipped else "流程中没有可跳过的节点"
    if result.is_approved:
        return f"订单 {number} 已加急：{done}，订单已审批通过。"
    remaining = "".join(f"「{name}」" for name in result.remaining)
    told = f"已通知{'、'.join(result.notified)}" if result.notified else "无需通知他人"
    return f"订单 {number} 已加急：{done}；还需{remaining}，{told}。"


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


# --- helpers -----------------------------------------------------------------------------------


def _order_for_change(session: Session, actor: Actor, condition: Any) -> Order:
    """The order in scope, locked for the change (decisions on one order queue up here)."""
    order = session.scalar(
        _with_details(scoped_orders(actor).where(condition))
        .with_for_update(of=Order)
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound("订单")
    return order


def _clean_text(value: str, *, field: str, limit: int) -> str:
    cleaned = check_text(value, field=field).strip()
    if len(cleaned) > limit:
        raise Invalid(f"内容不能超过{limit}字", field=field)
    return cleaned


def _amount_text(amount: Decimal) -> str:
    return f"¥{amount:,.2f}"


def _ask_approvers(session: Session, order: Order, step: OrderStep, now: datetime) -> None:
    """A card with 同意/驳回 to the step's approvers, once per step."""
    card = ButtonCard(
        task_id=CARD_TASK_PREFIX.format(order_id=order.id, step_id=step.id),
        buttons=(CardButton(APPROVE_KEY, "同意", style=1), CardButton(REJECT_KEY, "驳回", style=2)),
        fields=(
            ("客户", order.customer.name),
            ("金额", _amount_text(order.amount)),
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
            f"（{order.customer.name}，{_amount_text(order.amount)}）。\n"
            f"原因：{order.expedite_reason}\n已跳过：{skipped_names}\n待审批：{remaining_names}"
        ),
        now=now,
        customer_id=order.customer_id,
        dedupe_key=f"order:{order.id}:expedite",
    )
    told = {m.recipient_id for m in queued}
    return [u for u in people.values() if u.id in told]


def _tell_creator(session: Session, order: Order, actor: Actor, now: datetime) -> None:
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
        text=f"{text}\n客户：{order.customer.name}，金额：{_amount_text(order.amount)}",
        now=now,
        customer_id=order.customer_id,
        dedupe_key=f"order:{order.id}:{order.status}",
    )


def _audit(
    session: Session,
    actor: Actor,
    order: Order,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    now: datetime,
    reason: str | None,
) -> None:
    session.flush()  # a new order needs its id
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
