"""Clicks on an order's approval card: the task id names the step, crm decides, the bot replies.

Cards reach the fake WeCom through the real outbox worker, so the task ids clicked here are
the ones WeCom would echo back."""

from __future__ import annotations

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from bot import cards
from crm import orders
from crm.actors import Actor
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from crm.orders import NodeSpec
from models import OrderStep
from tests.factories import make_company, make_customer
from workers import queues


@pytest.fixture
def company(session):
    return make_company(session)


@pytest.fixture
def customer(session, company, clock):
    return make_customer(session, company.reps[0][0], clock(), name="长沙恒大工地")


def _order(session, company, customer, clock, number="SO-20260302-001"):
    order = orders.create_order(
        session,
        actor=Actor.of(company.reps[0][0]),
        number=number,
        customer_id=customer.id,
        amount="128000.5",
        now=clock(),
    )
    session.commit()
    return order


def _card_of(runtime, fake_wecom, session, user) -> dict:
    """Run the outbox worker; the latest card the fake WeCom holds for `user`."""
    session.rollback()  # end the read snapshot: an older SQLite snapshot could not write after
    SimpleWorker([queues.NOTIFICATIONS], connection=runtime.redis).work(burst=True)
    return next(
        m["template_card"]
        for m in reversed(fake_wecom.messages)
        if m["msgtype"] == "template_card" and m["touser"] == [user.wecom_userid]
    )


def test_a_card_click_approves_the_step_it_was_sent_for_and_a_second_click_is_stale(
    runtime, session, company, customer, clock, fake_wecom
):
    order = _order(session, company, customer, clock)
    manager = company.managers[0]
    card = _card_of(runtime, fake_wecom, session, manager)
    approve_key = card["button_list"][0]["key"]

    def click(user, task_id=card["task_id"], key=approve_key):
        reply = cards.decide(session, actor=Actor.of(user), task_id=task_id, key=key, now=clock())
        session.commit()
        return reply

    with pytest.raises(Forbidden):
        click(company.boss)
    session.rollback()
    assert click(manager) == "已同意订单 SO-20260302-001 的「主管审批」，已转「财务审核」。"
    with pytest.raises(Conflict) as stale:
        click(manager)
    assert stale.value.message == "订单 SO-20260302-001 的「主管审批」已同意，当前在「财务审核」"

    boss_card = _card_of(runtime, fake_wecom, session, company.boss)
    rejected = click(company.boss, task_id=boss_card["task_id"], key="reject")
    assert rejected == "已驳回订单 SO-20260302-001（财务审核）。"
    session.expire_all()
    step = session.scalars(
        select(OrderStep).where(OrderStep.order_id == order.id, OrderStep.name == "财务审核")
    ).one()
    assert (step.status, step.comment) == ("rejected", cards.REJECT_COMMENT)
    with pytest.raises(Conflict) as closed:
        click(company.boss, task_id=boss_card["task_id"])
    assert closed.value.message == "订单 SO-20260302-001 已驳回，无需再审批"


def test_the_last_card_click_approves_the_order(session, company, customer, clock):
    orders.set_flow(
        session, actor=Actor.of(company.boss), nodes=[NodeSpec("财务审核", "boss")], now=clock()
    )
    order = _order(session, company, customer, clock)
    step = session.scalars(select(OrderStep).where(OrderStep.order_id == order.id)).one()
    reply = cards.decide(
        session,
        actor=Actor.of(company.boss),
        task_id=f"order-{order.id}-step-{step.id}-u{company.boss.id}",
        key="approve",
        now=clock(),
    )
    assert reply == "已同意「财务审核」，订单 SO-20260302-001 审批通过。"


@pytest.mark.parametrize(
    ("task_id", "key", "error"),
    [
        ("other-task", "approve", Invalid),
        ("order-1-u1", "approve", Invalid),  # ours in form, but not an order step
        ("order-1-step-1-u1", "maybe", Invalid),
        ("order-2000000000-step-1-u1", "approve", NotFound),
    ],
)
def test_cards_and_buttons_that_are_not_ours_are_refused_in_chinese(
    session, company, clock, task_id, key, error
):
    with pytest.raises(error) as refused:
        cards.decide(session, actor=Actor.of(company.boss), task_id=task_id, key=key, now=clock())
    assert any("\u4e00" <= ch <= "\u9fff" for ch in refused.value.message)


def test_a_card_of_another_orders_step_is_not_found(session, company, customer, clock):
    first = _order(session, company, customer, clock, number="SO-1")
    second = _order(session, company, customer, clock, number="SO-2")
    foreign = session.scalars(select(OrderStep).where(OrderStep.order_id == second.id)).first()
    with pytest.raises(NotFound):
        cards.decide(
            session,
            actor=Actor.of(company.managers[0]),
            task_id=f"order-{first.id}-step-{foreign.id}-u1",
            key="approve",
            now=clock(),
        )
