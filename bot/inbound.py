"""Inbound WeCom messages: stored once however often WeCom retries, then claimed and worked on
exactly once by the processing job.

The callback stores a message and commits before it answers; `workers.inbound` claims each
pending row in the transaction that also commits what the bot did with it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from crm.text import is_storable
from models import Database, InboundMessage
from models.inbound import InboundStatus

log = logging.getLogger(__name__)

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
# The batch writer gives its connection back after this long without a message.
IDLE_SECONDS = 10.0


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
        .returning(_TABLE.c.id, _TABLE.c.dedupe_key)
    )


_TABLE = InboundMessage.__table__
# Built once per dialect, values bound at execution: the callback's one statement stays a
# compiled-cache hit instead of coercing fresh values() every request.
_INSERTS = {name: _insert_statement(name) for name in ("postgresql", "sqlite")}


def message_values(fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The row for one decrypted message, pending; raises MalformedMessage."""
    for value in fields.values():
        if isinstance(value, str) and not is_storable(value):
            # PostgreSQL refuses NUL in JSON; no member types control characters.
            raise MalformedMessage("a field holds control characters")
    return {
        "dedupe_key": dedupe_key(fields),
        "msg_type": _text(fields, "MsgType", required=True),
        "event": _text(fields, "Event", required=False),
        "from_user": _text(fields, "FromUserName", required=True),
        "sent_at": datetime.fromtimestamp(_create_time(fields), UTC),
        "payload": dict(fields),
        "status": InboundStatus.PENDING,
        "attempts": 0,
        "last_error": None,
        "received_at": now,
        "processed_at": None,
    }


def insert(connection: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert the rows that are new (one statement); their ids by dedupe key. A key already
    stored (a WeCom retry, a replay) or repeated in `rows` keeps its first row."""
    statement = _INSERTS[connection.dialect.name]
    return {key: row_id for row_id, key in connection.execute(statement, rows)}


class BatchWriter:
    """Group commit for the callback: the request threads of one process hand their messages
    to one writer thread, which stores whatever is waiting in one INSERT and one commit, then
    enqueues the processing once. Each request returns only after its message is committed, so
    storing-before-answering holds; under load a commit, a lock and a Redis round trip are
    shared by every message that arrived meanwhile, and with no load nothing waits."""

    def __init__(
        self,
        db: Database,
        after_commit: Callable[[], None],
        *,
        max_batch: int = 200,
    ) -> None:
        self._db = db
        # Held by the writer thread between batches: no pool check-out (and on PostgreSQL no
        # pre-ping round trip) per batch. Dropped after any error, so the next batch reconnects.
        self._connection: Connection | None = None
        self._after_commit = after_commit
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Waiting] = queue.SimpleQueue()
        self._pid: int | None = None

    def store(self, fields: Mapping[str, Any], now: datetime, *, timeout: float) -> int | None:
        """Store one decrypted message as pending, committed; its id, or None when its dedupe
        key is already stored. Raises MalformedMessage, or TimeoutError when the database
        did not take the message in time (the item may still be stored; WeCom's retry of it
        then dedupes), or the database's error."""
        waiting = _Waiting(message_values(fields, now))
        self._start_in_this_process()
        self._queue.put(waiting)
        if not waiting.done.wait(timeout):
            raise TimeoutError("the inbound writer did not answer in time")
        if waiting.error is not None:
            raise waiting.error
        return waiting.row_id

    def _start_in_this_process(self) -> None:
        # A thread does not survive fork (gunicorn workers, RQ work horses): one per process.
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._connection = None  # the parent's, if any, stays the parent's
                threading.Thread(target=self._run, name="inbound-writer", daemon=True).start()
                self._pid = os.getpid()

    def _run(self) -> None:
        pending = self._queue
        while True:
            try:
                batch = [pending.get(timeout=IDLE_SECONDS)]
            except queue.Empty:
                self._drop_connection()  # a quiet process holds no database connection
                continue
            while len(batch) < self._max_batch:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                # Closed for real, not returned to the pool: it may be broken, and its engine
                # may have been disposed since (the pool would then never close it).
                connection.invalidate()
                connection.close()
            except Exception:  # a broken connection may fail to close; it is gone either way
                log.warning("could not close the inbound writer's connection", exc_info=True)

    def _write(self, batch: list[_Waiting]) -> None:
        try:
            ids = self._insert(batch)
        except Exception as error:
            self._drop_connection()
            if len(batch) > 1:  # find the one that fails; the others are stored
                for waiting in batch:
                    self._write([waiting])
                return
            batch[0].error = error
            batch[0].done.set()
            return
        try:
            self._after_commit()
        except Exception as error:  # the sweeper processes what this enqueue would have
            # One line: while Redis is down, every batch says this.
            log.warning("could not enqueue inbound processing: %r", error)
        for waiting in batch:
            waiting.row_id = ids.pop(waiting.values["dedupe_key"], None)  # first copy only
            waiting.done.set()

    def _insert(self, batch: list[_Waiting]) -> dict[str, int]:
        held = self._connection is not None
        try:
            return self._insert_once(batch)
        except DBAPIError as error:
            # The held connection died between batches (a database restart): that says
            # nothing about the messages, so they get one more try on a new connection.
            if not (held and error.connection_invalidated):
                raise
            self._drop_connection()
            return self._insert_once(batch)

    def _insert_once(self, batch: list[_Waiting]) -> dict[str, int]:
        if self._connection is None:
            self._connection = self._db.writer_engine.connect()
        with self._db.write_transaction(self._connection) as connection:
            return insert(connection, [w.values for w in batch])


@dataclass(eq=False)
class _Waiting:
    values: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    row_id: int | None = None
    error: BaseException | None = None


def pending_ids(
    session: Session, *, after_id: int, limit: int, received_before: datetime | None = None
) -> list[int]:
    """Pending messages after `after_id`, oldest first (optionally only those stored before a
    moment)."""
    query = select(InboundMessage.id).where(
        InboundMessage.status == InboundStatus.PENDING, InboundMessage.id > after_id
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
        .where(InboundMessage.id == message_id, InboundMessage.status == InboundStatus.PENDING)
        .values(status=InboundStatus.DONE, processed_at=now, attempts=InboundMessage.attempts + 1)
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
        .where(InboundMessage.id == message_id, InboundMessage.status == InboundStatus.PENDING)
        .values(
            attempts=attempts,
            last_error=error[:ERROR_MAX_CHARS],
            status=case(
                (attempts >= max_attempts, InboundStatus.FAILED), else_=InboundStatus.PENDING
            ),
        )
        .returning(InboundMessage.status)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
