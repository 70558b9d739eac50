"""WeCom's 联系客户统计 per member and Beijing day, as fetched by workers/contact_stats.py."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class ContactStat(Base):
    """One member's customer-contact figures for one day (externalcontact/get_user_behavior_data).
    The day is the primary key's second half, so a refetch of a day overwrites it."""

    __tablename__ = "contact_stats"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    chat_cnt: Mapped[int] = mapped_column(Integer)  # one-to-one chats the member sent in
    message_cnt: Mapped[int] = mapped_column(Integer)  # messages the member sent in them
    # Of the chats a customer started, the share (percent) the member answered; WeCom leaves
    # it out when there was no such chat, as it does the average first-reply time (minutes).
    reply_percentage: Mapped[float | None] = mapped_column(Float)
    avg_reply_time: Mapped[int | None] = mapped_column(Integer)
    negative_feedback_cnt: Mapped[int] = mapped_column(Integer)
    new_apply_cnt: Mapped[int] = mapped_column(Integer)
    new_contact_cnt: Mapped[int] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
