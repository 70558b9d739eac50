"""Business days: the reps work on Beijing time, whatever the server's clock says."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def local_date(moment: datetime) -> date:
    """The business day a moment falls on."""
    return moment.astimezone(BUSINESS_TZ).date()


def day_start(day: date) -> datetime:
    """The first moment of a business day, as an aware datetime."""
    return datetime.combine(day, time.min, tzinfo=BUSINESS_TZ)


def day_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the business day `moment` falls on."""
    start = day_start(local_date(moment))
    return start, start + timedelta(days=1)
