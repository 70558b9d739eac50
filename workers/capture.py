"""The chat-capture job: stored archive messages become follow-ups (crm/chat_capture.py).

Each batch asks WeCom what it needs first (who agreed to archiving, the profiles of contacts
not yet customers), then captures in one short write transaction and commits it, so a worker
killed mid-run loses nothing committed and the next run picks up the messages still pending.
Queued after a commit that stored messages, and periodically, which also closes the windows
whose half hour has passed.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import redis

from bot import dispatch
from crm import chat_capture
from crm.contacts import ContactInfo
from wecom.client import WeComError, WeComUnavailable
from wecrm.runtime import Runtime
from workers import context, jobs, queues

log = logging.getLogger(__name__)

# One capture run waits at a time: a burst of stored batches costs one SET NX each.
CAPTURE_LOCK_KEY = "wecrm:lock:capture_chats"
CAPTURE_LOCK_SECONDS = 600
BATCH_SIZE = 200  # messages per transaction
MAX_BATCHES_PER_RUN = 50  # then a fresh job continues, so one run stays bounded
CONSENT_PAIRS_PER_CALL = 100


def enqueue_capture(connection: redis.Redis) -> None:
    """Start one capture run, however many imports stored messages meanwhile."""
    queues.enqueue_once(
        connection,
        capture_chats,
        queue_name=queues.CAPTURE,
        pending_key=CAPTURE_LOCK_KEY,
        pending_seconds=CAPTURE_LOCK_SECONDS,
        job_timeout=1800,
    )


def capture_chats() -> dict[str, int]:
    """Capture pending messages batch by batch, and close the windows whose time is up; a run
    that has more to do than MAX_BATCHES_PER_RUN hands over to a new job."""
    rt = context.runtime()
    rt.redis.delete(CAPTURE_LOCK_KEY)  # messages stored from now on need another run
    counts, finished = run_capture(rt, max_batches=MAX_BATCHES_PER_RUN)
    if not finished:
        enqueue_capture(rt.redis)
    if counts:
        log.info("chat capture: %s", counts)
    return counts


def run_capture(rt: Runtime, *, max_batches: int | None = None) -> tuple[dict[str, int], bool]:
    """Capture batch after batch, each committed; the counts, and whether nothing is left."""
    window = timedelta(minutes=rt.settings.chat_window_minutes)
    totals: Counter[str] = Counter()
    batches = 0
    while max_batches is None or batches < max_batches:
        with rt.db.session() as session:  # WeCom is asked before the write transaction
            needs = chat_capture.needs_from_wecom(session, now=rt.clock(), limit=BATCH_SIZE)
        consents = _ask_consent(rt, needs.consent_pairs)
        profiles = _ask_profiles(rt, needs.contacts)
        with rt.db.session(lock_for_write=True) as session:
            result = chat_capture.capture(
                session,
                now=rt.clock(),
                window=window,
                limit=BATCH_SIZE,
                consents=consents,
                contact_profiles=profiles,
                assume_consent=not rt.settings.archive_consent_checkable,
            )
            session.commit()
        totals.update(result.as_dict())
        batches += 1
        if not result.more:
            return {name: count for name, count in totals.items() if count}, True
        jobs.let_writers_in(rt.db)
    return {name: count for name, count in totals.items() if count}, False


def _ask_consent(rt: Runtime, pairs: list[tuple[str, str]]) -> list[chat_capture.ConsentAnswer]:
    """WeCom's check_single_agree for the pairs; none asked without the archive secret.
    WeComUnavailable propagates: the run fails and the messages wait, still pending."""
    if not pairs or not rt.settings.archive_consent_checkable:
        return []
    answers = []
    for start in range(0, len(pairs), CONSENT_PAIRS_PER_CALL):
        chunk = pairs[start : start + CONSENT_PAIRS_PER_CALL]
        for item in rt.archive_wecom.check_single_agree(chunk):
            answers.append(
                chat_capture.ConsentAnswer(
                    userid=str(item.get("userid") or ""),
                    external_userid=str(item.get("exteranalopenid") or ""),
                    agreed=item.get("agree_status") == "Agree",
                )
            )
    return answers


def _ask_profiles(rt: Runtime, wanted: list[tuple[str, str]]) -> dict[str, ContactInfo]:
    """The WeChat profiles of contacts capture will make customers of (externalcontact/get)."""
    if not wanted or not rt.settings.wecom_configured:
        return {}
    profiles = {}
    for external_userid, rep in wanted:
        try:
            profiles[external_userid] = dispatch.contact_info(rt.wecom, external_userid, rep)
        except WeComUnavailable:
            raise
        except WeComError as error:
            log.warning("externalcontact/get refused (%s); the profile starts unnamed", error)
    return profiles
