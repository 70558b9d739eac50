"""The rule sets in force: the one place every engine (and the pool) reads them.

Exactly one version of each kind is active; without one the default pack (version 0) is.
Writing versions (drafts, publish, rollback) is `crm.rules.publisher`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from models import RuleSetVersion


@dataclass(frozen=True)
class ActiveRuleSet:
    kind: str
    version: int  # 0: the built-in default pack, never published
    document: dict[str, Any]


def active(session: Session, kind: str) -> ActiveRuleSet:
    """The rule set of `kind` in force: the active version, or the default pack."""
    return active_sets(session, (kind,))[kind]


def active_sets(session: Session, kinds: Iterable[str]) -> dict[str, ActiveRuleSet]:
    """Several kinds' rule sets in force, read in one statement."""
    wanted = tuple(kinds)
    found = {
        row.kind: ActiveRuleSet(row.kind, row.version, row.document)
        for row in session.execute(
            select(RuleSetVersion.kind, RuleSetVersion.version, RuleSetVersion.document).where(
                RuleSetVersion.kind.in_(wanted), RuleSetVersion.status == "active"
            )
        )
    }
    return {k: found.get(k) or ActiveRuleSet(k, 0, DEFAULT_DOCUMENTS[k]) for k in wanted}
