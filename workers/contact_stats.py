"""Fetch WeCom's 联系客户统计 of each finished day into contact_stats (crm/contact_stats.py).

Runs hourly but calls WeCom only for the member-days not stored yet, so once a day is in, later
runs cost one query; a WeCom outage (or any WeCom error for one member) leaves those days
missing, and the next run fetches them; WeCom unreachable ends the run at once rather than
waiting out a timeout per member. One call per member, as WeCom sums several members into
one figure; a member's missing days span at most `LOOKBACK_DAYS`, well inside WeCom's 30-day
limit. Each member's days are committed on their own, so an error later keeps what was stored.
"""

from __future__ import annotations

import logging

from crm import calendar, contact_stats
from wecom.client import WeComError, WeComUnavailable
from workers import context

log = logging.getLogger(__name__)


def fetch_contact_stats() -> dict[str, int]:
    """Store every missing finished day of every active member; days stored, members failed
    (keys in Chinese: `wecrm sweep` prints them)."""
    rt = context.runtime()
    now = rt.clock()
    with rt.db.session() as session:
        missing = contact_stats.days_to_fetch(session, now=now)
    stored = failed = 0
    for tried, (member, days) in enumerate(missing.items()):
        start = int(calendar.day_start(days[0]).timestamp())
        end = int(calendar.day_start(days[-1]).timestamp())
        try:
            entries = rt.wecom.get_user_behavior_data(member.wecom_userid, start, end)
        except WeComUnavailable as error:  # down: the others would wait for nothing
            log.warning("contact stats not fetched, WeCom unavailable: %s", error)
            failed += len(missing) - tried
            break
        except WeComError as error:  # this member's days are tried again next run
            log.warning("contact stats of %s not fetched: %s", member.wecom_userid, error)
            failed += 1
            continue
        wanted = [e for e in entries if e.get("stat_time") is not None]
        with rt.db.session() as session:
            stored += contact_stats.store_days(
                session, user_id=member.user_id, days=wanted, now=now
            )
            session.commit()
    return {"保存天数": stored, "失败人数": failed}
