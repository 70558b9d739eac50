"""Rule sets as versions: the active one per kind, drafts, publish, preview and rollback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.rules.defaults import DEFAULT_DOCUMENTS
from models import RuleSetVersion

KINDS = ("grading", "triggers", "timers", "pool")


@dataclass(frozen=True)
class ActiveRuleSet:
    kind: str
    version: int  # 0: the built-in default pack, never published
    document: dict[str, Any]


def active(session: Session, kind: str) -> ActiveRuleSet:
    """The rule set of `kind` in force: the active version, or the default pack."""
    row = session.execute(
        select(RuleSetVersion.version, RuleSetVersion.document).where(
            RuleSetVersion.kind == kind, RuleSetVersion.status == "active"
        )
    ).first()
    if row is None:
        return ActiveRuleSet(kind, 0, DEFAULT_DOCUMENTS[kind])
    return ActiveRuleSet(kind, row.version, row.document)
