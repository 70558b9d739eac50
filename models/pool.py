"""The public pool's history: releases, claims and assignments (caps and cool-downs read it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class PoolEvent(Base):
    __tablename__ = "pool_events"
    __table_args__ = (
        Index("ix_pool_events_user_kind_at", "user_id", "kind", "at"),
        Index("ix_pool_events_customer_at", "customer_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # release / claim / assign / auto_assign
    # release: the owner it left; claim/assign: the new owner.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: a rule did it
    reason: Mapped[str | None] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
