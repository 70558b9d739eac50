"""Follow-up records (跟进日志) and the files attached to them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, JSONType, UTCDateTime
from models.recordings import Recording
from models.users import User


class FollowUp(Base):
    __tablename__ = "follow_ups"
    __table_args__ = (
        Index("ix_follow_ups_customer_time", "customer_id", "happened_at"),
        # The KPI panel reads a period's follow-ups and the plans due in it (crm/analytics/kpi.py).
        Index("ix_follow_ups_happened_at", "happened_at"),
        Index("ix_follow_ups_next_follow_up_on", "next_follow_up_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    happened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    next_plan: Mapped[str | None] = mapped_column(Text)
    next_follow_up_on: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    transcript: Mapped[str | None] = mapped_column(Text)
    # A chat-made follow-up: {"categories", "keywords", "files", "window_id"}; None when typed.
    capture: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Set when the chat it came from was recalled and no keyword remains (never silently kept).
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    author: Mapped[User | None] = relationship(lazy="raise")
    attachments: Mapped[list[Attachment]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="Attachment.id"
    )
    # Its audio attachments' transcriptions (models/recordings.py, crm/recordings.py).
    recordings: Mapped[list[Recording]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="Recording.id"
    )


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    follow_up_id: Mapped[int] = mapped_column(
        ForeignKey("follow_ups.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255))
