"""The transcription job: one recording's stored audio becomes its transcript (crm/recordings.py).

The job claims the recording in a short transaction, reads the file and transcribes it with no
transaction open (minutes of CPU on a long recording), then finishes or fails it in a second
one, which also runs the follow-up's deferred triggers (an archived voice message's finishing
starts the capture job instead, which settles its conversation window). The speech model is
the worker process's one (`speech.transcribe.shared_transcriber`), loaded before the first
job. A voice message a member sent the app is finished by bot/voice.py, which runs it as their
`#跟进#` command and queues the reply in that same transaction.

A worker killed mid-job leaves the recording `running`; `requeue_stalled_recordings` (periodic)
queues it again once the lease has passed, and fails it after crm.recordings.MAX_ATTEMPTS.
The lease outlasts the job's time limit, so a recording RQ still lets run is never requeued.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import redis

from bot import voice
from crm import recordings
from speech.audio import AudioRejected
from speech.transcribe import shared_transcriber
from workers import context, queues

log = logging.getLogger(__name__)

JOB_TIMEOUT_SECONDS = 1800  # RQ stops a transcription running longer than this
LEASE = timedelta(seconds=JOB_TIMEOUT_SECONDS + 600)  # then its recording counts as stalled
PENDING_KEY = "wecrm:pending:transcribe:{recording_id}"


def enqueue_transcription(connection: redis.Redis, recording_id: int) -> None:
    """Queue the transcription of one recording, once however often it is asked meanwhile (a
    commit, the sweep)."""
    queues.enqueue_once(
        connection,
        transcribe_recording,
        recording_id,
        queue_name=queues.TRANSCRIPTION,
        pending_key=PENDING_KEY.format(recording_id=recording_id),
        pending_seconds=int(LEASE.total_seconds()),
        job_timeout=JOB_TIMEOUT_SECONDS,
    )


def transcribe_recording(recording_id: int) -> str:
    """Claim, transcribe and finish (or fail) one recording; its resulting status, or "skipped"
    when it was not queued (delivered twice, or settled already)."""
    rt = context.runtime()
    rt.redis.delete(PENDING_KEY.format(recording_id=recording_id))
    with rt.db.session(lock_for_write=True) as session:
        claim = recordings.claim(session, recording_id, rt.clock())
        session.commit()
    if claim is None:
        return "skipped"
    try:
        data = rt.store.path(claim.storage_key).read_bytes()
    except FileNotFoundError:
        return _fail(recording_id, recordings.FILE_MISSING_REASON)
    try:
        transcript = shared_transcriber(rt.settings).transcribe(data)
    except AudioRejected as rejected:
        return _fail(recording_id, rejected.message)
    with rt.db.session(lock_for_write=True) as session:
        if claim.member_id is not None:
            voice.answer(
                session,
                recording_id,
                transcript.text,
                rt.clock(),
                store=rt.store,
                settings=rt.settings,
                language=transcript.language,
                duration_seconds=transcript.duration_seconds,
            )
        else:
            recordings.finish(
                session,
                recording_id,
                transcript.text,
                rt.clock(),
                language=transcript.language,
                duration_seconds=transcript.duration_seconds,
            )
        session.commit()
    return "done"


def _fail(recording_id: int, reason: str) -> str:
    rt = context.runtime()
    with rt.db.session(lock_for_write=True) as session:
        recordings.fail(session, recording_id, reason, rt.clock())
        session.commit()
    log.info("recording %s not transcribed: %s", recording_id, reason)
    return "failed"


def requeue_stalled_recordings() -> int:
    """Queue again the recordings whose worker stopped (and those whose job was lost); the
    number of recordings requeued or failed."""
    rt = context.runtime()
    with rt.db.session(lock_for_write=True) as session:
        result = recordings.requeue_stalled(session, rt.clock(), LEASE)
        session.commit()  # the jobs start after the commit (crm.after_commit.TRANSCRIBE)
    if result.requeued or result.failed:
        log.warning(
            "stalled recordings: %d queued again, %d failed", result.requeued, result.failed
        )
    return result.requeued + result.failed
