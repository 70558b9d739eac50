"""Grading: an ordered rule list, first match wins, else the default grade.

One customer (an event) is graded in Python; the customers a set governs (a publish) in one SQL
statement when every condition compiles, else in Python batches. Both go through `facts`, whose
Python and SQL readings agree, so the two paths cannot disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, cast, func, insert, literal, select, update
from sqlalchemy.orm import Session

from crm import audit
from crm.actors import Actor
from crm.rules import conditions, documents
from crm.rules.documents import GradingRule
from crm.rules.facts import Fact, Subject, registry
from crm.rulesets import store
from models import AuditEntry, Customer, CustomerTag, User

BATCH_SIZE = 2000
SAMPLE_SIZE = 20


@dataclass(frozen=True)
class Grading:
    """A grading rule set ready to apply."""

    rules: list[GradingRule]
    default: str | None
    facts: Mapping[str, Fact]
    version: int = 0

    @classmethod
    def of(
        cls,
        session: Session,
        document: Mapping[str, Any],
        version: int = 0,
        facts: Mapping[str, Fact] | None = None,
    ) -> Grading:
        rules, default = documents.grading_rules(document)
        return cls(rules, default, facts or registry(session, include_retired=True), version)

    def decide(self, subject: Subject) -> tuple[str | None, str | None]:
        """The grade for one subject and the rule that gave it (None: the default)."""
        for rule in self.rules:
            if conditions.evaluate(rule.when, self.facts, subject):
                return rule.grade, rule.name
        return self.default, None

    def grade(self, subject: Subject) -> tuple[str | None, str]:
        """The grade for one subject, with the reason the audit trail gives."""
        grade, rule = self.decide(subject)
        return grade, _reason(self.version, rule)

    def sql(self, now: datetime) -> ColumnElement[Any] | None:
        """The grade as one SQL CASE over customers, or None if a condition is Python-only."""
        whens = []
        for rule in self.rules:
            compiled = conditions.compile_sql(rule.when, self.facts, now)
            if compiled is None:
                return None
            whens.append((compiled, _grade_literal(rule.grade)))
        default = _grade_literal(self.default)
        return case(*whens, else_=default) if whens else default

    @property
    def needs_tags(self) -> bool:
        return any("tags" in conditions.facts_used(rule.when) for rule in self.rules)


@dataclass
class Regrade:
    """What a re-grade changed (or, in a preview, would change)."""

    total: int = 0
    changed: int = 0
    transitions: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)
    sample: list[dict[str, Any]] = field(default_factory=list)
    evaluated_in: str = "sql"  # or "python"


def subject_of(
    session: Session,
    customer: Customer,
    now: datetime,
    event: Mapping[str, Any] | None = None,
    *,
    with_tags: bool = True,
) -> Subject:
    """One customer as the rules see it; its tags are read only when a rule asks about them."""
    values = {column.key: getattr(customer, column.key) for column in Customer.__mapper__.columns}
    tags = frozenset(
        session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == customer.id))
        if with_tags
        else ()
    )
    return Subject(values=values, tags=tags, now=now, event=event or {})


def grade_for(session: Session, *, customer: Customer, now: datetime) -> tuple[str | None, str]:
    """The grade the rules in force for the customer's team give it, and why."""
    active = store.active(session, "grading", customer.team_id)
    grading = Grading.of(session, active.document, active.version)
    return grading.grade(subject_of(session, customer, now))


def apply(
    session: Session, *, customer: Customer, grade: str | None, reason: str, now: datetime
) -> bool:
    """Give one customer a grade the rules decided, audited; True if it changed."""
    if grade == customer.grade:
        return False
    before = customer.grade
    customer.grade = grade
    audit.record(
        session,
        actor=None,
        entity="customer",
        entity_id=customer.id,
        action="grade",
        before={"grade": before},
        after={"grade": grade},
        now=now,
        reason=reason,
    )
    return True


def regrade_all(
    session: Session,
    *,
    grading: Grading,
    now: datetime,
    actor: Actor | None,
    reason: str,
    scope: ColumnElement[bool],
) -> Regrade:
    """Apply a grading rule set to every customer `scope` selects (those it governs) at once,
    auditing each change; `preview` with the same scope reports exactly these changes."""
    new_grade = grading.sql(now)
    if new_grade is None:
        return _regrade_in_python(
            session, grading=grading, now=now, actor=actor, reason=reason, scope=scope
        )
    changed = and_(scope, Customer.grade.is_distinct_from(new_grade))
    result = _count(session, new_grade, changed, scope)
    json_object = (
        func.jsonb_build_object
        if session.get_bind().dialect.name == "postgresql"
        else func.json_object
    )
    # One INSERT … SELECT and one UPDATE, however many customers: the audit rows are written
    # from the same CASE before the UPDATE changes what it reads.
    session.execute(
        insert(AuditEntry).from_select(
            ["at", "actor_id", "entity", "entity_id", "action", "before", "after", "reason"],
            select(
                literal(now, AuditEntry.at.type),
                literal(actor.user_id if actor else None, AuditEntry.actor_id.type),
                literal("customer"),
                Customer.id,
                literal("grade"),
                json_object("grade", Customer.grade),
                json_object("grade", new_grade),
                literal(reason[:255]),
            ).where(changed),
        )
    )
    session.execute(
        update(Customer).where(changed).values(grade=new_grade),
        execution_options={"synchronize_session": False},
    )
    session.expire_all()  # loaded customers must not keep their old grade
    return result


def preview(session: Session, *, grading: Grading, now: datetime, scope: Any) -> Regrade:
    """What `regrade_all` would change among the customers `scope` selects, changing nothing."""
    new_grade = grading.sql(now)
    if new_grade is None:
        result = Regrade(evaluated_in="python")
        for row, grade in _decide_in_batches(session, grading, now, scope):
            result.total += 1
            if grade != row.grade:
                _note(result, row.id, row.name, row.owner_id, row.grade, grade)
        _name_owners(session, result)
        return result
    result = _count(session, new_grade, Customer.grade.is_distinct_from(new_grade), scope)
    rows = session.execute(
        select(
            Customer.id, Customer.name, Customer.owner_id, Customer.grade, new_grade.label("new")
        )
        .where(scope, Customer.grade.is_distinct_from(new_grade))
        .order_by(Customer.id)
        .limit(SAMPLE_SIZE)
    )
    result.sample = [
        {"id": r.id, "name": r.name, "owner_id": r.owner_id, "from": r.grade, "to": r.new}
        for r in rows
    ]
    _name_owners(session, result)
    return result


def _count(session: Session, new_grade: Any, changed: Any, scope: Any) -> Regrade:
    result = Regrade(
        total=session.scalar(select(func.count()).select_from(Customer).where(scope)) or 0
    )
    for old, new, count in session.execute(
        select(Customer.grade, new_grade, func.count())
        .where(scope, changed)
        .group_by(Customer.grade, new_grade)
    ):
        result.transitions[(old, new)] += count
        result.changed += count
    return result


def _regrade_in_python(
    session: Session,
    *,
    grading: Grading,
    now: datetime,
    actor: Actor | None,
    reason: str,
    scope: ColumnElement[bool],
) -> Regrade:
    result = Regrade(evaluated_in="python")
    changes: list[tuple[int, str | None, str | None]] = []
    for row, grade in _decide_in_batches(session, grading, now, scope):
        result.total += 1
        if grade != row.grade:
            result.transitions[(row.grade, grade)] += 1
            result.changed += 1
            changes.append((row.id, row.grade, grade))
    for start in range(0, len(changes), BATCH_SIZE):
        batch = changes[start : start + BATCH_SIZE]
        session.execute(update(Customer), [{"id": cid, "grade": new} for cid, _, new in batch])
        session.execute(
            insert(AuditEntry),
            [
                {
                    "at": now,
                    "actor_id": actor.user_id if actor else None,
                    "entity": "customer",
                    "entity_id": cid,
                    "action": "grade",
                    "before": {"grade": old},
                    "after": {"grade": new},
                    "reason": reason[:255],
                }
                for cid, old, new in batch
            ],
        )
    session.expire_all()
    return result


def _decide_in_batches(
    session: Session, grading: Grading, now: datetime, scope: Any
) -> Iterator[tuple[Any, str | None]]:
    """(row, grade) for every customer in scope, read in id order a batch at a time."""
    last_id = 0
    while True:
        rows = session.execute(
            select(Customer.__table__)
            .where(scope, Customer.id > last_id)
            .order_by(Customer.id)
            .limit(BATCH_SIZE)
        ).all()
        if not rows:
            return
        tags: dict[int, set[str]] = {}
        if grading.needs_tags:
            for customer_id, tag in session.execute(
                select(CustomerTag.customer_id, CustomerTag.tag).where(
                    CustomerTag.customer_id.in_([r.id for r in rows])
                )
            ):
                tags.setdefault(customer_id, set()).add(tag)
        for row in rows:
            subject = Subject(values=row._mapping, tags=frozenset(tags.get(row.id, ())), now=now)
            yield row, grading.decide(subject)[0]
        last_id = rows[-1].id


def _note(result: Regrade, cid: int, name: str, owner_id: int | None, old: Any, new: Any) -> None:
    result.changed += 1
    result.transitions[(old, new)] += 1
    if len(result.sample) < SAMPLE_SIZE:
        result.sample.append(
            {"id": cid, "name": name, "owner_id": owner_id, "from": old, "to": new}
        )


def _name_owners(session: Session, result: Regrade) -> None:
    ids = {item["owner_id"] for item in result.sample if item["owner_id"]}
    names = dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())
    for item in result.sample:
        item["owner"] = names.get(item["owner_id"])


def _grade_literal(grade: str | None) -> ColumnElement[Any]:
    # Typed in the SQL itself: PostgreSQL cannot infer the type of a bare NULL parameter.
    return cast(literal(grade), Customer.grade.type)


def _reason(version: int, rule: str | None) -> str:
    source = f"分级规则 v{version}" if version else "默认分级规则"
    return f"{source}「{rule}」" if rule else f"{source}（默认等级）"
