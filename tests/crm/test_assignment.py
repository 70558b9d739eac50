"""Giving a customer to a rep takes it from the pool or from its owner, whichever holds it."""

import pytest
from sqlalchemy import select

from crm import pool
from crm.actors import Actor
from crm.assignment import Assignment, assign_customer
from crm.errors import Forbidden, NotFound
from models import AuditEntry, PoolEvent
from tests.factories import make_company, make_customer


def test_a_pool_customer_is_assigned_and_an_owned_one_reassigned(session, clock):
    company = make_company(session)
    manager = Actor.of(company.managers[0])
    first, second = company.reps[0]
    pooled = make_customer(session, first, clock())
    pool.release(session, customer=pooled, reason="测试释放", now=clock())
    owned = make_customer(session, first, clock())

    def give(customer, rep):
        return assign_customer(
            session,
            actor=manager,
            customer_id=customer.id,
            owner_id=rep.id,
            now=clock(),
            reason="测试分配",
        )

    assert give(pooled, second) is Assignment.FROM_POOL
    assert give(owned, second) is Assignment.REASSIGNED
    assert give(owned, second) is Assignment.ALREADY_OWNER
    assert (pooled.owner_id, owned.owner_id) == (second.id, second.id)
    events = session.scalars(select(PoolEvent.kind).where(PoolEvent.customer_id == pooled.id))
    assert "assign" in set(events)
    actions = session.scalars(
        select(AuditEntry.action).where(
            AuditEntry.entity == "customer", AuditEntry.entity_id == owned.id
        )
    )
    assert "reassign" in set(actions)


def test_only_a_manager_in_reach_assigns(session, clock):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock())
    for actor, error in ((Actor.of(rep), Forbidden), (Actor.of(company.managers[1]), NotFound)):
        with pytest.raises(error):
            assign_customer(
                session,
                actor=actor,
                customer_id=customer.id,
                owner_id=rep.id,
                now=clock(),
                reason="测试分配",
            )
