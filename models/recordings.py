"""Recordings: an audio attachment of a follow-up on its way to a transcript (crm/recordings.py),
a voice message a member sent the app, on its way to being read as a `#跟进#` command, or an
archived voice message of a chat, on its way into its conversation window's follow-up."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class RecordingStatus(StrEnum):
    QUEUED = "queued"  # waiting for a transcription worker (again, after a stalled run)
    RUNNING = "running"  # claimed by a worker at started_at
    DONE = "done"  # transcribed (an empty transcript: nothing was said)
    FAILED = "failed"  # not transcribable; reason says why in Chinese, the file is kept


class Recording(Base):
    __tablename__ = "recordings"
    # The sweep looks for running recordings started before the lease and queued ones waiting
    # since before it (workers/transcription.py).
    __table_args__ = (Index("ix_recordings_status_started", "status", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # None for a voice command until its transcript logs a follow-up, and for an archived voice
    # message until its window writes one (then it is attached).
    follow_up_id: Mapped[int | None] = mapped_column(
        ForeignKey("follow_ups.id", ondelete="CASCADE"), index=True
    )
    # The stored audio file; one recording per attachment. None while a voice command has no
    # follow-up: its file is then `storage_key`.
    attachment_id: Mapped[int | None] = mapped_column(
        ForeignKey("attachments.id", ondelete="CASCADE"), unique=True
    )
    # A voice message to the app: the member whose command it is, and its stored file (kept
    # here so the follow-up its command logs can take it as an attachment).
    member_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # An archived voice message (crm/chat_capture.py) whose fetched bytes are `storage_key`.
    archive_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("archive_messages.id", ondelete="CASCADE"), unique=True
    )
    storage_key: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=RecordingStatus.QUEUED)
    reason: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims so far
    transcript: Mapped[str | None] = mapped_column(Text)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
