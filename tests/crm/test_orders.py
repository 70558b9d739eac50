"""Orders and their approval flow: configuration, the approval chain, #加急# and the expedite
report, with messages delivered to the fake WeCom by the outbox worker (card clicks:
tests/bot/test_cards.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from crm import orders
from crm.actors import Actor
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from crm.orders import NodeSpec
from models import AuditEntry, Customer, Order, OrderStep, OutboxMessage
from tests.factories import make_company, make_customer
from workers import queues


def _work(runtime) -> None:
    SimpleWorker([queues.NOTIFICATIONS], connection=runtime.redis).work(burst=True)


def _delivered(runtime, fake_wecom, session) -> list[dict]:
    """Run the outbox worker; the messages the fake WeCom accepted, oldest first."""
    # End the test's read transaction: an older SQLite snapshot could not write afterwards.
    session.rollback()
    _work(runtime)
    return list(fake_wecom.messages)


@pytest.fixture
def company(session):
    return make_company(session)


@pytest.fixture
def customer(session, company, clock):
    return make_customer(session, company.reps[0][0], clock(), name="长沙恒大工地")


def _order(session, company, customer, clock, number="so-20260302-001", amount="128000.5"):
    order = orders.create_order(
        session,
        actor=Actor.of(company.reps[0][0]),
        number=number,
        customer_id=customer.id,
        amount=amount,
        now=clock(),
    )
    session.commit()
    return order


def _steps(session, order_id) -> list[tuple[str, str]]:
    session.expire_all()
    rows = session.scalars(
        select(OrderStep).where(OrderStep.order_id == order_id).order_by(OrderStep.position)
    )
    return [(s.name, s.status) for s in rows]


def _decide(session, user, order, approve=True, comment=None, clock=None, **kwargs):
    decided = orders.decide(
        session,
        actor=Actor.of(user),
        order_id=order.id,
        approve=approve,
        comment=comment,
        now=clock(),
        **kwargs,
    )
    session.commit()
    return decided


# --- the flow ----------------------------------------------------------------------------------


def test_the_default_flow_applies_until_the_boss_replaces_it_with_an_audit_entry(
    session, company, clock
):
    assert orders.flow(session) == list(orders.DEFAULT_FLOW)
    assert orders.is_default_flow(session)
    assert [(n.name, n.approver, n.skippable) for n in orders.DEFAULT_FLOW] == [
        ("主管审批", "manager", True),
        ("财务审核", "boss", True),
        ("仓库排期", "boss", False),
    ]

    new = [NodeSpec(" 主管审批 ", "manager", True), NodeSpec("仓库排期", "boss")]
    orders.set_flow(session, actor=Actor.of(company.boss), nodes=new, now=clock())
    session.commit()

    assert orders.flow(session) == [
        NodeSpec("主管审批", "manager", True),
        NodeSpec("仓库排期", "boss"),
    ]
    assert not orders.is_default_flow(session)
    entry = session.scalars(select(AuditEntry).where(AuditEntry.entity == "approval_flow")).one()
    assert entry.actor_id == company.boss.id
    assert [n["name"] for n in entry.before["nodes"]] == ["主管审批", "财务审核", "仓库排期"]
    assert [n["name"] for n in entry.after["nodes"]] == ["主管审批", "仓库排期"]


@pytest.mark.parametrize(
    ("nodes", "field"),
    [
        ([], "nodes"),
        ([NodeSpec(f"节点{i}", "boss") for i in range(11)], "nodes"),
        ([NodeSpec("财务审核", "boss"), NodeSpec("  ", "boss")], "nodes.1.name"),
        ([NodeSpec("审" * 33, "boss")], "nodes.0.name"),
        ([NodeSpec("财务审核", "boss"), NodeSpec("财务审核", "manager")], "nodes.1.name"),
        ([NodeSpec("财务审核", "rep")], "nodes.0.approver"),
        ([NodeSpec("财务\x00审核", "boss")], "nodes.0.name"),
    ],
    ids=["empty", "eleven", "blank-name", "long-name", "duplicate", "bad-approver", "control"],
)
def test_a_bad_flow_is_refused_naming_the_node_and_the_old_flow_stays(
    session, company, clock, nodes, field
):
    with pytest.raises(Invalid) as refused:
        orders.set_flow(session, actor=Actor.of(company.boss), nodes=nodes, now=clock())
    assert refused.value.field == field
    session.rollback()
    assert orders.is_default_flow(session)


def test_only_the_boss_changes_the_flow_and_which_nodes_expedite_may_skip(session, company, clock):
    no_skipping = [NodeSpec("主管审批", "manager"), NodeSpec("仓库排期", "boss")]
    for user in (company.reps[0][0], company.managers[0], company.managers[1]):
        with pytest.raises(Forbidden) as refused:
            orders.set_flow(session, actor=Actor.of(user), nodes=no_skipping, now=clock())
        assert refused.value.message == "审批流程由老板设置，主管和销售只能查看"
    session.rollback()
    assert orders.is_default_flow(session)
    assert not session.scalars(select(AuditEntry).where(AuditEntry.entity == "approval_flow")).all()


def test_editing_the_flow_leaves_orders_under_way_alone(session, company, customer, clock):
    order = _order(session, company, customer, clock)
    orders.set_flow(
        session, actor=Actor.of(company.boss), nodes=[NodeSpec("总经理审批", "boss")], now=clock()
    )
    session.commit()
    assert [name for name, _ in _steps(session, order.id)] == ["主管审批", "财务审核", "仓库排期"]
    later = _order(session, company, customer, clock, number="SO-2")
    assert _steps(session, later.id) == [("总经理审批", "pending")]


# --- creating orders ---------------------------------------------------------------------------


def test_create_normalises_the_number_and_asks_the_first_steps_approver_with_a_card(
    runtime, session, company, customer, clock, fake_wecom
):
    order = _order(session, company, customer, clock)
    assert (order.number, str(order.amount), order.status) == (
        "SO-20260302-001",
        "128000.50",
        "pending",
    )
    assert order.created_by == company.reps[0][0].id

    (message,) = _delivered(runtime, fake_wecom, session)
    assert message["touser"] == [company.managers[0].wecom_userid]
    card = message["template_card"]
    step = session.scalars(select(OrderStep).where(OrderStep.order_id == order.id)).first()
    assert card["card_type"] == "button_interaction"
    assert card["task_id"] == f"order-{order.id}-step-{step.id}-u{company.managers[0].id}"
    (queued,) = session.scalars(
        select(OutboxMessage).where(OutboxMessage.msgtype == "template_card")
    )
    assert queued.content["subject"] == {"order_id": order.id, "step_id": step.id}
    assert [(b["key"], b["text"]) for b in card["button_list"]] == [
        ("approve", "同意"),
        ("reject", "驳回"),
    ]
    assert card["main_title"]["title"] == "订单待审批：SO-20260302-001"
    lines = {line["keyname"]: line["value"] for line in card["horizontal_content_list"]}
    assert lines == {"客户": "长沙恒大工地", "金额": "¥128,000.50", "审批节点": "主管审批"}


@pytest.mark.parametrize(
    ("number", "amount", "error", "field"),
    [
        ("SO 1", "10", Invalid, "number"),
        ("-SO1", "10", Invalid, "number"),
        ("S" * 33, "10", Invalid, "number"),
        ("  ", "10", Invalid, "number"),
        ("SO-1", "0", Invalid, "amount"),
        ("SO-1", "0.001", Invalid, "amount"),
        ("SO-1", "-5", Invalid, "amount"),
        ("SO-1", "1e12", Invalid, "amount"),
        ("SO-1", "abc", Invalid, "amount"),
        ("SO-1", "NaN", Invalid, "amount"),
    ],
)
def test_bad_numbers_and_amounts_are_refused(
    session, company, customer, clock, number, amount, error, field
):
    with pytest.raises(error) as refused:
        _order(session, company, customer, clock, number=number, amount=amount)
    assert refused.value.field == field


def test_a_duplicate_number_is_a_conflict_whatever_its_case(session, company, customer, clock):
    _order(session, company, customer, clock, number="SO-7")
    with pytest.raises(Conflict) as refused:
        _order(session, company, customer, clock, number=" so-7 ")
    assert refused.value.code == "duplicate_number"


def test_an_order_for_a_customer_out_of_scope_is_not_found(session, company, customer, clock):
    with pytest.raises(NotFound):
        orders.create_order(
            session,
            actor=Actor.of(company.reps[0][1]),
            number="SO-1",
            customer_id=customer.id,
            amount=10,
            now=clock(),
        )
    assert session.scalar(select(Order.id)) is None


# --- deciding ----------------------------------------------------------------------------------


def test_approvals_move_step_by_step_and_tell_each_steps_approvers_then_the_creator(
    runtime, session, company, customer, clock, fake_wecom
):
    order = _order(session, company, customer, clock)
    manager, boss, rep = company.managers[0], company.boss, company.reps[0][0]
    _delivered(runtime, fake_wecom, session)

    _decide(session, manager, order, comment="价格合理", clock=clock)
    assert _steps(session, order.id) == [
        ("主管审批", "approved"),
        ("财务审核", "pending"),
        ("仓库排期", "pending"),
    ]
    finance = _delivered(runtime, fake_wecom, session)[-1]
    assert finance["touser"] == [boss.wecom_userid]
    assert "财务审核" in finance["template_card"]["sub_title_text"]

    _decide(session, boss, order, clock=clock)
    _decide(session, boss, order, clock=clock)
    session.expire_all()
    done = session.get(Order, order.id)
    assert (done.status, done.decided_at) == ("approved", clock())
    messages = _delivered(runtime, fake_wecom, session)
    assert [m["msgtype"] for m in messages] == ["template_card"] * 3 + ["textcard"]
    assert messages[-1]["touser"] == [rep.wecom_userid]
    assert messages[-1]["textcard"]["title"] == "订单已通过：SO-20260302-001"
    first = session.scalars(select(OrderStep).where(OrderStep.order_id == order.id)).first()
    assert (first.decided_by, first.comment) == (manager.id, "价格合理")
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.entity == "order").order_by(AuditEntry.id)
    ).all()
    assert actions == ["create", "approve", "approve", "approve"]


def test_only_the_current_steps_approvers_decide(session, company, customer, clock):
    order = _order(session, company, customer, clock)
    rep, other_manager, boss = company.reps[0][0], company.managers[1], company.boss
    with pytest.raises(Forbidden) as refused:
        _decide(session, rep, order, clock=clock)
    assert "主管审批" in refused.value.message
    with pytest.raises(NotFound):
        _decide(session, other_manager, order, clock=clock)
    with pytest.raises(Forbidden):  # the team has a manager: the step is theirs
        _decide(session, boss, order, clock=clock)
    session.rollback()
    assert _steps(session, order.id)[0] == ("主管审批", "pending")


def test_a_step_seen_before_someone_decided_it_is_stale_not_the_next_one(
    session, company, customer, clock
):
    order = _order(session, company, customer, clock)
    _decide(session, company.managers[0], order, clock=clock)
    _decide(session, company.boss, order, clock=clock)
    seen = session.scalars(
        select(OrderStep).where(OrderStep.order_id == order.id, OrderStep.name == "财务审核")
    ).one()
    # The boss double-clicks: the second click names 财务审核, which must not approve 仓库排期.
    with pytest.raises(Conflict) as stale:
        _decide(session, company.boss, order, clock=clock, step_id=seen.id)
    assert stale.value.code == "stale_step"
    assert "财务审核" in stale.value.message and "仓库排期" in stale.value.message
    session.rollback()
    assert _steps(session, order.id)[2] == ("仓库排期", "pending")


def test_the_boss_decides_a_manager_step_when_the_team_has_no_active_manager(
    runtime, session, company, customer, clock, fake_wecom
):
    company.managers[0].is_active = False
    session.commit()
    order = _order(session, company, customer, clock)
    assert _delivered(runtime, fake_wecom, session)[0]["touser"] == [company.boss.wecom_userid]
    _decide(session, company.boss, order, clock=clock)
    assert _steps(session, order.id)[0] == ("主管审批", "approved")


def test_a_rejection_needs_a_reason_closes_the_order_and_tells_the_creator(
    runtime, session, company, customer, clock, fake_wecom
):
    order = _order(session, company, customer, clock)
    with pytest.raises(Invalid) as missing:
        _decide(session, company.managers[0], order, approve=False, comment="  ", clock=clock)
    assert missing.value.field == "comment"
    session.rollback()

    _decide(session, company.managers[0], order, approve=False, comment="低于底价", clock=clock)
    session.expire_all()
    assert session.get(Order, order.id).status == "rejected"
    told = _delivered(runtime, fake_wecom, session)[-1]
    assert told["touser"] == [company.reps[0][0].wecom_userid]
    assert "低于底价" in told["textcard"]["description"]
    assert "主管0" in told["textcard"]["description"]

    with pytest.raises(Conflict) as closed:
        _decide(session, company.boss, order, clock=clock)
    assert closed.value.code == "order_closed"


def test_a_comment_longer_than_the_audit_trail_keeps_is_refused(session, company, customer, clock):
    order = _order(session, company, customer, clock)
    with pytest.raises(Invalid) as refused:
        _decide(session, company.managers[0], order, comment="好" * 256, clock=clock)
    assert refused.value.field == "comment"
    session.rollback()
    _decide(session, company.managers[0], order, approve=False, comment="好" * 255, clock=clock)
    session.expire_all()
    assert session.get(Order, order.id).status == "rejected"


# --- #加急# ------------------------------------------------------------------------------------


def test_a_manager_expedites_skipping_the_skippable_steps_and_the_downstream_approver_hears_why(
    runtime, session, company, customer, clock, fake_wecom
):
    order = _order(session, company, customer, clock, number="SO-20260302-009")
    _delivered(runtime, fake_wecom, session)
    manager, boss = company.managers[0], company.boss
    clock.advance(hours=2)

    result = orders.expedite(
        session,
        actor=Actor.of(manager),
        number="so-20260302-009",
        reason=" 客户工地周五开工 ",
        now=clock(),
    )
    session.commit()

    assert (result.skipped, result.remaining, result.notified) == (
        ["主管审批", "财务审核"],
        ["仓库排期"],
        [boss.name],
    )
    session.expire_all()
    fresh = session.get(Order, order.id)
    assert (fresh.expedited_by, fresh.expedited_at, fresh.expedite_reason) == (
        manager.id,
        clock(),
        "客户工地周五开工",
    )
    assert fresh.status == "pending"
    skipped = session.scalars(
        select(OrderStep).where(OrderStep.order_id == order.id, OrderStep.status == "skipped")
    ).all()
    assert {(s.name, s.decided_by, s.comment) for s in skipped} == {
        ("主管审批", manager.id, "客户工地周五开工"),
        ("财务审核", manager.id, "客户工地周五开工"),
    }
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "expedite")).one()
    assert (entry.actor_id, entry.reason) == (manager.id, "客户工地周五开工")

    notice, card = _delivered(runtime, fake_wecom, session)[-2:]
    assert notice["touser"] == card["touser"] == [boss.wecom_userid]
    assert notice["textcard"]["title"] == "【加急】订单 SO-20260302-009 请尽快审批"
    description = notice["textcard"]["description"]
    assert "主管0加急了订单" in description and "客户工地周五开工" in description
    assert card["template_card"]["main_title"]["title"].startswith("【加急】")
    assert "仓库排期" in card["template_card"]["sub_title_text"]

    _decide(session, boss, order, clock=clock)
    session.expire_all()
    assert session.get(Order, order.id).status == "approved"


def test_expedite_is_refused_to_reps_out_of_scope_without_a_reason_and_twice(
    session, company, customer, clock
):
    order = _order(session, company, customer, clock, number="SO-9")
    outbox_before = len(session.scalars(select(OutboxMessage.id)).all())

    def expedite(user, reason="客户工地周五开工", number="SO-9"):
        result = orders.expedite(
            session, actor=Actor.of(user), number=number, reason=reason, now=clock()
        )
        session.commit()
        return result

    with pytest.raises(Forbidden) as rep_refused:
        expedite(company.reps[0][0])
    assert rep_refused.value.message == "只有销售主管或老板可以加急订单"
    with pytest.raises(NotFound) as hidden:
        expedite(company.managers[1])
    assert hidden.value.message == "订单不存在或无权访问"
    with pytest.raises(NotFound):
        expedite(company.boss, number="SO-404")
    with pytest.raises(Invalid) as no_reason:
        expedite(company.boss, reason="  ")
    assert no_reason.value.field == "reason"
    session.rollback()
    assert _steps(session, order.id)[0] == ("主管审批", "pending")
    assert len(session.scalars(select(OutboxMessage.id)).all()) == outbox_before

    expedite(company.boss)
    with pytest.raises(Conflict) as twice:
        expedite(company.managers[0])
    assert twice.value.code == "already_expedited"


def test_expedite_of_a_decided_order_is_a_conflict(session, company, customer, clock):
    order = _order(session, company, customer, clock, number="SO-9")
    _decide(session, company.managers[0], order, approve=False, comment="重复下单", clock=clock)
    with pytest.raises(Conflict) as closed:
        orders.expedite(
            session, actor=Actor.of(company.boss), number="SO-9", reason="急", now=clock()
        )
    assert closed.value.code == "order_closed"


def test_expedite_that_leaves_no_step_approves_the_order_and_tells_the_creator(
    runtime, session, company, customer, clock, fake_wecom
):
    orders.set_flow(
        session,
        actor=Actor.of(company.boss),
        nodes=[NodeSpec("主管审批", "manager", True), NodeSpec("财务审核", "boss", True)],
        now=clock(),
    )
    order = _order(session, company, customer, clock, number="SO-9")
    result = orders.expedite(
        session, actor=Actor.of(company.boss), number="SO-9", reason="老客户加单", now=clock()
    )
    session.commit()
    assert result.is_approved and result.remaining == [] and result.notified == []
    session.expire_all()
    assert session.get(Order, order.id).decided_at == clock()
    assert _delivered(runtime, fake_wecom, session)[-1]["touser"] == [
        company.reps[0][0].wecom_userid
    ]


def test_the_boss_expediting_is_not_told_about_it_but_still_gets_the_card_to_decide(
    runtime, session, company, customer, clock, fake_wecom
):
    _order(session, company, customer, clock, number="SO-9")
    result = orders.expedite(
        session, actor=Actor.of(company.boss), number="SO-9", reason="展会样品急用", now=clock()
    )
    session.commit()
    assert result.notified == []
    last = _delivered(runtime, fake_wecom, session)[-1]
    assert (last["msgtype"], last["touser"]) == ("template_card", [company.boss.wecom_userid])


# --- the expedite report -----------------------------------------------------------------------


def test_the_expedite_report_counts_by_person_reason_and_skipped_step_within_scope(
    session, company, clock
):
    customers = [make_customer(session, team[0], clock()) for team in company.reps]
    reasons = [
        (0, company.managers[0], "客户工地周五开工"),
        (0, company.managers[0], "客户工地周五开工"),
        (0, company.boss, "月底冲量"),
        (1, company.managers[1], "客户工地周五开工"),
    ]
    for index, (team, user, reason) in enumerate(reasons):
        number = f"SO-{index}"
        orders.create_order(
            session,
            actor=Actor.of(company.boss),
            number=number,
            customer_id=customers[team].id,
            amount=1000,
            now=clock(),
        )
        orders.expedite(session, actor=Actor.of(user), number=number, reason=reason, now=clock())
    orders.create_order(
        session,
        actor=Actor.of(company.boss),
        number="SO-N",
        customer_id=customers[0].id,
        amount=1,
        now=clock(),
    )
    orders.create_order(  # created the day before the period: outside it
        session,
        actor=Actor.of(company.boss),
        number="SO-OLD",
        customer_id=customers[0].id,
        amount=1,
        now=clock() - timedelta(days=1),
    )
    session.commit()
    today = date(2026, 3, 2)  # the clock's business day (09:30 in Beijing)

    report = orders.expedite_report(session, actor=Actor.of(company.boss), since=today, until=today)
    assert (report.orders_created, report.expedited) == (5, 4)
    assert [(p.name, p.count) for p in report.by_person] == [
        ("主管0", 2),
        ("主管1", 1),  # ties in the order people joined
        ("王总", 1),
    ]
    assert [(r.reason, r.count) for r in report.by_reason] == [
        ("客户工地周五开工", 3),
        ("月底冲量", 1),
    ]
    assert [(s.name, s.count) for s in report.skipped_steps] == [("主管审批", 4), ("财务审核", 4)]

    team = orders.expedite_report(
        session, actor=Actor.of(company.managers[1]), since=today, until=today
    )
    assert (team.orders_created, team.expedited) == (1, 1)
    assert [(p.name, p.count) for p in team.by_person] == [("主管1", 1)]

    later = orders.expedite_report(
        session,
        actor=Actor.of(company.boss),
        since=today + timedelta(days=1),
        until=today + timedelta(days=9),
    )
    assert (later.orders_created, later.expedited, later.by_reason) == (0, 0, [])
    rep = orders.expedite_report(
        session, actor=Actor.of(company.reps[1][1]), since=today, until=today
    )
    assert rep.expedited == 0


def test_the_expedite_report_refuses_a_reversed_or_absurd_period(session, company):
    boss = Actor.of(company.boss)
    with pytest.raises(Invalid):
        orders.expedite_report(session, actor=boss, since=date(2026, 3, 2), until=date(2026, 3, 1))
    with pytest.raises(Invalid):
        orders.expedite_report(session, actor=boss, since=date(1, 1, 1), until=date(9999, 12, 31))


# --- the demo ----------------------------------------------------------------------------------


def test_the_demo_seeds_orders_in_every_state_through_the_services(session, clock):
    from wecrm.demo.seeding import seed_company

    company = seed_company(session, now=clock(), customer_count=300)
    session.commit()
    seeded = session.scalars(select(Order)).all()
    assert company.order_count == len(seeded) >= 25
    assert {o.status for o in seeded} == {"pending", "approved", "rejected"}
    expedited = [o for o in seeded if o.expedited_at]
    assert len(expedited) >= 3 and all(o.expedite_reason for o in expedited)
    teams = session.scalars(
        select(Customer.team_id).join(Order, Order.customer_id == Customer.id).distinct()
    ).all()
    assert len(teams) == len(company.teams)
    assert not orders.is_default_flow(session)
    report = orders.expedite_report(
        session,
        actor=Actor.of(company.boss),
        since=clock().date() - timedelta(days=90),
        until=clock().date(),
    )
    assert report.expedited == len(expedited)
