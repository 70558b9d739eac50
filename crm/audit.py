"""Writes the audit trail; every service that changes a customer calls `record`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from crm.actors import Actor
from models import AuditEntry


def record(
    session: Session,
    *,
    actor: Actor | None,
    entity: str,
    entity_id: int,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    now: datetime,
    reason: str | None = None,
) -> None:
    """Add one audit entry (flushed with the change it describes, so both land or neither)."""
    session.add(
        AuditEntry(
            at=now,
            actor_id=actor.user_id if actor else None,
            entity=entity,
            entity_id=entity_id,
            action=action,
            before=_jsonable(before),
            after=_jsonable(after),
            reason=reason,
        )
    )


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, (str, int, float, bool, list, dict, type(None))) else str(v)
        for k, v in values.items()
    }
