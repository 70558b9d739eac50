"""Inbound WeCom messages: stored once however often WeCom retries, then claimed and worked on
exactly once by the processing job.

The callback stores a message and commits before it answers; `workers.inbound` claims each
pending row in the transaction that also commits what the bot did with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import InboundMessage

PENDING, DONE, FAILED = "pending", "done", "failed"
# What tells two different events of the same member in the same second apart. A WeCom retry
# repeats every field of the original, these included, so it still lands on the same key.
EVENT_DISCRIMINATORS = (
    "Event",
    "ChangeType",
    "UserID",
    "ExternalUserID",
    "ChatId",
    "TagType",
    "Id",
    "TaskId",
    "EventKey",
    "JobId",
)
_LIMITS = {"FromUserName": 64, "MsgType": 32, "Event": 64, "MsgId": 64}
ERROR_MAX_CHARS = 255


class MalformedMessage(ValueError):
    """Decrypted XML that lacks what every WeCom message has (or has it in the wrong shape)."""


def _text(fields: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise MalformedMessage(f"no {name}")
        return None
    if not isinstance(value, str) or len(value) > _LIMITS[name]:
        raise MalformedMessage(f"{name} is not a short text")
    return value


def dedupe_key(fields: Mapping[str, Any]) -> str:
    """`msg:<MsgId>` for messages; for events, which have no MsgId, the sender, the second and a
    digest of the fields in EVENT_DISCRIMINATORS."""
    msg_id = _text(fields, "MsgId", required=False)
    if msg_id is not None:
        return f"msg:{msg_id}"
    sender = _text(fields, "FromUserName", required=True)
    discriminators = "\x1f".join(str(fields.get(name) or "") for name in EVENT_DISCRIMINATORS)
    digest = hashlib.sha256(discriminators.encode()).hexdigest()[:32]
    return f"event:{sender}:{_create_time(fields)}:{digest}"


def _create_time(fields: Mapping[str, Any]) -> int:
    raw = fields.get("CreateTime")
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 12:
        raise MalformedMessage("CreateTime is not a number of seconds")
    return int(raw)


def _insert_statement(dialect_name: str) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return (
        dialect.insert(_TABLE)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(_TABLE.c.id)
    )


_TABLE = InboundMessage.__table__
# Built once per dialect, values bound at execution: the callback's one statement stays a
# compiled-cache hit instead of coercing fresh values() every request.
_INSERTS = {name: _insert_statement(name) for name in ("postgresql", "sqlite")}


def store(session: Session, fields: Mapping[str, Any], now: datetime) -> int | None:
    """Insert one decrypted message as pending and return its id; None when its dedupe key is
    already stored (a WeCom retry, or a replay of the same message). Raises MalformedMessage."""
    values = {
        "dedupe_key": dedupe_key(fields),
        "msg_type": _text(fields, "MsgType", required=True),
        "event": _text(fields, "Event", required=False),
        "from_user": _text(fields, "FromUserName", required=True),
        "sent_at": datetime.fromtimestamp(_create_time(fields), UTC),
        "payload": dict(fields),
        "status": PENDING,
        "attempts": 0,
        "last_error": None,
        "received_at": now,
        "processed_at": None,
    }
    statement = _INSERTS[session.get_bind().dialect.name]
    return session.execute(statement, values).scalar_one_or_none()


def pending_ids(
    session: Session, *, after_id: int, limit: int, received_before: datetime | None = None
) -> list[int]:
    """Pending messages after `after_id`, oldest first (optionally only those stored before a
    moment)."""
    query = select(InboundMessage.id).where(
        InboundMessage.status == PENDING, InboundMessage.id > after_id
    )
    if received_before is not None:
        query = query.where(InboundMessage.received_at < received_before)
    return list(session.scalars(query.order_by(InboundMessage.id).limit(limit)))


def claim(session: Session, *, message_id: int, now: datetime) -> InboundMessage | None:
    """Mark a pending message done in this transaction and return it; None if it is not
    pending any more. Two workers may race for the same row: the conditional UPDATE lets only
    one of them through, and the effects commit together with the claim or not at all."""
    claimed = session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == message_id, InboundMessage.status == PENDING)
        .values(status=DONE, processed_at=now, attempts=InboundMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(InboundMessage, message_id, populate_existing=True)


def record_failure(
    session: Session, *, message_id: int, error: str, max_attempts: int, counts: bool = True
) -> str | None:
    """After a failed attempt (rolled back): count it, keep the error, and give up once
    `max_attempts` were made; an attempt that does not count leaves it pending. Returns the
    new status, or None if another worker has claimed the message meanwhile."""
    attempts = InboundMessage.attempts + (1 if counts else 0)
    return session.execute(
        update(InboundMessage)
        # Still pending: another worker may have claimed it since the rollback released it.
        .where(InboundMessage.id == message_id, InboundMessage.status == PENDING)
        .values(
            attempts=attempts,
            last_error=error[:ERROR_MAX_CHARS],
            status=case((attempts >= max_attempts, FAILED), else_=PENDING),
        )
        .returning(InboundMessage.status)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
