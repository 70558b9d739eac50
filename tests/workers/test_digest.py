"""The morning digest end to end: the scheduler's due-check at the configured Beijing time, the
picture drawn and uploaded through media/upload, the image and the card in the fake WeCom."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from crm.analytics import digest
from crm.notifications import OutboxStatus
from models import OutboxMessage
from tests.factories import make_company, make_customer
from wecrm.demo import seeding
from workers import digest as digest_job
from workers import outbox, queues

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BEIJING_0759 = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)  # 2026-03-02 07:59 in Beijing
BEIJING_0800 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def _send_outbox(runtime) -> None:
    SimpleWorker([queues.NOTIFICATIONS], connection=runtime.redis).work(burst=True)


def _messages_to(fake_wecom, userid: str) -> list[dict]:
    return [m for m in fake_wecom.messages if m["touser"] == [userid]]


@pytest.fixture
def company(session, clock):
    """Two teams, each with a customer stuck in 报价 for ten days and one new customer."""
    company = make_company(session)
    stuck = []
    for team_reps in company.reps:
        rep = team_reps[0]
        stuck.append(make_customer(session, rep, BEIJING_0800 - timedelta(days=10), stage="报价"))
        make_customer(session, rep, BEIJING_0800 - timedelta(hours=12))  # yesterday, Beijing
    session.commit()
    company.extra["stuck"] = stuck
    return company


def test_the_boss_gets_the_picture_and_the_card_at_the_configured_time(
    runtime, session, clock, fake_wecom, company
):
    assert runtime.settings.digest_time.strftime("%H:%M") == "08:00"
    clock.current = BEIJING_0759
    assert digest_job.send_digests() == 0
    _send_outbox(runtime)
    assert fake_wecom.uploads == [] and fake_wecom.messages == []

    clock.current = BEIJING_0800
    assert digest_job.send_digests() == 3  # the boss and two managers
    _send_outbox(runtime)

    boss = _messages_to(fake_wecom, company.boss.wecom_userid)
    assert [m["msgtype"] for m in boss] == ["image", "textcard"]
    (upload,) = [u for u in fake_wecom.uploads if u["media_id"] == boss[0]["image"]["media_id"]]
    assert upload["type"] == "image" and upload["data"].startswith(PNG_SIGNATURE)
    card = boss[1]["textcard"]
    assert card["title"] == "每日晨报 3月2日 · 全公司"
    assert "新客户 2 位" in card["description"]
    assert "风险客户：2 位报价后 7 天以上未跟进" in card["description"]
    assert all(c.name in card["description"] for c in company.extra["stuck"])
    session.rollback()
    rows = session.scalars(select(OutboxMessage)).all()
    assert {r.status for r in rows} == {OutboxStatus.SENT}


def test_a_manager_gets_their_teams_digest_not_anothers(
    runtime, session, clock, fake_wecom, company
):
    clock.current = BEIJING_0800
    digest_job.send_digests()
    _send_outbox(runtime)

    for index, manager in enumerate(company.managers):
        (card,) = [
            m["textcard"]
            for m in _messages_to(fake_wecom, manager.wecom_userid)
            if m["msgtype"] == "textcard"
        ]
        assert card["title"].endswith(company.teams[index].name)
        assert "新客户 1 位" in card["description"]
        assert company.extra["stuck"][index].name in card["description"]
        assert company.extra["stuck"][1 - index].name not in card["description"]
    uploads = {u["media_id"] for u in fake_wecom.uploads}
    images = [m["image"]["media_id"] for m in fake_wecom.messages if m["msgtype"] == "image"]
    assert len(images) == 3 and set(images) <= uploads


def test_a_second_run_the_same_day_sends_nothing_more(runtime, session, clock, company):
    clock.current = BEIJING_0800
    assert digest_job.send_digests() == 3
    clock.advance(minutes=5)
    assert digest_job.send_digests() == 0
    session.rollback()
    assert digest.recipients_due(session, now=clock()) == []
    keys = session.scalars(select(OutboxMessage.dedupe_key)).all()
    assert len(keys) == len(set(keys)) == 6


def test_a_wecom_outage_retries_the_image_like_any_outbox_message(
    runtime, session, clock, fake_wecom, company
):
    clock.current = BEIJING_0800
    digest_job.send_digests()
    fake_wecom.set_unreachable(True)
    _send_outbox(runtime)
    fake_wecom.set_unreachable(False)
    session.rollback()
    first = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).first()
    assert first is not None and first.msgtype == "image"
    assert first.status == OutboxStatus.PENDING and first.attempts == 1
    assert fake_wecom.messages == []

    clock.advance(minutes=10)
    outbox.send_outbox()  # the schedule's catch-up run
    boss = _messages_to(fake_wecom, company.boss.wecom_userid)
    assert [m["msgtype"] for m in boss] == ["image", "textcard"]


def test_the_digest_is_due_from_the_configured_beijing_time_until_midnight():
    at = datetime(2026, 3, 2, 8, 0).time()
    assert not digest.is_due(BEIJING_0759, at)
    assert digest.is_due(BEIJING_0800, at)
    assert digest.is_due(datetime(2026, 3, 2, 15, 59, tzinfo=UTC), at)  # 23:59 Beijing
    assert not digest.is_due(datetime(2026, 3, 2, 16, 0, tzinfo=UTC), at)  # next day, 00:00


def test_on_the_demo_company_the_boss_gets_the_picture_and_the_weakest_step(
    runtime, session, clock, fake_wecom
):
    seeding.seed_company(session, now=BEIJING_0800, customer_count=1200)
    session.commit()
    boss_userid = seeding.SAMPLE_ORG.boss.userid
    clock.current = BEIJING_0800
    digest_job.send_digests()
    _send_outbox(runtime)

    to_boss = _messages_to(fake_wecom, boss_userid)
    (image,) = [m for m in to_boss if m["msgtype"] == "image"]
    (card,) = [m for m in to_boss if m.get("textcard", {}).get("title", "").startswith("每日晨报")]
    (upload,) = [u for u in fake_wecom.uploads if u["media_id"] == image["image"]["media_id"]]
    assert upload["data"].startswith(PNG_SIGNATURE)
    assert "最弱环节（近 30 天）：" in card["textcard"]["description"]
    assert "样本不足" not in card["textcard"]["description"]
