"""Tasks (待办) given to a person about a customer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime
from models.customers import Customer
from models.users import User


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_assignee_status_due", "assignee_id", "status", "due_at"),
        Index("ix_tasks_customer", "customer_id"),
        Index("ix_tasks_cc_status", "cc_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    assignee_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    cc_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.OPEN)
    origin: Mapped[str] = mapped_column(String(64), default="manual")  # manual / rule:<name>
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: a rule
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    assignee: Mapped[User] = relationship(foreign_keys=[assignee_id], lazy="raise")
    customer: Mapped[Customer | None] = relationship(lazy="raise")
