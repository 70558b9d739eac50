"""Email templates managers keep, and the emails reps send from a customer's profile."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, JSONType, UTCDateTime
from models.delivery import DeliveryStatus


class EmailTemplate(Base):
    """A company template (team_id None, the boss's) or a team's (its manager's)."""

    __tablename__ = "email_templates"
    # One name per scope; a plain (team_id, name) key would let NULL teams repeat a name.
    __table_args__ = (
        Index(
            "uq_email_templates_scope_name",
            func.coalesce(text("team_id"), 0),
            "name",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    name: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))  # may hold placeholders, like the body
    body: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    attachments: Mapped[list[EmailTemplateAttachment]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="EmailTemplateAttachment.id"
    )


class EmailTemplateAttachment(Base):
    """A file every email from the template carries (a product brochure PDF)."""

    __tablename__ = "email_template_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(
        ForeignKey("email_templates.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255))


class OutgoingEmail(Base):
    """One email to a customer, rendered when the rep sent it and delivered by a job."""

    __tablename__ = "outgoing_emails"
    __table_args__ = (
        Index("ix_outgoing_emails_status_next", "status", "next_attempt_at"),
        Index("ix_outgoing_emails_customer", "customer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("email_templates.id", ondelete="SET NULL")
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # [{filename, content_type, storage_key}]: the template's files at the moment of sending.
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
    follow_up_id: Mapped[int | None] = mapped_column(
        ForeignKey("follow_ups.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
