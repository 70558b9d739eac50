"""Messages waiting to go out through WeCom's message API, and what became of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, JSONType, UTCDateTime
from models.delivery import DeliveryStatus


class OutboxMessage(Base):
    """One app message to one member, written in the transaction that decided to send it."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    touser: Mapped[str] = mapped_column(String(64))  # the recipient's WeCom userid
    msgtype: Mapped[str] = mapped_column(String(16))  # text / markdown / textcard / template_card
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    # Whoever queues a message may name it, so that deciding twice still sends it once.
    dedupe_key: Mapped[str | None] = mapped_column(String(191), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
