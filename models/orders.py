"""Orders (订单) and their approval flow: the configured nodes, and each order's own steps."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime
from models.customers import Customer
from models.users import User


class Approver(StrEnum):
    """Who decides a node: the managers of the order customer's team, or the boss."""

    MANAGER = "manager"
    BOSS = "boss"


class OrderStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class StepStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SKIPPED = "skipped"  # by #加急#


class ApprovalNode(Base):
    """One node of the company's approval flow, e.g. 主管审批 → 财务审核 → 仓库排期.

    New orders copy the nodes into their own steps, so editing the flow never changes an order
    already under way."""

    __tablename__ = "approval_nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(32))
    approver: Mapped[str] = mapped_column(String(16))  # an Approver
    skippable: Mapped[bool] = mapped_column(Boolean, default=False)  # #加急# may skip it


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer", "customer_id"),
        Index("ix_orders_status_created", "status", "created_at"),
        Index("ix_orders_expedited_at", "expedited_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # SO-20261126-001
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PENDING)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The emergency lane (#加急#): who opened it, when and why.
    expedited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    expedited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expedite_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    customer: Mapped[Customer] = relationship(lazy="raise")
    steps: Mapped[list[OrderStep]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="OrderStep.position"
    )


class OrderStep(Base):
    """An order's copy of one approval node and what became of it."""

    __tablename__ = "order_steps"
    __table_args__ = (Index("ix_order_steps_order_position", "order_id", "position", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(32))
    approver: Mapped[str] = mapped_column(String(16))  # an Approver
    skippable: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=StepStatus.PENDING)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment: Mapped[str | None] = mapped_column(Text)

    decider: Mapped[User | None] = relationship(lazy="raise")
