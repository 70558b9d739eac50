"""The daily 联系客户统计 fetch through the real client against the fake WeCom over HTTP: every
active member's finished days stored once, a WeCom error leaving that member's days for the next
run, and an outage failing nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from crm import contact_stats
from models import ContactStat
from tests.factories import make_company
from workers import contact_stats as job
from workers.schedule import PERIODIC_JOBS

ENDPOINT = "externalcontact/get_user_behavior_data"
MEMBERS = 7  # the boss, two managers, four reps
YESTERDAY = date(2026, 3, 1)  # the clock stands at 2 March, 09:30 in Beijing


def stat_time(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) - 8 * 3600


def rows(session) -> list[ContactStat]:
    session.rollback()  # a new read transaction sees the job's commits
    return list(session.scalars(select(ContactStat).order_by(ContactStat.user_id, ContactStat.day)))


def test_the_job_stores_each_members_finished_days_once_and_retries_a_failed_member(
    runtime, session, fake_wecom
):
    company = make_company(session)
    rep = company.reps[0][0]
    fake_wecom.set_behavior(
        rep.wecom_userid,
        stat_time(YESTERDAY),
        chat_cnt=7,
        message_cnt=21,
        reply_percentage=80.0,
        avg_reply_time=12,
        negative_feedback_cnt=0,
        new_apply_cnt=1,
        new_contact_cnt=2,
    )
    fake_wecom.fail_next(ENDPOINT, 45009)  # the first member's call is refused

    assert job.fetch_contact_stats() == {"保存天数": (MEMBERS - 1) * 7, "失败人数": 1}
    stored = rows(session)
    assert len(stored) == (MEMBERS - 1) * 7
    assert {r.day for r in stored} == {YESTERDAY - timedelta(days=n) for n in range(7)}
    mine = next(r for r in stored if r.user_id == rep.id and r.day == YESTERDAY)
    assert (mine.chat_cnt, mine.message_cnt, mine.reply_percentage, mine.avg_reply_time) == (
        7,
        21,
        80.0,
        12,
    )
    assert fake_wecom.calls.count(ENDPOINT) == MEMBERS

    assert job.fetch_contact_stats() == {"保存天数": 7, "失败人数": 0}  # the failed member only
    assert fake_wecom.calls.count(ENDPOINT) == MEMBERS + 1
    assert len(rows(session)) == MEMBERS * 7
    assert job.fetch_contact_stats() == {"保存天数": 0, "失败人数": 0}  # nothing left to fetch
    assert fake_wecom.calls.count(ENDPOINT) == MEMBERS + 1


def test_storing_a_day_again_overwrites_it(runtime, session, clock):
    rep = make_company(session).reps[0][0]
    for chats in (3, 5):
        contact_stats.store_days(
            session,
            user_id=rep.id,
            days=[{"stat_time": stat_time(YESTERDAY), "chat_cnt": chats, "message_cnt": 1}],
            now=clock(),
        )
        session.commit()
    (row,) = rows(session)
    assert (row.day, row.chat_cnt, row.reply_percentage) == (YESTERDAY, 5, None)


def test_an_outage_fails_nothing_and_the_next_run_catches_up(runtime, session, fake_wecom, caplog):
    make_company(session)
    fake_wecom.set_unreachable(True)
    assert job.fetch_contact_stats() == {"保存天数": 0, "失败人数": MEMBERS}
    assert rows(session) == []
    warnings = [r for r in caplog.records if r.name == job.__name__]
    assert len(warnings) == 1  # the first unanswered call ends the run
    fake_wecom.set_unreachable(False)
    assert job.fetch_contact_stats() == {"保存天数": MEMBERS * 7, "失败人数": 0}
    assert len(rows(session)) == MEMBERS * 7


def test_the_fetch_is_a_periodic_job():
    assert job.fetch_contact_stats in {periodic.func for periodic in PERIODIC_JOBS}
