"""Recordings: a follow-up's audio attachments become its transcript, then its triggers run.

A follow-up logged with audio files (`crm.followups.log_follow_up`: .amr .silk .mp3 .m4a .wav
.ogg) gets one `Recording` per audio attachment, queued for the transcription job
(workers/transcription.py, its own queue) once the transaction commits, and its follow-up
triggers are DEFERRED: they run once, when the last of its recordings is done or failed, on the
summary together with everything transcribed, so "已发送正式报价单" said in a recording with a
PDF attached moves 意向 → 报价 exactly as typing it does (and not before the words are known).

Decisions:
- A recording moves queued → running (`claim`, which counts the attempt) → done (`finish`) or
  failed (`fail`, with a Chinese reason). The stored file is an Attachment of the follow-up and
  is kept whatever happens, downloadable like any other attachment.
- `finish` and `fail` act on a recording that is not done or failed yet, and do nothing after
  that: a job delivered twice, or a slow worker whose recording was requeued and transcribed by
  another, never writes a second transcript or runs the triggers twice. They lock the recording,
  then its follow-up, so of two recordings of one follow-up finishing at once exactly one sees
  all of them settled and runs the triggers.
- The follow-up's transcript is the transcripts of its done recordings, in upload order, one
  per line (a silent recording transcribes to "" and adds nothing). Each finish rewrites it, so
  the API shows what is known while other recordings are still running.
- The keyword capture (crm/keywords.py, the dictionary in force for the customer's team) reads
  the transcript and is kept in the follow-up's `capture` as chat capture keeps it
  (categories, keywords, files); it runs with the triggers, once the transcript is complete.
- A worker killed mid-job leaves its recording `running`; the sweep (`requeue_stalled`) puts a
  recording running longer than the lease back in the queue, and fails it after MAX_ATTEMPTS
  claims (a file that kills every worker that opens it must not loop forever). It also starts
  the job again for recordings queued longer than the lease (an enqueue Redis lost).
- A voice message a member sends the app (bot/voice.py) is a recording too, a "voice command":
  no follow-up yet, its sender in `member_id` and its stored file on the recording itself. It
  is claimed, retried and settled exactly like the others; `finish_voice_command` marks it done
  and hands it back for the bot to read the transcript as a `#跟进#` command by that member, and
  the follow-up that command logs takes the file as its attachment (`attach_voice`), with the
  transcript, capture and triggers of any recorded follow-up. A failed one tells the member.
- An archived voice message of a chat (crm/chat_capture.py) whose bytes the puller fetched is a
  recording too, queued when capture files the message into its conversation window
  (`queue_archived`): no follow-up yet, its message in `archive_message_id` and its stored file
  on the recording. It is claimed, retried and settled exactly like the others; when it is done
  or failed, the capture job starts, which settles its window once none of the window's voice
  messages waits any more. The follow-up the window writes takes the voice file as its
  attachment and the recording with it (`link_archived`), and the window's transcripts as its
  transcript; its triggers run there, with the window's (chat capture's) keywords.
- A voice-only follow-up (audio attached, no text typed) is allowed: its summary is the
  placeholder VOICE_SUMMARY ("语音跟进"), and its words arrive as the transcript.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm import after_commit, keywords, similar
from crm.notifications import notify
from crm.rules import triggers
from crm.storage import FileStore
from models import ArchiveMessage, Attachment, Customer, FollowUp, Recording, User
from models.recordings import RecordingStatus

AUDIO_CONTENT_TYPE_PREFIX = "audio/"  # crm.followups.ALLOWED_ATTACHMENT_TYPES names them
VOICE_SUMMARY = "语音跟进"  # the summary of a follow-up that is only a recording
MAX_ATTEMPTS = 3  # claims before a recording whose worker keeps stopping is failed
REASON_MAX_CHARS = 255  # Recording.reason
STALLED_REASON = "转写多次中断（处理录音的后台程序停止），请重新上传录音或直接填写跟进内容"
FILE_MISSING_REASON = "录音文件已不存在，无法转写"
SETTLED = (RecordingStatus.DONE, RecordingStatus.FAILED)
# WeCom voice messages are AMR-NB (or SILK under the same name: speech.audio sniffs the bytes).
VOICE_FILENAME = "语音消息.amr"
VOICE_CONTENT_TYPE = "audio/amr"
VOICE_FAILED_REPLY = (
    "这条语音没能识别（{reason}）。请再发一次，或发送文字命令 #跟进# <客户> <内容>。"
)


@dataclass(frozen=True)
class Claim:
    """What a worker needs to transcribe a recording it claimed."""

    recording_id: int
    storage_key: str
    filename: str
    attempt: int
    member_id: int | None = None  # a voice command's sender (bot/voice.py reads it)


@dataclass(frozen=True)
class SweepResult:
    requeued: int  # running past the lease, queued again
    failed: int  # running past the lease for the last allowed time
    restarted: int  # queued past the lease: the job started again


def is_audio(content_type: str) -> bool:
    """Whether a stored attachment of this content type is a recording to transcribe."""
    return content_type.startswith(AUDIO_CONTENT_TYPE_PREFIX)


def queue_recordings(
    session: Session, *, follow_up: FollowUp, attachments: Sequence[Attachment], now: datetime
) -> list[Recording]:
    """A queued recording for each audio file among a flushed follow-up's `attachments`; the
    transcription job of each starts after the commit."""
    recordings = [
        Recording(
            follow_up_id=follow_up.id,
            attachment_id=attachment.id,
            status=RecordingStatus.QUEUED,
            attempts=0,
            created_at=now,
        )
        for attachment in attachments
        if is_audio(attachment.content_type)
    ]
    session.add_all(recordings)
    session.flush()
    for recording in recordings:
        after_commit.start(session, after_commit.TRANSCRIBE, recording.id)
    return recordings


def queue_voice_command(
    session: Session, *, member: User, data: bytes, store: FileStore, now: datetime
) -> Recording:
    """Keep a member's voice message to the app and queue its transcription; what the member
    said is then read as their `#跟进#` command (bot/voice.py)."""
    storage_key, digest = store.save(data, suffix=".amr")
    recording = Recording(
        follow_up_id=None,
        attachment_id=None,
        member_id=member.id,
        storage_key=storage_key,
        size_bytes=len(data),
        sha256=digest,
        status=RecordingStatus.QUEUED,
        attempts=0,
        created_at=now,
    )
    session.add(recording)
    session.flush()
    after_commit.start(session, after_commit.TRANSCRIBE, recording.id)
    return recording


def queue_archived(
    session: Session, *, messages: Sequence[ArchiveMessage], now: datetime
) -> list[Recording]:
    """A queued recording for each archived voice message among `messages` whose bytes were
    fetched (`media`); the transcription job of each starts after the commit."""
    recordings = [
        Recording(
            archive_message_id=message.id,
            storage_key=message.media["storage_key"],
            size_bytes=message.media["size_bytes"],
            sha256=message.media["sha256"],
            status=RecordingStatus.QUEUED,
            attempts=0,
            created_at=now,
        )
        for message in messages
        if message.media
    ]
    session.add_all(recordings)
    session.flush()
    for recording in recordings:
        after_commit.start(session, after_commit.TRANSCRIBE, recording.id)
    return recordings


def link_archived(
    session: Session, *, follow_up: FollowUp, recordings: Sequence[Recording]
) -> None:
    """The settled recordings of archived voice messages belong to the flushed follow-up their
    window wrote, each with the attachment that holds its file."""
    if not recordings:
        return
    by_key = {
        attachment.storage_key: attachment
        for attachment in session.scalars(
            select(Attachment).where(Attachment.follow_up_id == follow_up.id)
        )
    }
    for recording in recordings:
        attachment = by_key.get(recording.storage_key or "")
        if attachment is not None:
            recording.follow_up_id = follow_up.id
            recording.attachment_id = attachment.id
    session.flush()


def claim(session: Session, recording_id: int, now: datetime) -> Claim | None:
    """Move a queued recording to running and count the attempt; None when it is not queued (a
    job delivered twice, or a recording another worker holds, finished or failed)."""
    claimed = session.execute(
        update(Recording)
        .where(Recording.id == recording_id, Recording.status == RecordingStatus.QUEUED)
        .values(status=RecordingStatus.RUNNING, attempts=Recording.attempts + 1, started_at=now)
        .returning(
            Recording.attachment_id, Recording.attempts, Recording.member_id, Recording.storage_key
        )
    ).first()
    if claimed is None:
        return None
    if claimed.attachment_id is None:  # a voice command or archived voice not in a follow-up yet
        assert claimed.storage_key is not None
        return Claim(
            recording_id, claimed.storage_key, VOICE_FILENAME, claimed.attempts, claimed.member_id
        )
    attachment = session.get(Attachment, claimed.attachment_id)
    assert attachment is not None  # the recording's foreign key cascades
    return Claim(
        recording_id,
        attachment.storage_key,
        attachment.filename,
        claimed.attempts,
        claimed.member_id,
    )


def finish(
    session: Session,
    recording_id: int,
    transcript: str,
    now: datetime,
    *,
    language: str | None = None,
    duration_seconds: float | None = None,
) -> bool:
    """Keep a recording's transcript and write it into its follow-up, where the last recording
    of the follow-up to settle runs the capture and the deferred triggers; an archived voice
    message's starts the capture job that settles its window. False (and nothing written) when
    the recording is gone or already done or failed."""
    recording = _lock_unsettled(session, recording_id)
    if recording is None:
        return False
    assert recording.member_id is None, "a voice command finishes as one"
    _mark_done(recording, transcript, now, language, duration_seconds)
    _settled(session, recording, now)
    return True


def finish_voice_command(
    session: Session,
    recording_id: int,
    transcript: str,
    now: datetime,
    *,
    language: str | None = None,
    duration_seconds: float | None = None,
) -> Recording | None:
    """Keep a voice command's transcript; the recording, for the bot to read the transcript as
    its member's command in this transaction, or None (nothing written) when it is gone or
    already done or failed: a job delivered twice never runs the command twice."""
    recording = _lock_unsettled(session, recording_id)
    if recording is None:
        return None
    assert recording.member_id is not None and recording.follow_up_id is None
    _mark_done(recording, transcript, now, language, duration_seconds)
    session.flush()
    return recording


def attach_voice(session: Session, *, follow_up: FollowUp, voice: Recording, now: datetime) -> None:
    """A flushed follow-up logged by a transcribed voice command: the voice file becomes its
    attachment and the transcript its transcript; then the capture and the follow-up triggers
    run on summary and transcript, as for any follow-up whose recordings are done."""
    assert voice.status == RecordingStatus.DONE and voice.storage_key is not None
    attachment = Attachment(
        follow_up_id=follow_up.id,
        filename=VOICE_FILENAME,
        content_type=VOICE_CONTENT_TYPE,
        size_bytes=voice.size_bytes or 0,
        sha256=voice.sha256 or "",
        storage_key=voice.storage_key,
    )
    session.add(attachment)
    session.flush()
    voice.follow_up_id = follow_up.id
    voice.attachment_id = attachment.id
    _settle(session, follow_up.id, now)


def _mark_done(
    recording: Recording,
    transcript: str,
    now: datetime,
    language: str | None,
    duration_seconds: float | None,
) -> None:
    recording.status = RecordingStatus.DONE
    recording.transcript = transcript.strip()
    recording.language = language
    recording.duration_seconds = duration_seconds
    recording.reason = None
    recording.finished_at = now


def fail(session: Session, recording_id: int, reason: str, now: datetime) -> bool:
    """Record why a recording cannot be transcribed (its file stays); the last recording of the
    follow-up to settle runs the deferred triggers on what is known, an archived voice
    message's window settles without its words. False when the recording is gone or already
    done or failed."""
    recording = _lock_unsettled(session, recording_id)
    if recording is None:
        return False
    recording.status = RecordingStatus.FAILED
    recording.reason = reason[:REASON_MAX_CHARS]
    recording.finished_at = now
    if recording.follow_up_id is not None or recording.archive_message_id is not None:
        _settled(session, recording, now)
    elif recording.member_id is not None:  # a voice command: its sender waits for an answer
        member = session.get(User, recording.member_id)
        assert member is not None
        notify(
            session,
            recipients=[member],
            title="",
            text=VOICE_FAILED_REPLY.format(reason=recording.reason),
            now=now,
            msgtype="text",
            dedupe_key=f"voice-reply:{recording.id}",
        )
    return True


def requeue_stalled(session: Session, now: datetime, lease: timedelta) -> SweepResult:
    """Queue again the recordings running longer than `lease` (their worker stopped), fail
    those claimed MAX_ATTEMPTS times, and start the job again for recordings queued longer
    than `lease`. `lease` must outlast the job's own time limit."""
    cutoff = now - lease
    waiting = session.scalars(
        select(Recording.id).where(
            Recording.status == RecordingStatus.QUEUED,
            func.coalesce(Recording.started_at, Recording.created_at) < cutoff,
        )
    ).all()
    for waiting_id in waiting:
        after_commit.start(session, after_commit.TRANSCRIBE, waiting_id)
    stalled = session.scalars(
        select(Recording)
        .where(Recording.status == RecordingStatus.RUNNING, Recording.started_at < cutoff)
        .order_by(Recording.id)
        .with_for_update(skip_locked=True)  # one being finished right now is not stalled
        .execution_options(populate_existing=True)
    ).all()
    requeued = failed = 0
    for recording in stalled:
        if recording.attempts >= MAX_ATTEMPTS:
            failed += fail(session, recording.id, STALLED_REASON, now)
        else:
            recording.status = RecordingStatus.QUEUED
            after_commit.start(session, after_commit.TRANSCRIBE, recording.id)
            requeued += 1
    session.flush()
    return SweepResult(requeued=requeued, failed=failed, restarted=len(waiting))


def _settled(session: Session, recording: Recording, now: datetime) -> None:
    """A recording of a follow-up or of an archived voice message is done or failed."""
    if recording.archive_message_id is not None:
        # Its window settles in a capture run (it may wait for other voice messages), and a
        # recalled message's recording settles no window: the run then finds nothing to do.
        session.flush()
        after_commit.start(session, after_commit.CAPTURE)
    else:
        assert recording.follow_up_id is not None
        _settle(session, recording.follow_up_id, now)


def _lock_unsettled(session: Session, recording_id: int) -> Recording | None:
    recording = session.get(Recording, recording_id, with_for_update=True, populate_existing=True)
    if recording is None or recording.status in SETTLED:
        return None
    return recording


def _settle(session: Session, follow_up_id: int, now: datetime) -> None:
    """Rewrite the follow-up's transcript from its done recordings; when none is left queued or
    running, run the keyword capture and the follow-up triggers it deferred."""
    # Locked, and read afresh: a sibling recording finished by another worker is seen settled.
    follow_up = session.get(FollowUp, follow_up_id, with_for_update=True, populate_existing=True)
    assert follow_up is not None  # the recording's foreign key cascades
    session.flush()  # this recording's new status, for the query below
    rows = session.execute(
        select(Recording.status, Recording.transcript)
        .where(Recording.follow_up_id == follow_up_id)
        .order_by(Recording.id)
    ).all()
    said = [row.transcript for row in rows if row.status == RecordingStatus.DONE and row.transcript]
    follow_up.transcript = "\n".join(said) or None
    if any(row.status not in SETTLED for row in rows):
        return
    customer = session.get(Customer, follow_up.customer_id, with_for_update=True)
    assert customer is not None
    filenames = session.scalars(
        select(Attachment.filename).where(Attachment.follow_up_id == follow_up_id)
    ).all()
    if follow_up.transcript:
        hits = keywords.dictionary_for(session, customer.team_id).match(follow_up.transcript)
        follow_up.capture = {
            "categories": list(hits.categories),
            "keywords": list(hits.keywords),
            "files": [],
        }
    session.flush()
    similar.reindex(session, now=now, customer_ids=[customer.id])  # the transcript's words
    triggers.on_event(
        session,
        customer=customer,
        event="follow_up_created",
        now=now,
        data=triggers.follow_up_data(
            summary=follow_up.summary,
            transcript=follow_up.transcript,
            method=follow_up.method,
            filenames=filenames,
        ),
    )
