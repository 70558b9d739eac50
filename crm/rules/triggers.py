"""Event triggers: what happens after a follow-up, a stage change or an edit.

`on_event` is the one door: the customer services call it after every change they make, from
the API, the bot or a job alike. It re-grades the customer, runs the triggers of the event, lets
what they cause (a stage move) trigger in turn, a bounded number of times, and re-grades again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import PurePath
from typing import Any

from sqlalchemy.orm import Session

from crm.rules import actions, conditions, documents, grading
from crm.rules.facts import BUILT_IN, registry
from crm.rulesets import store
from models import Customer

log = logging.getLogger(__name__)

# A trigger's stage move may trigger stage rules, whose actions may move again: at most this
# many rounds, and each rule at most once per original event, so rules can never loop.
MAX_ROUNDS = 3


def follow_up_data(
    *, summary: str, transcript: str | None, method: str, filenames: Iterable[str]
) -> dict[str, Any]:
    """The facts of a follow-up event: its text, method and attachment types ("pdf", …)."""
    return {
        "text": "\n".join(part for part in (summary, transcript) if part),
        "method": method,
        "attachment_types": sorted({PurePath(n).suffix.lower().lstrip(".") for n in filenames}),
    }


def on_event(
    session: Session,
    *,
    customer: Customer,
    event: str,
    now: datetime,
    data: Mapping[str, Any],
    regrade: bool = True,
) -> list[str]:
    """Apply the grading and triggers in force for the customer's team after `event`; the rules
    that fired.

    `regrade=False` when a manager has just set the grade by hand: it stands until the next event.
    """
    sets = store.active_sets(session, ("grading", "triggers"), customer.team_id)
    rules = documents.trigger_rules(sets["triggers"].document)
    # Writes are the hot path: custom fields and tags are read only if some rule asks.
    used = documents.facts_used(sets["grading"].document) | documents.facts_used(
        sets["triggers"].document
    )
    asks_custom = any(name.startswith("custom.") for name in used)
    facts = registry(session, include_retired=True) if asks_custom else dict(BUILT_IN)
    grades = grading.Grading.of(session, sets["grading"].document, sets["grading"].version, facts)
    with_tags = "tags" in used
    subject = grading.subject_of(session, customer, now, with_tags=with_tags)

    def regrade_now() -> None:
        grade, reason = grades.grade(subject)
        grading.apply(session, customer=customer, grade=grade, reason=reason, now=now)

    if regrade:
        regrade_now()
    fired: list[str] = []
    pending: list[tuple[str, Mapping[str, Any], int]] = [(event, data, 1)]
    while pending:
        name, payload, round_ = pending.pop(0)
        for rule in rules:
            if rule.on != name or rule.name in fired:
                continue
            subject.event = payload
            if rule.when is not None and not conditions.evaluate(rule.when, facts, subject):
                continue
            fired.append(rule.name)
            run = actions.Run(session, customer, now, rule.name, origin=f"rule:{rule.name}")
            actions.perform(run, rule.do)
            session.flush()
            subject = grading.subject_of(session, customer, now, with_tags=with_tags)
            if round_ < MAX_ROUNDS:
                pending += [(caused, more, round_ + 1) for caused, more in run.events]
            elif run.events:
                log.warning("trigger chain stopped after %d rounds at %s", MAX_ROUNDS, rule.name)
    if fired and regrade:
        subject.event = {}
        regrade_now()
    return fired
