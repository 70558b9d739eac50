"""WeCom's 联系客户统计 (externalcontact/get_user_behavior_data) kept per member and Beijing day.

WeCom computes the figures per day and keeps them 180 days; wecrm fetches each finished day
(workers/contact_stats.py) and keeps one row per (member, day): storing a day again overwrites
it, so a retried or repeated fetch changes nothing. The rep health score reads what is stored
(`month_summary`), never WeCom, so an outage delays the figures and fails nothing.

The decisions: days are fetched from `LOOKBACK_DAYS` back up to yesterday (today is not over),
only those not stored yet, so a day missed in an outage is fetched on the next run; a month's
summary sums the counts and weighs reply rate and reply time by the days that had chats, as
WeCom leaves both out of a day without them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import calendar
from models import ContactStat, User

LOOKBACK_DAYS = 7  # how far back a missed day is still fetched
COUNTS = ("chat_cnt", "message_cnt", "negative_feedback_cnt", "new_apply_cnt", "new_contact_cnt")


@dataclass(frozen=True)
class Member:
    user_id: int
    wecom_userid: str


@dataclass
class ContactSummary:
    """A member's figures over the stored days of a period."""

    days: int  # days with figures stored
    chat_cnt: int
    message_cnt: int
    reply_percentage: float | None  # percent, over the days with chats
    avg_reply_time: float | None  # minutes, over the days with chats
    new_contact_cnt: int
    negative_feedback_cnt: int


def days_to_fetch(session: Session, *, now: datetime) -> dict[Member, list[date]]:
    """Each active member's finished days of the last `LOOKBACK_DAYS` not stored yet."""
    yesterday = calendar.local_date(now) - timedelta(days=1)
    first = yesterday - timedelta(days=LOOKBACK_DAYS - 1)
    wanted = [first + timedelta(days=n) for n in range(LOOKBACK_DAYS)]
    stored: defaultdict[int, set[date]] = defaultdict(set)
    for user_id, day in session.execute(
        select(ContactStat.user_id, ContactStat.day).where(ContactStat.day >= first)
    ):
        stored[user_id].add(day)
    members = session.execute(
        select(User.id, User.wecom_userid).where(User.is_active).order_by(User.id)
    ).all()
    return {
        Member(i, userid): missing
        for i, userid in members
        if (missing := [d for d in wanted if d not in stored[i]])
    }


def store_days(session: Session, *, user_id: int, days: Iterable[dict], now: datetime) -> int:
    """Keep WeCom's per-day entries for a member (one row per day, overwriting); how many."""
    entries = {datetime.fromtimestamp(d["stat_time"], calendar.BUSINESS_TZ).date(): d for d in days}
    existing = {
        row.day: row
        for row in session.scalars(
            select(ContactStat).where(
                ContactStat.user_id == user_id, ContactStat.day.in_(list(entries))
            )
        )
    }
    for day, entry in entries.items():
        row = existing.get(day) or ContactStat(user_id=user_id, day=day)
        for key in COUNTS:
            setattr(row, key, int(entry.get(key, 0)))
        row.reply_percentage = entry.get("reply_percentage")
        row.avg_reply_time = entry.get("avg_reply_time")
        row.fetched_at = now
        session.add(row)
    session.flush()
    return len(entries)


def month_summary(
    session: Session, *, user_ids: list[int], start: date, end: date
) -> dict[int, ContactSummary]:
    """The stored figures of [start, end) per member; members with no stored day are absent."""
    rows = session.scalars(
        select(ContactStat).where(
            ContactStat.user_id.in_(user_ids), ContactStat.day >= start, ContactStat.day < end
        )
    ).all()
    by_user: defaultdict[int, list[ContactStat]] = defaultdict(list)
    for row in rows:
        by_user[row.user_id].append(row)
    return {user_id: _summary(days) for user_id, days in by_user.items()}


def _summary(days: list[ContactStat]) -> ContactSummary:
    replied = [d for d in days if d.reply_percentage is not None]
    timed = [d for d in days if d.avg_reply_time is not None]
    return ContactSummary(
        days=len(days),
        chat_cnt=sum(d.chat_cnt for d in days),
        message_cnt=sum(d.message_cnt for d in days),
        reply_percentage=(
            round(sum(d.reply_percentage or 0 for d in replied) / len(replied), 1)
            if replied
            else None
        ),
        avg_reply_time=(
            round(sum(d.avg_reply_time or 0 for d in timed) / len(timed), 1) if timed else None
        ),
        new_contact_cnt=sum(d.new_contact_cnt for d in days),
        negative_feedback_cnt=sum(d.negative_feedback_cnt for d in days),
    )
