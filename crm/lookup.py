"""Finding the one customer or rep a member means by what they typed: an id, a phone, a name.

The bot's commands name customers and reps in free text (`#跟进# 佛山陶瓷 …`, `#分配# 张三 李四`).
Each look-up here is scoped like every other read, so a customer out of reach is not found,
the same as one that does not exist. The caller decides what none or several candidates mean.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ColumnElement, Select, Text, func, literal, or_, select
from sqlalchemy.orm import Session, joinedload

from crm.actors import Actor, customer_scope, user_scope
from crm.customers import name_or_company_contains
from crm.errors import Invalid
from crm.phones import normalise_phone
from crm.pool import pool_scope
from models import Customer, User
from models.users import Role

MAX_ID_DIGITS = 9  # ids are 32-bit; a longer run of digits is a phone


class Reach(StrEnum):
    """Which customers a look-up searches."""

    BOOK = "book"  # the customers the actor may see
    POOL = "pool"  # the pool customers the actor may take
    BOOK_AND_POOL = "book_and_pool"


def customers_named(
    session: Session, *, actor: Actor, text: str, reach: Reach, limit: int
) -> list[Customer]:
    """Customers in reach that `text` names, at most `limit`, the most exact kind of match first:
    an id, a phone, an exact name (any case), else a part of a name or company."""
    query = select(Customer).where(in_reach(actor, reach)).options(joinedload(Customer.owner))
    text = text.strip()
    if not text:
        return []
    if text.isdigit() and len(text) <= MAX_ID_DIGITS:
        return _found(session, query.where(Customer.id == int(text)), limit)
    phone = _phone(text)
    if phone is not None:
        return _found(session, query.where(Customer.phone == phone), limit)
    exact = _found(session, query.where(func.lower(Customer.name) == text.lower()), limit)
    if exact:
        return exact
    return _found(session, query.where(name_or_company_contains(text)), limit)


def customers_named_at_start(
    session: Session, *, actor: Actor, text: str, reach: Reach, limit: int
) -> list[Customer]:
    """Customers in reach whose name (any case) begins `text`, the longest such name only, at
    most `limit`: speech runs a name into what follows ("张三电话已经报价了")."""
    text = text.strip().lower()
    if not text:
        return []
    name = func.lower(Customer.name)
    found = _found(
        session,
        select(Customer)
        .where(
            in_reach(actor, reach),
            func.length(name) > 0,
            func.substr(literal(text, Text), 1, func.length(name)) == name,
        )
        .options(joinedload(Customer.owner))
        .order_by(func.length(name).desc()),
        limit,
    )
    return [c for c in found if len(c.name) == len(found[0].name)]


def reps_named(session: Session, *, actor: Actor, text: str, limit: int) -> list[User]:
    """Active reps the actor manages whose name or WeCom userid is `text`, at most `limit`."""
    text = text.strip()
    query = select(User).where(
        user_scope(actor),
        User.role == Role.REP,
        User.is_active.is_(True),
        or_(User.name == text, User.wecom_userid == text),
    )
    return list(session.scalars(query.order_by(User.id).limit(limit)))


def in_reach(actor: Actor, reach: Reach) -> ColumnElement[bool]:
    """The WHERE clause of the customers `reach` covers for the actor."""
    if reach is Reach.BOOK:
        return customer_scope(actor)
    if reach is Reach.POOL:
        return pool_scope(actor)
    return or_(customer_scope(actor), pool_scope(actor))


def _phone(text: str) -> str | None:
    """`text` as a normalised phone, or None when it is not one."""
    try:
        return normalise_phone(text)
    except Invalid:
        return None


def _found(session: Session, query: Select[Customer], limit: int) -> list[Customer]:
    return list(session.scalars(query.order_by(Customer.id).limit(limit)))
