"""Timers: "no follow-up for N days" ladders, swept periodically.

A step fires once per customer per run of its clock (the anchor: the last follow-up, or the
moment the stage was entered). The firing row is inserted before the step acts and its unique
key refuses a second one, so a repeated sweep, or two workers at once, act once. A follow-up
moves the anchor and the ladder starts over.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm.errors import DomainError
from crm.rules import actions, conditions, documents, grading
from crm.rules.documents import TimerRule, TimerStep
from crm.rules.facts import Fact, registry
from crm.rulesets import store
from models import Customer, TimerFiring

log = logging.getLogger(__name__)

SWEEP_LIMIT = 1000  # firings per call; the job calls again until a sweep comes back short
SAMPLE_SIZE = 20
PREVIEW_LIMIT = 100_000


@dataclass
class Sweep:
    fired: Counter[str] = field(default_factory=Counter)  # "rule#step" -> customers

    @property
    def total(self) -> int:
        return sum(self.fired.values())


def anchor_sql(clock: str) -> Any:
    if clock == "stage_entered":
        return Customer.stage_entered_at
    if clock == "customer_message":
        # The later of the two; a NULL message compares as unknown, so the stage wins.
        message, stage = Customer.last_customer_message_at, Customer.stage_entered_at
        return case((message > stage, message), else_=stage)
    return func.coalesce(Customer.last_follow_up_at, Customer.created_at)


def anchor_of(customer: Customer, clock: str) -> datetime:
    if clock == "stage_entered":
        return customer.stage_entered_at
    if clock == "customer_message":
        message = customer.last_customer_message_at
        stage = customer.stage_entered_at
        return message if message is not None and message > stage else stage
    return customer.last_follow_up_at or customer.created_at


def _due_sql(rule: TimerRule, step: TimerStep, now: datetime) -> ColumnElement[bool]:
    anchor = anchor_sql(rule.clock)
    due = anchor <= now - timedelta(days=step.after_days)
    if not step.after_days_by_grade:
        return due
    by_grade = [
        and_(Customer.grade == grade, anchor <= now - timedelta(days=days))
        for grade, days in step.after_days_by_grade.items()
    ]
    others = or_(Customer.grade.is_(None), Customer.grade.not_in(list(step.after_days_by_grade)))
    return or_(*by_grade, and_(others, due))


def _candidates(
    session: Session,
    rule: TimerRule,
    index: int,
    facts: dict[str, Fact],
    now: datetime,
    scope: Any,
    limit: int,
) -> list[tuple[int, datetime]]:
    """(customer id, anchor) of owned customers due for a step that has not fired for them."""
    anchor = anchor_sql(rule.clock)
    fired = exists().where(
        TimerFiring.rule == rule.name,
        TimerFiring.step == index,
        TimerFiring.customer_id == Customer.id,
        TimerFiring.anchor_at == anchor,
    )
    when = conditions.prefilter_sql(rule.when, facts, now) if rule.when else true()
    exempt = (
        or_(Customer.grade.is_(None), Customer.grade.not_in(rule.exempt_grades))
        if rule.exempt_grades
        else true()
    )
    query = (
        select(Customer.id, anchor.label("anchor"))
        .where(
            scope,
            Customer.owner_id.is_not(None),
            when,
            exempt,
            _due_sql(rule, rule.steps[index], now),
            ~fired,
        )
        .order_by(Customer.id)
        .limit(limit)
    )
    return [(row.id, row.anchor) for row in session.execute(query)]


def _still_due(
    session: Session, customer: Customer, rule: TimerRule, index: int, facts: dict, now: datetime
) -> bool:
    """The Python reading of the same decision, on the locked row (it may have just changed)."""
    if customer.owner_id is None or customer.grade in rule.exempt_grades:
        return False
    step = rule.steps[index]
    if now - anchor_of(customer, rule.clock) < timedelta(days=step.days_for(customer.grade)):
        return False
    if rule.when is None:
        return True
    return conditions.evaluate(rule.when, facts, grading.subject_of(session, customer, now))


def sweep(session: Session, *, now: datetime, limit: int = SWEEP_LIMIT) -> Sweep:
    """Fire every due timer step (at most `limit` firings); flushes, the caller commits.

    Each set in force (a team's own, the company's for everyone else) looks only at the customers
    it governs, so a customer is swept by its team's ladder or the company's, never both."""
    facts = registry(session, include_retired=True)
    result = Sweep()
    for governing in store.governing(session, "timers"):
        customers = governing.covers(Customer.team_id)
        for rule in documents.timer_rules(governing.rule_set.document):
            for index in range(len(rule.steps)):
                remaining = limit - result.total
                if remaining <= 0:
                    return result
                for customer_id, anchor in _candidates(
                    session, rule, index, facts, now, customers, remaining
                ):
                    if _fire(session, rule, index, customer_id, anchor, facts, now):
                        result.fired[f"{rule.name}#{index + 1}"] += 1
    return result


def _fire(
    session: Session,
    rule: TimerRule,
    index: int,
    customer_id: int,
    anchor: datetime,
    facts: dict,
    now: datetime,
) -> bool:
    customer = session.get(Customer, customer_id, with_for_update=True, populate_existing=True)
    if customer is None or anchor_of(customer, rule.clock) != anchor:
        return False
    if not _still_due(session, customer, rule, index, facts, now):
        return False
    try:
        with session.begin_nested():
            session.add(
                TimerFiring(
                    rule=rule.name,
                    step=index,
                    customer_id=customer_id,
                    anchor_at=anchor,
                    fired_at=now,
                )
            )
            session.flush()
            run = actions.Run(
                session,
                customer,
                now,
                rule.name,
                origin=f"rule:{rule.name}",
                dedupe_key=f"timer:{rule.name}:{index}:{customer_id}:{anchor.isoformat()}",
            )
            actions.perform(run, rule.steps[index].do)
            session.flush()
    except IntegrityError:
        return False  # another sweep fired it first
    except DomainError as error:
        log.warning("timer %s step %d on customer %s: %s", rule.name, index, customer_id, error)
        return False
    return True


def preview(
    session: Session, *, document: dict[str, Any], now: datetime, scope: ColumnElement[bool]
) -> tuple[Counter[str], list[dict[str, Any]]]:
    """How many customers `scope` selects each step would act on at the next sweep."""
    facts = registry(session, include_retired=True)
    counts: Counter[str] = Counter()
    sample: list[dict[str, Any]] = []
    for rule in documents.timer_rules(document):
        python_only = (
            rule.when is not None and conditions.compile_sql(rule.when, facts, now) is None
        )
        for index in range(len(rule.steps)):
            key = f"{rule.name}#{index + 1}"
            for customer_id, _anchor in _candidates(
                session, rule, index, facts, now, scope, PREVIEW_LIMIT
            ):
                customer = session.get(Customer, customer_id) if python_only else None
                if customer is not None and not _still_due(
                    session, customer, rule, index, facts, now
                ):
                    continue
                counts[key] += 1
                if len(sample) < SAMPLE_SIZE:
                    customer = customer or session.get(Customer, customer_id)
                    assert customer is not None
                    sample.append({"id": customer.id, "name": customer.name, "step": key})
    return counts, sample
