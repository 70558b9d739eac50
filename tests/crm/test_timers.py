"""Timers: the seed's 7-day reminder and 30-day release, grade-aware ladders, idempotent sweeps."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from crm import followups
from crm.actors import Actor
from crm.rules import publisher, timers
from models import Customer, OutboxMessage, PoolEvent, Task, TimerFiring
from tests.factories import make_company, make_customer

REMINDER = "报价7天未跟进提醒#1"
RELEASE = "30天未跟进释放公海#1"


@pytest.fixture
def company(session):
    return make_company(session)


def _sweep(session, clock):
    result = timers.sweep(session, now=clock())
    session.commit()
    session.expire_all()
    return dict(result.fired)


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_seven_quiet_days_in_quote_remind_the_owner_and_copy_the_manager(
    company, session, runtime, clock
):
    rep, manager = company.reps[0][0], company.managers[0]
    customer = make_customer(session, rep, clock(), stage="报价", name="株洲陶瓷厂")
    make_customer(session, rep, clock(), stage="意向")  # not in 报价: no reminder

    clock.advance(days=6, hours=23)
    assert _sweep(session, clock) == {}
    clock.advance(hours=1)
    assert _sweep(session, clock) == {REMINDER: 1}

    messages = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [(m.recipient_id, m.content["title"][:4]) for m in messages] == [
        (rep.id, "客户提醒"),
        (manager.id, "【抄送】"),
    ]
    assert "「株洲陶瓷厂」报价后已 7 天没有跟进" in messages[0].content["description"]
    task = session.scalars(select(Task)).one()
    assert (task.assignee_id, task.cc_id, task.customer_id) == (rep.id, manager.id, customer.id)

    assert _sweep(session, clock) == {}  # a second sweep changes nothing
    assert (_count(session, OutboxMessage), _count(session, Task)) == (2, 1)

    # A follow-up restarts the clock; seven more quiet days remind again.
    followups.log_follow_up(
        session,
        actor=Actor.of(rep),
        customer_id=customer.id,
        method="电话",
        summary="客户说再比较一下",
        now=clock(),
        store=runtime.store,
        max_attachment_bytes=10**6,
    )
    session.commit()
    clock.advance(days=7)
    assert _sweep(session, clock) == {REMINDER: 1}
    assert _count(session, OutboxMessage) == 4


def test_thirty_quiet_days_release_open_customers_to_the_pool_once(company, session, clock):
    rep = company.reps[0][0]
    lead = make_customer(session, rep, clock(), stage="潜在")
    won = make_customer(session, rep, clock(), stage="成交")

    clock.advance(days=30)
    assert _sweep(session, clock) == {RELEASE: 1}
    released, kept = session.get(Customer, lead.id), session.get(Customer, won.id)
    assert released.owner_id is None and released.team_id == rep.team_id
    assert released.release_reason == "30天未跟进，自动释放"
    assert kept.owner_id == rep.id
    event = session.scalars(select(PoolEvent)).one()
    assert (event.kind, event.customer_id, event.user_id) == ("release", lead.id, rep.id)

    assert _sweep(session, clock) == {}
    assert _count(session, PoolEvent) == 1


def _ladder(session, boss, clock):
    document = {
        "rules": [
            {
                "name": "报价跟进阶梯",
                "when": {"fact": "stage", "op": "==", "value": "报价"},
                "steps": [
                    {
                        "after_days": 3,
                        "after_days_by_grade": {"A": 1},
                        "do": [{"action": "notify", "to": "owner", "text": "请跟进{customer}"}],
                    },
                    {
                        "after_days": 5,
                        "after_days_by_grade": {"A": 2},
                        "do": [{"action": "notify", "to": "manager", "text": "{owner}未跟进"}],
                    },
                    {"after_days": 7, "do": [{"action": "reassign", "strategy": "least_loaded"}]},
                ],
            },
            {
                "name": "释放",
                "exempt_grades": ["A"],
                "steps": [
                    {"after_days": 10, "do": [{"action": "release_to_pool", "reason": "10天"}]}
                ],
            },
        ]
    }
    draft = publisher.create_draft(
        session, actor=Actor.of(boss), kind="timers", document=document, note=None, now=clock()
    )
    publisher.publish(session, actor=Actor.of(boss), draft_id=draft.id, reason="阶梯", now=clock())
    session.commit()


def test_an_escalation_ladder_runs_sooner_for_a_customers_and_spares_them_the_pool(
    company, session, clock
):
    rep, colleague = company.reps[0]
    manager = company.managers[0]
    _ladder(session, company.boss, clock)
    hot = make_customer(session, rep, clock(), stage="报价", inquiry_count=3, has_budget=True)
    cold = make_customer(session, rep, clock(), stage="报价")
    assert (hot.grade, cold.grade) == ("A", "C")

    clock.advance(days=1)
    assert _sweep(session, clock) == {"报价跟进阶梯#1": 1}
    clock.advance(days=1)
    assert _sweep(session, clock) == {"报价跟进阶梯#2": 1}
    clock.advance(days=1)
    assert _sweep(session, clock) == {"报价跟进阶梯#1": 1}
    recipients = session.scalars(select(OutboxMessage.recipient_id).order_by(OutboxMessage.id))
    assert list(recipients) == [rep.id, manager.id, rep.id]

    clock.advance(days=4)  # day 7: both are handed to the other rep of the team
    assert _sweep(session, clock) == {"报价跟进阶梯#2": 1, "报价跟进阶梯#3": 2}
    assert {session.get(Customer, c.id).owner_id for c in (hot, cold)} == {colleague.id}

    clock.advance(days=3)  # day 10: the C customer goes to the pool, the A customer stays
    assert _sweep(session, clock) == {"释放#1": 1}
    assert session.get(Customer, hot.id).owner_id == colleague.id
    assert session.get(Customer, cold.id).owner_id is None
    assert _sweep(session, clock) == {}


def test_two_sweeps_at_once_act_once(company, runtime, session, clock):
    rep = company.reps[0][0]
    for _ in range(5):
        make_customer(session, rep, clock(), stage="报价")
    clock.advance(days=7)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def sweep_in_own_session():
        try:
            with runtime.db.session(lock_for_write=True) as own:
                barrier.wait()
                results.append(timers.sweep(own, now=clock()).total)
                own.commit()
        except Exception as error:  # surfaced below; a thread's exception would vanish
            errors.append(error)

    threads = [threading.Thread(target=sweep_in_own_session) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [0, 5]
    assert _count(session, TimerFiring) == 5
    assert _count(session, OutboxMessage) == 10  # owner + manager's copy, once per customer
    assert _count(session, Task) == 5


def test_a_teams_own_timers_sweep_its_customers_and_the_companys_sweep_the_rest(
    company, session, clock
):
    # Team 0's manager releases after 10 quiet days; everyone else keeps the company's 30.
    document = {
        "rules": [
            {
                "name": "一组10天释放",
                "steps": [
                    {"after_days": 10, "do": [{"action": "release_to_pool", "reason": "10天"}]}
                ],
            }
        ]
    }
    manager = Actor.of(company.managers[0])
    draft = publisher.create_draft(
        session, actor=manager, kind="timers", document=document, note=None, now=clock()
    )
    publisher.publish(session, actor=manager, draft_id=draft.id, reason="一组", now=clock())
    session.commit()
    ours = make_customer(session, company.reps[0][0], clock())
    theirs = make_customer(session, company.reps[1][0], clock())

    clock.advance(days=10)
    assert _sweep(session, clock) == {"一组10天释放#1": 1}
    assert session.get(Customer, ours.id).owner_id is None
    assert session.get(Customer, theirs.id).owner_id == company.reps[1][0].id
    clock.advance(days=20)
    assert _sweep(session, clock) == {RELEASE: 1}  # the company's ladder, for team 1 only
    assert session.get(Customer, theirs.id).owner_id is None
