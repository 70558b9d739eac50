"""People who use wecrm and the teams they sell in."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime


class Role(StrEnum):
    REP = "rep"
    MANAGER = "manager"
    BOSS = "boss"


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    wecom_department_id: Mapped[int | None] = mapped_column(Integer, unique=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    wecom_userid: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16), default=Role.REP)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    mobile: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(128))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # When they came to wecrm (added or first synced): 新人上手周期 counts from here; empty for
    # people who were here before it was kept (migration 0014).
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Every API token names the generation it was issued in; raising it signs the person out
    # everywhere (miniapp_api/auth.py).
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    team: Mapped[Team | None] = relationship(lazy="raise")
