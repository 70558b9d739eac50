"""Giving a customer to a rep wherever the customer is now: from the pool, or from its owner.

A manager says "this customer to that rep" without checking where the customer sits; the two
moves behind it keep their own rules and records (crm/pool.py's assign, crm/customer_changes.py's
reassign).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import pool
from crm.actors import Actor
from crm.customer_changes import reassign
from crm.errors import Forbidden, NotFound
from crm.lookup import Reach, in_reach
from models import Customer


class Assignment(StrEnum):
    """What giving a customer to a rep did."""

    FROM_POOL = "from_pool"
    REASSIGNED = "reassigned"
    ALREADY_OWNER = "already_owner"  # nothing to do


def assign_customer(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    owner_id: int,
    now: datetime,
    reason: str,
) -> Assignment:
    """Give a customer the actor may see or assign to rep `owner_id` (managers and the boss)."""
    if not actor.can_manage:
        raise Forbidden("只有主管或老板可以分配客户")
    customer = session.scalar(
        select(Customer).where(Customer.id == customer_id, in_reach(actor, Reach.BOOK_AND_POOL))
    )
    if customer is None:
        raise NotFound("客户")
    if customer.owner_id == owner_id:
        return Assignment.ALREADY_OWNER
    if customer.owner_id is None:
        pool.assign(
            session, actor=actor, customer_id=customer.id, owner_id=owner_id, now=now, reason=reason
        )
        return Assignment.FROM_POOL
    reassign(
        session, actor=actor, customer_id=customer.id, owner_id=owner_id, now=now, reason=reason
    )
    return Assignment.REASSIGNED
