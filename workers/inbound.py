"""The processing job for stored WeCom messages, and the sweeper that catches what it missed.

Exactly once: each message is claimed (pending → done) in the same transaction that commits
what the bot did with it, so a crash before the commit leaves it pending for the next run, and
two workers never both handle it. A message whose handling raises is rolled back and tried
again by a later run, up to MAX_ATTEMPTS; it never holds up the messages behind it.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import redis

from bot import dispatch, inbound
from config.redaction import redact
from models import InboundMessage
from models.inbound import InboundStatus
from wecom.client import WeComUnavailable
from wecrm.runtime import Runtime
from workers import context, queues

log = logging.getLogger(__name__)

# One inbound drain waits at a time: a burst of WeCom messages costs one SET NX each, not an RQ
# job each; the run deletes the key as it starts.
INBOUND_LOCK_KEY = "wecrm:lock:process_inbound"
INBOUND_LOCK_SECONDS = 600
BATCH_SIZE = 100
MAX_MESSAGES_PER_RUN = 2000  # then the run hands over to a fresh job, so one run stays bounded
MAX_ATTEMPTS = 3
# A message still pending this long after it was stored lost its enqueue or its worker.
SWEEP_AFTER_SECONDS = 30


def enqueue_inbound(connection: redis.Redis) -> None:
    """Start one drain of stored WeCom messages, however many arrived meanwhile."""
    queues.enqueue_once(
        connection,
        process_inbound,
        queue_name=queues.INBOUND,
        pending_key=INBOUND_LOCK_KEY,
        pending_seconds=INBOUND_LOCK_SECONDS,
        job_timeout=600,
    )


def process_inbound() -> dict[str, int]:
    """Handle every pending message, oldest first (the job the callback enqueues)."""
    rt = context.runtime()
    rt.redis.delete(INBOUND_LOCK_KEY)  # messages stored from now on need another run
    return drain(rt)


def sweep_inbound() -> dict[str, int]:
    """Handle the messages stored a while ago and still pending (the periodic job)."""
    rt = context.runtime()
    return drain(rt, stale_after=timedelta(seconds=SWEEP_AFTER_SECONDS))


def drain(rt: Runtime, *, stale_after: timedelta | None = None) -> dict[str, int]:
    """Try each pending message once, in id order; failures wait for a later run."""
    report: Counter[str] = Counter()
    last_id = 0
    while sum(report.values()) < MAX_MESSAGES_PER_RUN:
        with rt.db.session() as session:
            before = rt.clock() - stale_after if stale_after is not None else None
            ids = inbound.pending_ids(
                session, after_id=last_id, limit=BATCH_SIZE, received_before=before
            )
        if not ids:
            return dict(report)
        for message_id in ids:
            report[_process_one(rt, message_id)] += 1
        last_id = ids[-1]
    enqueue_inbound(rt.redis)  # more than one run's worth: continue in a new job
    return dict(report)


def _process_one(rt: Runtime, message_id: int) -> str:
    """Claim and handle one message in one transaction; returns the outcome's name."""
    try:
        with rt.db.session() as session:  # WeCom is asked before the write transaction
            message = session.get(InboundMessage, message_id)
            answers = (
                dispatch.ask_wecom(message.payload, rt.wecom)
                if message
                else dispatch.WeComAnswers()
            )
        with rt.db.session(lock_for_write=True) as session:
            now = rt.clock()
            claimed = inbound.claim(session, message_id=message_id, now=now)
            if claimed is None:
                return "taken"  # another worker got there first
            dispatch.handle(
                session,
                claimed,
                now=now,
                store=rt.store,
                settings=rt.settings,
                wecom_answers=answers,
            )
            session.commit()
            return "done"
    except redis.RedisError:
        # Redis gone (it keeps WeCom's access token) says nothing about the message: it is
        # still pending, untouched; the messages after it may need Redis too, so the run ends
        # here and the first drain after Redis is back takes them all.
        raise
    except Exception as error:  # closing the session rolled back whatever it had done
        failure = error
    # WeCom being down says nothing about the message: wait for it without using up attempts.
    counts = not isinstance(failure, WeComUnavailable)
    with rt.db.session(lock_for_write=True) as session:
        status = inbound.record_failure(
            session,
            message_id=message_id,
            error=redact(f"{type(failure).__name__}: {failure}"),
            max_attempts=MAX_ATTEMPTS,
            counts=counts,
        )
        if status == InboundStatus.FAILED:
            message = session.get(InboundMessage, message_id)
            assert message is not None  # inbound rows are never deleted
            dispatch.tell_failed(session, message, now=rt.clock())
        session.commit()
    if status == InboundStatus.FAILED:
        log.error("inbound message %d failed for good", message_id, exc_info=failure)
        return "failed"
    log.warning("inbound message %d failed; a later run retries it", message_id, exc_info=failure)
    return "retry"
