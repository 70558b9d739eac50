"""Stage history: every stage change with time, actor and cause (funnel and dwell time)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime
from models.users import User


class StageChange(Base):
    __tablename__ = "stage_changes"
    __table_args__ = (
        Index("ix_stage_changes_customer_time", "customer_id", "changed_at"),
        # The funnel reads a period's moves across all customers (crm/analytics/funnel.py).
        Index("ix_stage_changes_changed_at", "changed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cause: Mapped[str] = mapped_column(String(255))

    actor: Mapped[User | None] = relationship(lazy="raise")
