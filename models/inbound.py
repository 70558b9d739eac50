"""What WeCom sent to the callback: stored before the answer, worked on by a job afterwards."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, JSONType, UTCDateTime
from models.users import User


class InboundStatus(StrEnum):
    PENDING = "pending"  # stored, waiting for the processing job
    DONE = "done"
    FAILED = "failed"  # gave up after the last attempt


class InboundMessage(Base):
    """One decrypted message or event; `dedupe_key` makes WeCom's retries land on the same row."""

    __tablename__ = "inbound_messages"
    __table_args__ = (Index("ix_inbound_status_received", "status", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # msg:<MsgId> for messages; event:<FromUserName>:<CreateTime>:… for events, which have none.
    dedupe_key: Mapped[str] = mapped_column(String(191), unique=True)
    msg_type: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64))
    from_user: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)  # WeCom's CreateTime
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)  # every field of the decrypted XML
    status: Mapped[str] = mapped_column(String(16), default=InboundStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ContactEvent(Base):
    """A rep adding, editing or deleting a customer's WeChat contact (shown on the timeline)."""

    __tablename__ = "contact_events"
    __table_args__ = (Index("ix_contact_events_customer_at", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # the rep whose contact
    # add_external_contact / edit_external_contact / del_external_contact / del_follow_user
    change_type: Mapped[str] = mapped_column(String(32))
    external_userid: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User | None] = relationship(lazy="raise")
