"""The customer book: customers, their tags and the custom fields managers define."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, JSONType, UTCDateTime
from models.users import User


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        # The views: a rep's list, a team's list, newest first; phone look-ups for duplicates.
        Index("ix_customers_owner_updated", "owner_id", "updated_at"),
        Index("ix_customers_team_updated", "team_id", "updated_at"),
        Index("ix_customers_stage", "stage"),
        # 我的今日任务: a rep's customers whose planned next follow-up is due.
        Index("ix_customers_owner_next_follow_up", "owner_id", "next_follow_up_on"),
        # Room for in-place (HOT) updates when a publish re-grades many rows (migration 0004).
        {"postgresql_with": {"fillfactor": 80}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    company: Mapped[str | None] = mapped_column(String(128))
    region: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(16))
    stage: Mapped[str] = mapped_column(String(16))
    grade: Mapped[str | None] = mapped_column(String(1))
    source: Mapped[str | None] = mapped_column(String(32))
    first_contact_method: Mapped[str | None] = mapped_column(String(32))
    need_match: Mapped[str | None] = mapped_column(String(16))
    quote_feedback: Mapped[str | None] = mapped_column(Text)
    expected_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    external_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    inquiry_count: Mapped[int] = mapped_column(Integer, default=0)
    has_budget: Mapped[bool] = mapped_column(Boolean, default=False)
    attended_expo: Mapped[bool] = mapped_column(Boolean, default=False)
    custom_values: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    completeness: Mapped[int] = mapped_column(Integer, default=0)  # percent of required fields
    last_follow_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The customer's own newest archived chat message (rules: days_since_customer_message).
    last_customer_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The plan of the newest follow-up, kept here so the day's list is one indexed query.
    next_follow_up_on: Mapped[date | None] = mapped_column(Date)
    # While in the public pool (owner_id is None after a release): when and why it came there.
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    release_reason: Mapped[str | None] = mapped_column(String(255))
    stage_entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    owner: Mapped[User | None] = relationship(lazy="raise")
    tags: Mapped[list[CustomerTag]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="CustomerTag.tag"
    )


class CustomerTag(Base):
    __tablename__ = "customer_tags"
    __table_args__ = (Index("ix_customer_tags_tag", "tag", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(32), primary_key=True)


class CustomField(Base):
    """A field a manager added to every customer; values live in Customer.custom_values."""

    __tablename__ = "custom_fields"
    __table_args__ = (UniqueConstraint("key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # text / number / bool / enum / date
    options: Mapped[list[str]] = mapped_column(JSONType, default=list)  # enum choices
    is_required: Mapped[bool] = mapped_column(Boolean, default=False)
    is_tag_dimension: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
