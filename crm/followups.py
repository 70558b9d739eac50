"""Follow-up records (跟进日志) with their attachments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

from sqlalchemy.orm import Session

from crm import audit, recordings, similar
from crm.actors import Actor
from crm.customers import get_customer
from crm.errors import Invalid
from crm.rules import triggers
from crm.storage import FileStore
from crm.vocab import ContactMethod, FollowUpSource
from models import Attachment, Customer, FollowUp, Recording

MAX_ATTACHMENTS = 10
MAX_SUMMARY_CHARS = 5000
# Quotes, contracts, photos of the site, call recordings (WeCom's .amr, WeChat's .silk, phones'
# .m4a/.mp3, recorders' .wav, .ogg): what reps really attach.
ALLOWED_ATTACHMENT_TYPES = {
    ".pdf": "application/pdf",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".amr": "audio/amr",
    ".silk": "audio/silk",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
}
# A signature is bytes that must stand at given offsets; a type lists the signatures it may start
# with, so HTML renamed "call.mp3" or an .exe renamed "quote.pdf" is not stored.
Signature = tuple[tuple[int, bytes], ...]


def _prefixes(*prefixes: bytes) -> tuple[Signature, ...]:
    return tuple(((0, prefix),) for prefix in prefixes)


_ZIP = _prefixes(b"PK\x03\x04")
_JPEG = _prefixes(b"\xff\xd8\xff")
SIGNATURES: dict[str, tuple[Signature, ...]] = {
    ".pdf": _prefixes(b"%PDF"),
    ".jpg": _JPEG,
    ".jpeg": _JPEG,
    ".png": _prefixes(b"\x89PNG"),
    ".xlsx": _ZIP,
    ".docx": _ZIP,
    ".amr": _prefixes(b"#!AMR"),  # AMR and AMR-WB ("#!AMR-WB")
    ".silk": _prefixes(b"#!SILK_V3", b"\x02#!SILK_V3"),  # WeChat's voice adds a 0x02 byte
    # An ID3 tag, or straight into an MPEG audio frame: 11 sync bits, then MPEG 1, 2 or 2.5,
    # layer III, with or without CRC.
    ".mp3": _prefixes(
        b"ID3", b"\xff\xfb", b"\xff\xfa", b"\xff\xf3", b"\xff\xf2", b"\xff\xe3", b"\xff\xe2"
    ),
    ".m4a": (((4, b"ftyp"),),),  # an MP4 container: its first box is "ftyp"
    ".wav": (((0, b"RIFF"), (8, b"WAVE")),),
    ".ogg": _prefixes(b"OggS"),
}


@dataclass(frozen=True)
class Upload:
    """A file as an edge received it."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class StoredFile:
    """A checked file already in the FileStore, as an attachment row names it."""

    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    storage_key: str


def log_follow_up(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    method: str,
    summary: str,
    now: datetime,
    store: FileStore,
    max_attachment_bytes: int,
    happened_at: datetime | None = None,
    next_plan: str | None = None,
    next_follow_up_on: date | None = None,
    source: str = FollowUpSource.MANUAL,
    transcript: str | None = None,
    uploads: list[Upload] | None = None,
    voice: Recording | None = None,
) -> FollowUp:
    """Record a contact with a customer in scope; files are checked before anything is written.
    `voice`: the transcribed voice command this follow-up is read from (crm/recordings.py); its
    audio becomes an attachment and its transcript the follow-up's."""
    customer = get_customer(session, actor=actor, customer_id=customer_id, for_update=True)
    try:
        method = ContactMethod(method)
    except ValueError:
        choices = "、".join(m.value for m in ContactMethod)
        raise Invalid(f"跟进方式只能是：{choices}", field="method") from None
    summary = (summary or "").strip()
    checked = [check_upload(u, max_attachment_bytes) for u in uploads or []]
    if not summary and any(recordings.is_audio(content_type) for _, _, content_type in checked):
        summary = recordings.VOICE_SUMMARY  # a voice-only follow-up: its words are transcribed
    if not summary:
        raise Invalid("跟进内容不能为空", code="required", field="summary")
    if len(summary) > MAX_SUMMARY_CHARS:
        raise Invalid(f"跟进内容不能超过{MAX_SUMMARY_CHARS}字", field="summary")
    happened_at = happened_at or now
    if happened_at > now:
        raise Invalid("跟进时间不能晚于现在", field="happened_at")
    if next_follow_up_on is not None and next_follow_up_on < happened_at.date():
        raise Invalid("下次跟进日期不能早于本次跟进", field="next_follow_up_on")
    if len(checked) > MAX_ATTACHMENTS:
        raise Invalid(f"附件最多{MAX_ATTACHMENTS}个", field="files")
    files = []
    for upload, suffix, content_type in checked:
        key, digest = store.save(upload.data, suffix=suffix)
        files.append(StoredFile(upload.filename, content_type, len(upload.data), digest, key))
    return add_follow_up(
        session,
        actor=actor,
        customer=customer,
        method=method,
        summary=summary,
        happened_at=happened_at,
        now=now,
        files=files,
        next_plan=next_plan,
        next_follow_up_on=next_follow_up_on,
        source=source,
        transcript=transcript,
        transcribe_audio=True,
        voice=voice,
    )


def add_follow_up(
    session: Session,
    *,
    actor: Actor,
    customer: Customer,
    method: ContactMethod,
    summary: str,
    happened_at: datetime,
    now: datetime,
    files: Sequence[StoredFile] = (),
    next_plan: str | None = None,
    next_follow_up_on: date | None = None,
    source: str = FollowUpSource.MANUAL,
    transcript: str | None = None,
    named_files: Sequence[str] = (),
    capture: Mapping[str, Any] | None = None,
    transcribe_audio: bool = False,
    voice: Recording | None = None,
) -> FollowUp:
    """Write a checked follow-up of a customer the caller loaded for update, then run the
    follow-up triggers: typed, captured and emailed follow-ups all take this one path.

    `named_files` are files known by name only (a chat's file messages, whose bytes are not
    stored): the triggers see them as attachments all the same. `capture` is what a chat
    capture found (crm/chat_capture.py).

    `transcribe_audio`: each audio file gets a Recording (crm/recordings.py) and, when there is
    one, the triggers are deferred until all are transcribed or failed; they then see the
    follow-up's stored attachments (`named_files` are not kept for them).

    `voice`: a transcribed voice command's recording, attached to this follow-up; the triggers
    then run with its transcript (`crm.recordings.attach_voice`)."""
    follow_up = FollowUp(
        customer_id=customer.id,
        author_id=actor.user_id,
        happened_at=happened_at,
        method=method,
        summary=summary,
        next_plan=(next_plan or "").strip() or None,
        next_follow_up_on=next_follow_up_on,
        source=source,
        transcript=transcript,
        capture=dict(capture) if capture is not None else None,
        created_at=now,
    )
    for file in files:
        follow_up.attachments.append(
            Attachment(
                filename=file.filename,
                content_type=file.content_type,
                size_bytes=file.size_bytes,
                sha256=file.sha256,
                storage_key=file.storage_key,
            )
        )
    session.add(follow_up)
    if customer.last_follow_up_at is None or happened_at >= customer.last_follow_up_at:
        customer.last_follow_up_at = happened_at
        customer.next_follow_up_on = follow_up.next_follow_up_on  # the newest plan counts
    customer.updated_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        entity="customer",
        entity_id=customer.id,
        action="follow_up",
        before={},
        after={"follow_up_id": follow_up.id, "method": method.value},
        now=now,
    )
    similar.index_follow_up(session, customer=customer, follow_up=follow_up, now=now)
    if transcribe_audio and any(recordings.is_audio(file.content_type) for file in files):
        recordings.queue_recordings(
            session, follow_up=follow_up, attachments=follow_up.attachments, now=now
        )
        return follow_up  # crm.recordings runs the triggers with the transcript
    if voice is not None:
        recordings.attach_voice(session, follow_up=follow_up, voice=voice, now=now)
        return follow_up
    triggers.on_event(
        session,
        customer=customer,
        event="follow_up_created",
        now=now,
        data=triggers.follow_up_data(
            summary=summary,
            transcript=transcript,
            method=method.value,
            filenames=[*(file.filename for file in files), *named_files],
        ),
    )
    return follow_up


def check_upload(
    upload: Upload, max_bytes: int, allowed_types: Mapping[str, str] = ALLOWED_ATTACHMENT_TYPES
) -> tuple[Upload, str, str]:
    """The upload with a clean file name, its suffix and content type; Invalid when its type is
    not in `allowed_types` (suffix → content type), it is empty or too large, or its first
    bytes belie its suffix."""
    name = PurePath(upload.filename.replace("\\", "/")).name.strip()
    suffix = PurePath(name).suffix.lower()
    if not name or suffix not in allowed_types:
        allowed = "、".join(sorted(s.lstrip(".") for s in allowed_types))
        raise Invalid(
            f"附件「{name}」类型不支持，只能上传：{allowed}",
            code="bad_attachment_type",
            field="files",
        )
    if not upload.data:
        raise Invalid(f"附件「{name}」是空文件", code="empty_attachment", field="files")
    if len(upload.data) > max_bytes:
        raise Invalid(
            f"附件「{name}」超过 {max_bytes // (1024 * 1024)} MB 上限",
            code="attachment_too_large",
            field="files",
        )
    if not _has_signature(upload.data, SIGNATURES[suffix]):
        raise Invalid(
            f"附件「{name}」的内容与扩展名不符", code="bad_attachment_type", field="files"
        )
    return Upload(filename=name, data=upload.data), suffix, allowed_types[suffix]


def _has_signature(data: bytes, signatures: tuple[Signature, ...]) -> bool:
    return any(
        all(data[offset : offset + len(part)] == part for offset, part in signature)
        for signature in signatures
    )
