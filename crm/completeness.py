"""Data completeness (资料完整度): the share of required fields a customer has filled."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm.actors import Actor, customer_scope
from crm.fields import CATALOGUE
from models import Customer, CustomField, Team, User

# Marked in the field catalogue: the seed's five key nodes (来源, 首次接触方式, 需求匹配度, ...)
# plus the basics a rep must know.
REQUIRED_BASE_FIELDS = tuple(field.key for field in CATALOGUE if field.is_required)
RECOMPUTE_BATCH_SIZE = 2000


def missing_fields(customer: Customer, required_custom_keys: Iterable[str]) -> list[str]:
    """The required fields still empty: base field names, then `custom_values.<key>`."""
    missing = [name for name in REQUIRED_BASE_FIELDS if not _is_filled(getattr(customer, name))]
    values: dict[str, Any] = customer.custom_values or {}
    missing += [f"custom_values.{k}" for k in required_custom_keys if not _is_filled(values.get(k))]
    return missing


def score(customer: Customer, required_custom_keys: Iterable[str]) -> int:
    """Percent of required base and custom fields that hold a value."""
    keys = list(required_custom_keys)
    total = len(REQUIRED_BASE_FIELDS) + len(keys)
    return round(100 * (total - len(missing_fields(customer, keys))) / total)


@dataclass
class CompletenessRow:
    id: int
    name: str
    customers: int
    average: float


@dataclass
class CompletenessSummary:
    overall: float
    customers: int
    by_rep: list[CompletenessRow]
    by_team: list[CompletenessRow]


def summary(session: Session, *, actor: Actor) -> CompletenessSummary:
    """Average completeness per rep and per team, within the actor's scope (数据质量排行)."""
    scope = customer_scope(actor)
    count, average = session.execute(
        select(func.count(), func.avg(Customer.completeness)).where(scope)
    ).one()
    by_rep = session.execute(
        select(User.id, User.name, func.count(), func.avg(Customer.completeness))
        .join(User, User.id == Customer.owner_id)
        .where(scope)
        .group_by(User.id, User.name)
        .order_by(func.avg(Customer.completeness).desc(), User.id)
    ).all()
    by_team = session.execute(
        select(Team.id, Team.name, func.count(), func.avg(Customer.completeness))
        .join(Team, Team.id == Customer.team_id)
        .where(scope)
        .group_by(Team.id, Team.name)
        .order_by(func.avg(Customer.completeness).desc(), Team.id)
    ).all()
    return CompletenessSummary(
        overall=round(float(average or 0), 1),
        customers=count,
        by_rep=[CompletenessRow(i, n, c, round(float(a), 1)) for i, n, c, a in by_rep],
        by_team=[CompletenessRow(i, n, c, round(float(a), 1)) for i, n, c, a in by_team],
    )


def required_custom_keys(session: Session) -> list[str]:
    """Keys of the active required custom fields, in the order they were added."""
    return list(
        session.scalars(
            select(CustomField.key)
            .where(CustomField.is_active, CustomField.is_required)
            .order_by(CustomField.id)
        )
    )


def recompute_all(session: Session) -> int:
    """Re-score every customer after the required fields changed; returns how many moved."""
    keys = required_custom_keys(session)
    changed = 0
    last_id = 0
    while True:
        batch = list(
            session.scalars(
                select(Customer)
                .where(Customer.id > last_id)
                .order_by(Customer.id)
                .limit(RECOMPUTE_BATCH_SIZE)
            )
        )
        if not batch:
            return changed
        updates = []
        for customer in batch:
            new_score = score(customer, keys)
            if new_score != customer.completeness:
                updates.append({"id": customer.id, "completeness": new_score})
        if updates:
            session.execute(update(Customer), updates)
            changed += len(updates)
        last_id = batch[-1].id
        session.expunge_all()


def _is_filled(value: object) -> bool:
    return value is not None and value != ""
