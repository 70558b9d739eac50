"""The chat archive (会话内容存档): each archived WeCom message stored once, the conversation
windows capture groups them into, members' archive consent and the SDK puller's cursor.

crm/chat_capture.py fills and reads these; crm/chat_messages.py reads a stored payload.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, JSONType, UTCDateTime


class ArchiveOrigin(StrEnum):
    SDK = "sdk"  # pulled with the Finance SDK
    FILE = "file"  # an export file (wecrm import-archive, the upload endpoint)


class ArchiveStatus(StrEnum):
    PENDING = "pending"  # stored, not yet looked at by capture
    CAPTURED = "captured"  # in a conversation window
    SKIPPED = "skipped"  # not captured; skip_reason says why
    RECALLED = "recalled"  # its sender recalled it: withdrawn from any capture
    APPLIED = "applied"  # a recall, applied to the message it names
    # Pulled but not decryptable yet (no private key for its publickey_ver): its encrypted record
    # is kept, and each pull tries again, so adding the key version recovers it.
    UNDECRYPTABLE = "undecryptable"


class ArchiveMessage(Base):
    """One decrypted archive message as WeCom gave it (`payload`), plus what capture made of it."""

    __tablename__ = "archive_messages"
    __table_args__ = (
        # Capture works through pending messages in time order.
        Index("ix_archive_messages_status_sent", "status", "sent_at"),
        Index("ix_archive_messages_window", "window_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    msgid: Mapped[str] = mapped_column(String(128), unique=True)
    origin: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(16))  # send / recall / switch
    msgtype: Mapped[str] = mapped_column(String(32))
    sender: Mapped[str] = mapped_column(String(64))  # WeCom userid or external_userid
    tolist: Mapped[list[str]] = mapped_column(JSONType, default=list)
    roomid: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)  # msgtime (ms) in UTC
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default=ArchiveStatus.PENDING)
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    # A recall: the msgid of the message it withdraws (revoke.pre_msgid).
    recalls_msgid: Mapped[str | None] = mapped_column(String(128), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # the rep
    window_id: Mapped[int | None] = mapped_column(ForeignKey("chat_windows.id"))
    # A file or voice message's bytes fetched by the puller, as crm.followups.StoredFile's fields;
    # a fetched voice message's transcript is its Recording's (models/recordings.py).
    media: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChatWindow(Base):
    """One conversation of a rep with a customer (one chat, or one group) within the window;
    a closed window takes no more messages, and once settled (its voice messages transcribed)
    a keyword hit in it became one follow-up."""

    __tablename__ = "chat_windows"
    __table_args__ = (
        Index("ix_chat_windows_open", "closed_at", "last_at"),
        # Each capture run looks for closed windows not settled yet, oldest first.
        Index("ix_chat_windows_unsettled", "settled_at", "closed_at"),
        Index("ix_chat_windows_conversation", "customer_id", "user_id", "roomid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))  # the rep
    roomid: Mapped[str] = mapped_column(String(64), default="")  # "" for a one-to-one chat
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    rep_wrote: Mapped[bool] = mapped_column(Boolean, default=False)
    categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    keywords: Mapped[list[str]] = mapped_column(JSONType, default=list)
    risks: Mapped[list[str]] = mapped_column(JSONType, default=list)
    follow_up_id: Mapped[int | None] = mapped_column(
        ForeignKey("follow_ups.id", ondelete="SET NULL")
    )
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Its follow-up or contact written: when closed, or later, once its voice messages' recordings
    # are done or failed.
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ArchiveConsent(Base):
    """WeCom's answer to check_single_agree for one member and one external contact."""

    __tablename__ = "archive_consents"
    __table_args__ = (UniqueConstraint("userid", "external_userid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    userid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(64))
    agreed: Mapped[bool] = mapped_column(Boolean)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ArchiveCursor(Base):
    """Where a puller stands: the last archive seq committed ("sdk"); "capture" is the row
    capture runs lock, so two runs never build the same window twice."""

    __tablename__ = "archive_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)  # GetChatData's unsigned 64-bit seq
    last_pull_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
