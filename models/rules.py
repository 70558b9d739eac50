"""Rule sets managers edit (grading, triggers, timers, pool policy) and what timers have done."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, JSONType, UTCDateTime


class RuleSetStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"  # one per kind and scope
    SUPERSEDED = "superseded"


class RuleSetVersion(Base):
    """One version of one kind of rule set: a draft, the active one, or a superseded one.

    Publishing gives a draft the next version number of its kind (one sequence for every scope,
    so "v7" names one version); a rollback publishes a copy of an earlier version, so the history
    only ever grows. A version's scope is its team (None: the company's); a team's active version
    overrides the company's for that team's customers.
    """

    __tablename__ = "rule_set_versions"
    __table_args__ = (
        UniqueConstraint("kind", "version"),
        Index("ix_rule_set_versions_kind_status", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # grading / triggers / timers / pool
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))  # None: the company's
    version: Mapped[int | None] = mapped_column(Integer)  # None while a draft
    status: Mapped[str] = mapped_column(String(16))  # RuleSetStatus
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    note: Mapped[str | None] = mapped_column(String(255))
    rolled_back_from: Mapped[int | None] = mapped_column(Integer)  # the version copied
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TimerFiring(Base):
    """A timer step that has acted on a customer for one run of its clock.

    The unique key is what makes sweeps idempotent: a second sweep, or a second worker, cannot
    insert the same firing, so it cannot remind or release twice. A new follow-up (or stage)
    restarts the clock with a new anchor, and the ladder may fire again.
    """

    __tablename__ = "timer_firings"
    # Customer first: a sweep's NOT EXISTS probes it per candidate customer.
    __table_args__ = (UniqueConstraint("customer_id", "rule", "step", "anchor_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    anchor_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
