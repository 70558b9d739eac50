"""The outbox sender: due messages go to WeCom's message/send, each member at most 30 a minute.

Delivery is at least once. A run claims a batch by leasing it (status "sending", next_attempt_at =
lease end) in one short transaction, sends outside any transaction, and records each outcome in
its own short transaction. Holding the claim's row locks (or SQLite's one write lock) across HTTP
calls would stall every other writer while WeCom is slow, so the lease is what keeps two workers
apart instead. WeCom is not transactional: if a worker dies after WeCom took a message but
before "sent" is written, the lease runs out and the message is sent again. We prefer a resend
to a silently lost message, and WeCom's own duplicate check (DUPLICATE_CHECK_SECONDS) drops the
resend when the first copy did arrive, so the member still sees it once.

The lease is short (a dead worker's messages wait about a minute), so a run never starts a send
that could outlast it: when too little lease is left, the rest of the batch is handed back and
claimed afresh.

An image message holds a FileStore key: each try uploads the file (media/upload) and sends the
media_id it gets, inside the same error handling, so an outage during the upload waits and
retries like any send. Uploading again on a retry costs a few hundred kilobytes and spares us
tracking media_ids that WeCom forgets after three days.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from config.redaction import redact
from crm import notifications
from crm.storage import FileStore
from models import Database, OutboxMessage
from wecom import task_ids
from wecom.client import UNAVAILABLE_ERRCODE, WeComClient, WeComError, WeComUnavailable
from workers import context, queues

log = logging.getLogger(__name__)

# One outbox run waits at a time; the run deletes the key as it starts.
OUTBOX_LOCK_KEY = "wecrm:lock:send_outbox"
OUTBOX_LOCK_SECONDS = 600
BATCH_SIZE = 50
MAX_BATCHES_PER_RUN = 20  # then the run hands over to a fresh job, so one run stays bounded
# How long a claimed batch is ours; expiry means a dead worker, and its messages go out again.
LEASE_SECONDS = 60
# The longest one send may take: a token refetch and a resend after a token error, each request
# bounded by the WeCom client's timeout. A send starts only with this much of the lease left.
SEND_MAX_SECONDS = 30
# message/send's enable_duplicate_check: WeCom drops a message identical to one it took (same
# recipients, type and content) within this interval
# (https://developer.work.weixin.qq.com/document/path/90236). It covers a resend after a lease
# ran out (the lease plus one scheduled run) and after the first timeouts' back-offs (30, 60,
# 120 s). Kept short because the check cannot tell a resend from a new message that says the
# same: the same bot reply to the same command twice within it is shown once.
DUPLICATE_CHECK_SECONDS = 300
# WeCom drops app messages beyond 30 a minute to one member from one app
# (https://developer.work.weixin.qq.com/document/path/90312), so we never send the 31st.
MEMBER_LIMIT_PER_MINUTE = 30
RATE_WINDOW_SECONDS = 60
RATE_KEY = "wecrm:outbox:rate:{userid}"
# WeCom's own frequency errors: its count and ours disagree (say Redis lost our window), so wait.
RATE_LIMITED_ERRCODES = frozenset({45009, 45033})
# WeCom refuses a template card whose task_id the app used before (42014). Our task ids are
# unique per message, so this answer means WeCom already took this very card: an at-least-once
# resend after a worker stopped before writing "sent".
TASK_ID_TAKEN_ERRCODE = 42014

# One sorted set per member, scored by send time: drop what left the window, then take a slot
# if one is free, atomically, so that every worker shares one count. Answers "" when a slot was
# taken, else when the oldest slot frees up (a string: Lua numbers would be cut to integers).
_TAKE_SLOT = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('EXPIRE', key, window * 2)
  return ''
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window)
"""


class MemberRateLimit:
    """WeCom's per-member limit, counted in Redis so that all workers share it."""

    def __init__(self, connection: redis.Redis, limit: int = MEMBER_LIMIT_PER_MINUTE) -> None:
        self._take = connection.register_script(_TAKE_SLOT)
        self.limit = limit

    def take(self, userid: str, slot: str, now: datetime) -> datetime | None:
        """Take a send slot for `userid`; if none is free, return when one will be."""
        key = RATE_KEY.format(userid=userid.lower())  # WeCom userids ignore case
        args: list[float | str] = [now.timestamp(), RATE_WINDOW_SECONDS, self.limit, slot]
        answer = self._take(keys=[key], args=args)
        if not answer:
            return None
        return datetime.fromtimestamp(float(answer), UTC)


@dataclass(frozen=True)
class _Claimed:
    """What the sender needs of a claimed row once its claiming session is closed."""

    id: int
    touser: str
    msgtype: str
    payload: dict[str, Any]


def enqueue_outbox(connection: redis.Redis) -> None:
    """Start one outbox run, however many commits queued messages meanwhile."""
    queues.enqueue_once(
        connection,
        send_outbox,
        queue_name=queues.NOTIFICATIONS,
        pending_key=OUTBOX_LOCK_KEY,
        pending_seconds=OUTBOX_LOCK_SECONDS,
        job_timeout=600,
    )


def send_outbox() -> dict[str, int]:
    """Send every due outbox message (the job the edges' commits and the schedule enqueue)."""
    rt = context.runtime()
    rt.redis.delete(OUTBOX_LOCK_KEY)  # messages queued from now on need another run
    return send_due(
        rt.db, rt.redis, rt.wecom, rt.clock, public_url=rt.settings.public_url, store=rt.store
    )


def send_due(
    db: Database,
    connection: redis.Redis,
    wecom: WeComClient,
    clock: Callable[[], datetime],
    *,
    public_url: str,
    store: FileStore,
) -> dict[str, int]:
    """Claim and send due messages batch by batch; stop early while WeCom is unreachable."""
    limiter = MemberRateLimit(connection)
    report: Counter[str] = Counter()
    for _ in range(MAX_BATCHES_PER_RUN):
        lease_until, batch = _claim(db, clock, public_url)
        if not batch:
            break
        for index, message in enumerate(batch):
            if clock() + timedelta(seconds=SEND_MAX_SECONDS) > lease_until:
                # Another worker could claim the message mid-send: hand the rest back untried
                # and claim them again with a fresh lease.
                rest = batch[index:]
                _release(db, rest, clock())
                report["released"] += len(rest)
                break
            try:
                outcome = _send_one(db, limiter, wecom, store, clock, message)
            except redis.RedisError:
                # The rate limit and WeCom's token live in Redis: without it nothing is sent,
                # and the lease would hold the batch for a minute after Redis is back. Due now,
                # the next run (the schedule's, or a commit's) sends them.
                _release(db, batch[index:], clock())
                raise
            report[outcome] += 1
            if outcome == "unavailable":
                # Do not hammer a WeCom that is down: the rest of the batch waits as long as the
                # message that found it down, without an attempt counted against them.
                rest = batch[index + 1 :]
                if rest:
                    _release(db, rest, _next_attempt_at(db, message.id))
                    report["released"] += len(rest)
                return dict(report)
    else:
        enqueue_outbox(connection)  # more than one run's worth: continue in a new job
    return dict(report)


def _claim(
    db: Database, clock: Callable[[], datetime], public_url: str
) -> tuple[datetime, list[_Claimed]]:
    """Lease a batch of due messages; returns the lease's end and the batch."""
    # lock_for_write: on SQLite the claim's read and write happen under one write lock, so two
    # workers cannot read the same due rows; PostgreSQL uses FOR UPDATE SKIP LOCKED instead.
    with db.session(lock_for_write=True) as session:
        lease_until = clock() + timedelta(seconds=LEASE_SECONDS)
        rows = notifications.claim_due(
            session, now=clock(), limit=BATCH_SIZE, lease_until=lease_until
        )
        claimed = [_snapshot(row, public_url) for row in rows]
        session.commit()
    return lease_until, claimed


def _snapshot(row: OutboxMessage, public_url: str) -> _Claimed:
    return _Claimed(
        id=row.id,
        touser=row.touser,
        msgtype=row.msgtype,
        payload=wecom_payload(row, public_url=public_url),
    )


def wecom_payload(row: OutboxMessage, *, public_url: str) -> dict[str, Any]:
    """What message/send gets for a row: a button card's subject becomes its task id, unique to
    the recipient's copy, so a resend of the same row reuses it (and WeCom answers 42014)."""
    payload = notifications.payload(row, public_url=public_url)
    subject = payload.pop("subject", None)
    if subject is not None:
        payload["task_id"] = task_ids.task_id(subject, row.recipient_id)
    return payload


def _send_one(
    db: Database,
    limiter: MemberRateLimit,
    wecom: WeComClient,
    store: FileStore,
    clock: Callable[[], datetime],
    message: _Claimed,
) -> str:
    """Send one claimed message and record what happened; returns the outcome's name."""
    free_at = limiter.take(message.touser, f"{message.id}:{clock().timestamp()}", clock())
    if free_at is not None:
        _record(db, notifications.defer, message_id=message.id, until=free_at)
        return "deferred"
    try:
        content = message.payload
        if message.msgtype == "image":
            content = {"media_id": _upload_image(wecom, store, content)}
        result = wecom.send_message(
            [message.touser],
            message.msgtype,
            content,
            duplicate_check_seconds=DUPLICATE_CHECK_SECONDS,
        )
    except WeComError as error:
        now = clock()
        if isinstance(error, WeComUnavailable) or error.errcode == UNAVAILABLE_ERRCODE:
            log.warning("WeCom unreachable; outbox paused: %s", redact(str(error)))
            _record(
                db,
                notifications.record_unavailable,
                message_id=message.id,
                now=now,
                error=redact(str(error)),
            )
            return "unavailable"
        if error.errcode == TASK_ID_TAKEN_ERRCODE and message.msgtype == "template_card":
            _record(db, notifications.mark_sent, message_id=message.id, now=now)
            return "sent"
        if error.errcode in RATE_LIMITED_ERRCODES:
            until = now + timedelta(seconds=RATE_WINDOW_SECONDS)
            _record(db, notifications.defer, message_id=message.id, until=until)
            return "deferred"
        log.info("WeCom refused outbox message %d: %s", message.id, error)
        _record(
            db,
            notifications.record_error,
            message_id=message.id,
            now=now,
            error=redact(str(error)),
        )
        return "error"
    invalid = {u.lower() for u in str(result.get("invaliduser", "")).split("|") if u}
    if message.touser.lower() in invalid:
        # WeCom answered ok but will never deliver: the member left or was never in the corp.
        _record(
            db,
            notifications.record_error,
            message_id=message.id,
            now=clock(),
            error=f"WeCom does not know member {message.touser}",
            permanent=True,
        )
        return "error"
    _record(db, notifications.mark_sent, message_id=message.id, now=clock())
    return "sent"


def _upload_image(wecom: WeComClient, store: FileStore, content: dict[str, Any]) -> str:
    """Upload an image message's picture from the FileStore; returns WeCom's media_id."""
    path = store.path(content[notifications.IMAGE_KEY_FIELD])
    content_type = "image/png" if path.suffix == ".png" else "image/jpeg"
    return wecom.upload_media("image", path.name, path.read_bytes(), content_type)


def _record(db: Database, change: Callable[..., object], **kwargs: Any) -> None:
    """Apply one outcome in its own short transaction."""
    with db.session(lock_for_write=True) as session:
        change(session, **kwargs)
        session.commit()


def _next_attempt_at(db: Database, message_id: int) -> datetime:
    with db.session() as session:
        message = session.get(OutboxMessage, message_id)
        assert message is not None
        return message.next_attempt_at


def _release(db: Database, messages: list[_Claimed], until: datetime) -> None:
    with db.session(lock_for_write=True) as session:
        for message in messages:
            notifications.defer(session, message_id=message.id, until=until)
        session.commit()
