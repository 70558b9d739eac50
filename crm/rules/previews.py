"""Previews that need more than the engine's own dry runs: replaying recent events through
trigger rules, measuring the team against a pool policy, and what a keyword dictionary adds
and removes."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from crm.pool import holdings
from crm.rules import conditions, documents, grading
from crm.rules.facts import registry
from crm.rules.triggers import follow_up_data
from crm.rulesets.policy import PoolPolicy
from models import Attachment, Customer, FollowUp, StageChange, User
from models.users import Role

REPLAY_LIMIT = 5000
SAMPLE_SIZE = 20


def triggers(
    session: Session, *, document: dict[str, Any], now: datetime, since: datetime, scope: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """How often each trigger would have fired on the last days' events in scope."""
    rules = documents.trigger_rules(document)
    facts = registry(session, include_retired=True)
    counts: Counter[str] = Counter({rule.name: 0 for rule in rules})
    sample: list[dict[str, Any]] = []
    events = (
        _follow_up_events(session, since, scope)
        if any(r.on == "follow_up_created" for r in rules)
        else []
    )
    if any(r.on == "stage_changed" for r in rules):
        events += _stage_events(session, since, scope)
    for name, customer, data, overrides in events:
        subject = grading.subject_of(session, customer, now, data)
        subject.values = {**subject.values, **overrides}
        for rule in rules:
            if rule.on == name and (
                rule.when is None or conditions.evaluate(rule.when, facts, subject)
            ):
                counts[rule.name] += 1
                if len(sample) < SAMPLE_SIZE:
                    sample.append({"id": customer.id, "name": customer.name, "rule": rule.name})
    return [{"rule": name, "customers": n} for name, n in counts.items()], sample


def _follow_up_events(session: Session, since: datetime, scope: Any) -> list[tuple]:
    rows = list(
        session.execute(
            select(FollowUp, Customer)
            .join(Customer, Customer.id == FollowUp.customer_id)
            .where(scope, FollowUp.happened_at >= since)
            .order_by(FollowUp.happened_at.desc())
            .limit(REPLAY_LIMIT)
        ).all()
    )
    names: dict[int, list[str]] = defaultdict(list)
    if rows:
        for follow_up_id, filename in session.execute(
            select(Attachment.follow_up_id, Attachment.filename).where(
                Attachment.follow_up_id.in_([f.id for f, _ in rows])
            )
        ):
            names[follow_up_id].append(filename)
    return [
        (
            "follow_up_created",
            customer,
            follow_up_data(
                summary=f.summary, transcript=f.transcript, method=f.method, filenames=names[f.id]
            ),
            {},
        )
        for f, customer in rows
    ]


def _stage_events(session: Session, since: datetime, scope: Any) -> list[tuple]:
    rows = session.execute(
        select(StageChange, Customer)
        .join(Customer, Customer.id == StageChange.customer_id)
        .where(scope, StageChange.changed_at >= since, StageChange.from_stage.is_not(None))
        .order_by(StageChange.changed_at.desc())
        .limit(REPLAY_LIMIT)
    ).all()
    return [
        ("stage_changed", customer, {"previous_stage": c.from_stage}, {"stage": c.to_stage})
        for c, customer in rows
    ]


def pool(
    session: Session, *, document: dict[str, Any], people: ColumnElement[bool]
) -> list[dict[str, Any]]:
    """Each active rep `people` selects: open customers held against the policy's cap."""
    policy = PoolPolicy.from_document(document)
    reps = list(
        session.scalars(
            select(User).where(people, User.role == Role.REP, User.is_active).order_by(User.id)
        )
    )
    held = holdings(session, [rep.id for rep in reps])
    return [
        {
            "rule": rep.name,
            "customers": held.get(rep.id, 0),
            "detail": "已达持有上限，不能再领取"
            if held.get(rep.id, 0) >= policy.max_holdings
            else f"还可持有 {policy.max_holdings - held.get(rep.id, 0)} 个",
        }
        for rep in reps
    ]


def keywords(document: dict[str, Any], in_force: dict[str, Any]) -> list[dict[str, Any]]:
    """The words a dictionary adds and removes against the one in force: one row per category,
    negation list or risk list that changed, in the new dictionary's order, then the categories
    it drops."""

    def lists(doc: dict[str, Any]) -> dict[str, list[str]]:
        words = {f"类别「{c['name']}」": list(c["words"]) for c in doc["categories"]}
        return {**words, "否定词": list(doc["negations"]), "风险词": list(doc["risk_words"])}

    new, old = lists(document), lists(in_force)
    rows = []
    for name in [*new, *(n for n in old if n not in new)]:
        added = [w for w in new.get(name, []) if w not in old.get(name, [])]
        removed = [w for w in old.get(name, []) if w not in new.get(name, [])]
        if added or removed:
            rows.append({"rule": name, "customers": 0, "added": added, "removed": removed})
    return rows
