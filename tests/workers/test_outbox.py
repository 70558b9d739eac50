"""The outbox sender through a real RQ worker, the real WeComClient and the fake WeCom server."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import redis
from rq import Queue, SimpleWorker
from sqlalchemy import select

from crm import delivery, notifications
from crm.notifications import OutboxStatus
from models import OutboxMessage
from tests.conftest import _free_port
from tests.factories import make_company, make_customer
from wecom import WeComClient
from workers import outbox, queues


def _queued_jobs(runtime) -> list[str]:
    return [j.func_name for j in Queue(queues.NOTIFICATIONS, connection=runtime.redis).get_jobs()]


def _work(runtime) -> None:
    SimpleWorker([queues.NOTIFICATIONS], connection=runtime.redis).work(burst=True)


def _rows(session) -> list[OutboxMessage]:
    session.rollback()  # end the read transaction: a SQLite snapshot would hide the worker's writes
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _notify(session, clock, recipients, text="客户已 3 天未跟进", **kwargs):
    queued = notifications.notify(
        session, recipients=recipients, title="跟进提醒", text=text, now=clock(), **kwargs
    )
    session.commit()
    return queued


def _client(runtime, fake_wecom) -> WeComClient:
    """Another process's client: its own HTTP pool, the same Redis."""
    return WeComClient(
        corp_id=fake_wecom.corp_id,
        secret=fake_wecom.secret,
        agent_id=fake_wecom.agent_id,
        api_base=fake_wecom.base_url,
        redis=runtime.redis,
        timeout=2.0,
    )


def test_commit_enqueues_the_sender_once_and_the_worker_delivers_a_card_to_the_customer(
    runtime, session, clock, fake_wecom
):
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock())

    _notify(session, clock, [rep], customer_id=customer.id)
    _notify(session, clock, [rep], text="第二条")
    assert _queued_jobs(runtime) == ["workers.outbox.send_outbox"]  # two commits, one run
    _work(runtime)

    assert [m["touser"] for m in fake_wecom.messages] == [[rep.wecom_userid]] * 2
    card = fake_wecom.messages[0]["textcard"]
    assert card["title"] == "跟进提醒" and card["description"] == "客户已 3 天未跟进"
    assert card["url"] == f"{runtime.settings.public_url}/customers/{customer.id}"
    assert fake_wecom.messages[1]["textcard"]["url"] == f"{runtime.settings.public_url}/"
    assert [(r.status, r.sent_at) for r in _rows(session)] == [(OutboxStatus.SENT, clock())] * 2

    _notify(session, clock, [rep], text="运行之后")  # the run released the key: a new run
    assert _queued_jobs(runtime) == ["workers.outbox.send_outbox"]


def test_rolled_back_notification_enqueues_nothing(runtime, session, clock):
    rep = make_company(session).reps[0][0]
    notifications.notify(session, recipients=[rep], title="t", text="x", now=clock())
    session.rollback()
    assert _queued_jobs(runtime) == []
    assert _rows(session) == []


def test_two_processes_share_one_token_and_refetch_it_once_when_wecom_expires_it(
    runtime, session, clock, fake_wecom
):
    rep = make_company(session).reps[0][0]
    first, second = _client(runtime, fake_wecom), _client(runtime, fake_wecom)
    try:
        _notify(session, clock, [rep], text="一")
        outbox.send_due(
            runtime.db, runtime.redis, first, clock, public_url="http://x", store=runtime.store
        )
        _notify(session, clock, [rep], text="二")
        outbox.send_due(
            runtime.db, runtime.redis, second, clock, public_url="http://x", store=runtime.store
        )
        assert fake_wecom.token_requests == 1

        fake_wecom.expire_tokens()
        _notify(session, clock, [rep], text="三")
        outbox.send_due(
            runtime.db, runtime.redis, first, clock, public_url="http://x", store=runtime.store
        )
    finally:
        first.close()
        second.close()

    assert fake_wecom.token_requests == 2
    assert fake_wecom.calls[-3:] == ["message/send", "gettoken", "message/send"]
    assert [m["textcard"]["description"] for m in fake_wecom.messages] == ["一", "二", "三"]
    assert {r.status for r in _rows(session)} == {OutboxStatus.SENT}


def test_token_errors_get_one_bounded_refetch_then_count_as_a_failed_attempt(
    runtime, session, clock, fake_wecom
):
    rep = make_company(session).reps[0][0]
    _notify(session, clock, [rep])
    fake_wecom.fail_next("message/send", 40014, times=2)

    _work(runtime)

    assert fake_wecom.calls.count("message/send") == 2 and fake_wecom.messages == []
    (row,) = _rows(session)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert "40014" in row.last_error
    assert row.next_attempt_at == clock() + timedelta(seconds=30)

    clock.advance(seconds=30)
    outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )
    assert len(fake_wecom.messages) == 1 and _rows(session)[0].status == OutboxStatus.SENT


def test_unreachable_wecom_backs_off_loses_nothing_and_sends_after_it_returns(
    runtime, session, clock, fake_wecom
):
    company = make_company(session)
    reps = [r for team in company.reps for r in team]
    _notify(session, clock, reps)
    started = clock()
    fake_wecom.set_unreachable(True)

    _work(runtime)

    rows = _rows(session)
    assert [r.attempts for r in rows] == [1, 0, 0, 0]  # the run stopped at the first failure
    assert {r.status for r in rows} == {OutboxStatus.PENDING}
    assert {r.next_attempt_at for r in rows} == {started + timedelta(seconds=30)}
    assert "503" in rows[0].last_error

    clock.advance(seconds=29)
    outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )
    assert [r.attempts for r in _rows(session)] == [1, 0, 0, 0]  # not due yet: not retried
    clock.advance(seconds=1)
    outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )
    assert [r.attempts for r in _rows(session)] == [2, 0, 0, 0]
    assert _rows(session)[0].next_attempt_at == clock() + timedelta(seconds=60)

    fake_wecom.set_unreachable(False)
    fake_wecom.fail_next("message/send", -1)  # WeCom's "system busy" is unreachable too
    clock.advance(seconds=60)
    outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )
    assert [r.attempts for r in _rows(session)] == [3, 0, 0, 0]

    clock.advance(seconds=120)
    _notify(session, clock, [reps[0]], text="恢复后")  # the commit enqueues a run
    _work(runtime)
    print(
        [(r.status, r.attempts, r.next_attempt_at, r.last_error) for r in _rows(session)], clock()
    )
    assert {r.status for r in _rows(session)} == {OutboxStatus.SENT}
    assert sorted(m["touser"][0] for m in fake_wecom.messages) == sorted(
        [r.wecom_userid for r in reps] + [reps[0].wecom_userid]
    )


def test_unreachable_error_is_stored_without_credentials(runtime, session, clock, fake_wecom):
    rep = make_company(session).reps[0][0]
    _notify(session, clock, [rep])
    nowhere = WeComClient(
        corp_id=fake_wecom.corp_id,
        secret=fake_wecom.secret,
        agent_id=fake_wecom.agent_id,
        api_base="http://127.0.0.1:9/cgi-bin/",  # discard port: connection refused
        redis=runtime.redis,
        timeout=2.0,
    )
    nowhere._wechat.session.set(nowhere._wechat.access_token_key, "TOKENVALUE")  # in the URL
    try:
        report = outbox.send_due(
            runtime.db, runtime.redis, nowhere, clock, public_url="http://x", store=runtime.store
        )
    finally:
        nowhere.close()

    assert report == {"unavailable": 1}
    (row,) = _rows(session)
    assert row.status == OutboxStatus.PENDING and row.attempts == 1
    assert "ConnectionError" in row.last_error  # what failed, never the URL it failed on
    assert "TOKENVALUE" not in row.last_error


def test_31st_message_to_one_member_in_a_minute_is_deferred_not_sent(
    runtime, session, clock, fake_wecom
):
    company = make_company(session)
    busy, other = company.reps[0]
    fake_wecom.clock = lambda: clock().timestamp()  # WeCom's minute is our test's minute
    for n in range(outbox.MEMBER_LIMIT_PER_MINUTE + 1):
        _notify(session, clock, [busy], text=f"第{n + 1}条")
    _notify(session, clock, [other], text="别人的")

    _work(runtime)

    assert len(fake_wecom.messages) == outbox.MEMBER_LIMIT_PER_MINUTE + 1
    assert [m["touser"] for m in fake_wecom.messages].count([busy.wecom_userid]) == 30
    deferred = [r for r in _rows(session) if r.status != OutboxStatus.SENT]
    assert [(r.touser, r.content["description"]) for r in deferred] == [
        (busy.wecom_userid, "第31条")
    ]
    assert deferred[0].status == OutboxStatus.PENDING and deferred[0].attempts == 0
    assert deferred[0].next_attempt_at == clock() + timedelta(seconds=60)

    clock.advance(seconds=60)
    outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )
    assert fake_wecom.messages[-1]["textcard"]["description"] == "第31条"
    assert {r.status for r in _rows(session)} == {OutboxStatus.SENT}


def test_wecom_frequency_error_defers_the_message_without_counting_an_attempt(
    runtime, session, clock, fake_wecom
):
    rep = make_company(session).reps[0][0]
    _notify(session, clock, [rep])
    fake_wecom.fail_next("message/send", 45009)

    report = outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )

    assert report == {"deferred": 1}
    (row,) = _rows(session)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)
    assert row.next_attempt_at == clock() + timedelta(seconds=60)


def test_dedupe_key_sends_one_message(runtime, session, clock, fake_wecom):
    rep = make_company(session).reps[0][0]
    for _ in range(3):
        _notify(session, clock, [rep], dedupe_key="rule:1:customer:9:overdue")
    _work(runtime)
    assert len(fake_wecom.messages) == 1 and len(_rows(session)) == 1


def test_lease_of_a_worker_that_died_mid_send_expires_and_the_message_is_sent(
    runtime, session, clock, fake_wecom
):
    rep = make_company(session).reps[0][0]
    _notify(session, clock, [rep])
    with runtime.db.session(lock_for_write=True) as dead_worker:
        lease = clock() + timedelta(seconds=outbox.LEASE_SECONDS)
        notifications.claim_due(dead_worker, now=clock(), limit=10, lease_until=lease)
        dead_worker.commit()

    outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )
    assert fake_wecom.messages == []  # leased to someone else

    clock.advance(seconds=outbox.LEASE_SECONDS)
    outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )
    assert len(fake_wecom.messages) == 1
    (row,) = _rows(session)
    assert row.status == OutboxStatus.SENT and row.attempts == 1


def test_a_message_wecom_took_before_its_worker_died_is_resent_within_a_minute_and_shown_once(
    runtime, session, clock, fake_wecom
):
    rep = make_company(session).reps[0][0]
    fake_wecom.clock = lambda: clock().timestamp()  # WeCom's duplicate check on our test's time
    _notify(session, clock, [rep])
    with runtime.db.session(lock_for_write=True) as dead_worker:
        lease = clock() + timedelta(seconds=outbox.LEASE_SECONDS)
        (claimed,) = notifications.claim_due(dead_worker, now=clock(), limit=10, lease_until=lease)
        # WeCom takes the message, then the worker dies before it records "sent".
        runtime.wecom.send_message(
            [rep.wecom_userid],
            "textcard",
            outbox.wecom_payload(claimed, public_url="http://x"),
            duplicate_check_seconds=outbox.DUPLICATE_CHECK_SECONDS,
        )
        dead_worker.commit()

    clock.advance(seconds=59)
    assert (
        outbox.send_due(
            runtime.db,
            runtime.redis,
            runtime.wecom,
            clock,
            public_url="http://x",
            store=runtime.store,
        )
        == {}
    )
    clock.advance(seconds=1)
    report = outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )

    assert report == {"sent": 1}
    assert fake_wecom.calls.count("message/send") == 2  # resent, and WeCom dropped the copy
    assert len(fake_wecom.messages) == 1
    assert _rows(session)[0].status == OutboxStatus.SENT


def test_a_batch_whose_lease_runs_short_is_handed_back_and_claimed_afresh(
    runtime, session, clock, fake_wecom, monkeypatch
):
    company = make_company(session)
    reps = company.reps[0] + company.reps[1][:1]
    _notify(session, clock, reps)
    send_message = runtime.wecom.send_message
    leases_left = []

    def slow_send(touser, *args, **kwargs):
        (row,) = [r for r in _rows(session) if r.touser == touser[0]]
        leases_left.append((row.next_attempt_at - clock()).total_seconds())
        clock.advance(seconds=25)  # a slow WeCom
        return send_message(touser, *args, **kwargs)

    monkeypatch.setattr(runtime.wecom, "send_message", slow_send)
    report = outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )

    assert report == {"sent": 3, "released": 1}
    assert min(leases_left) >= outbox.SEND_MAX_SECONDS  # no send began near its lease's end
    assert sorted(m["touser"][0] for m in fake_wecom.messages) == sorted(
        r.wecom_userid for r in reps
    )
    assert {(r.status, r.attempts) for r in _rows(session)} == {(OutboxStatus.SENT, 0)}


def test_redis_going_away_mid_run_puts_the_batch_back_due_now_not_leased(
    runtime, session, clock, fake_wecom
):
    reps = [r for team in make_company(session).reps for r in team]
    _notify(session, clock, reps)
    gone = redis.Redis(port=_free_port())  # the rate limit and the token are out of reach

    with pytest.raises(redis.ConnectionError):
        outbox.send_due(
            runtime.db, gone, runtime.wecom, clock, public_url="http://x", store=runtime.store
        )
    rows = _rows(session)
    assert {(r.status, r.attempts, r.next_attempt_at) for r in rows} == {
        (OutboxStatus.PENDING, 0, clock())
    }

    outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )
    assert {r.status for r in _rows(session)} == {OutboxStatus.SENT}
    assert len(fake_wecom.messages) == len(reps)


def test_a_card_wecom_took_before_its_worker_died_is_recorded_sent_when_resent(
    runtime, session, clock, fake_wecom
):
    rep = make_company(session).reps[0][0]
    card = notifications.ButtonCard(
        {"order_id": 1, "step_id": 1}, (notifications.CardButton("approve", "同意"),)
    )
    _notify(session, clock, [rep], card=card)
    with runtime.db.session(lock_for_write=True) as dead_worker:
        lease = clock() + timedelta(seconds=outbox.LEASE_SECONDS)
        (claimed,) = notifications.claim_due(dead_worker, now=clock(), limit=10, lease_until=lease)
        # WeCom takes the card, then the worker dies before it records "sent".
        payload = outbox.wecom_payload(claimed, public_url="http://x")
        runtime.wecom.send_message([rep.wecom_userid], "template_card", payload)
        dead_worker.commit()

    clock.advance(seconds=outbox.LEASE_SECONDS)
    report = outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )

    assert report == {"sent": 1}
    assert fake_wecom.calls.count("message/send") == 2  # the resend was answered 42014
    assert len(fake_wecom.messages) == 1
    (row,) = _rows(session)
    assert (row.status, row.last_error) == (OutboxStatus.SENT, delivery.LEASE_EXPIRED_ERROR)


def test_each_recipient_of_a_card_gets_a_task_id_of_its_own(runtime, session, clock, fake_wecom):
    first, second = make_company(session).reps[0]
    card = notifications.ButtonCard(
        {"order_id": 7, "step_id": 9}, (notifications.CardButton("approve", "同意"),)
    )
    _notify(session, clock, [first, second], card=card)

    outbox.send_due(
        runtime.db, runtime.redis, runtime.wecom, clock, public_url="http://x", store=runtime.store
    )

    sent = {m["touser"][0]: m["template_card"] for m in fake_wecom.messages}
    assert sent[first.wecom_userid]["task_id"] == f"order-7-step-9-u{first.id}"
    assert sent[second.wecom_userid]["task_id"] == f"order-7-step-9-u{second.id}"
    assert "subject" not in sent[first.wecom_userid]  # ours, not WeCom's


def test_two_concurrent_runs_send_every_message_exactly_once(runtime, session, clock, fake_wecom):
    company = make_company(session)
    per_member = 20
    for n in range(per_member):
        _notify(session, clock, company.everyone, text=f"第{n}轮")
    expected = per_member * len(company.everyone)
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def run() -> None:
        client = _client(runtime, fake_wecom)
        try:
            barrier.wait()
            reports.append(
                outbox.send_due(
                    runtime.db,
                    runtime.redis,
                    client,
                    clock,
                    public_url="http://x",
                    store=runtime.store,
                )
            )
        except Exception as error:  # surfaced below; a thread cannot fail the test itself
            errors.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    sent = [(m["touser"][0], m["textcard"]["description"]) for m in fake_wecom.messages]
    assert len(sent) == expected and len(set(sent)) == expected
    assert sum(r.get("sent", 0) for r in reports) == expected
    assert {r.status for r in _rows(session)} == {OutboxStatus.SENT}


@pytest.mark.parametrize("errcode", [40003, 45002])
def test_refused_message_fails_after_max_attempts_and_is_never_deleted(
    errcode, runtime, session, clock, fake_wecom
):
    rep = make_company(session).reps[0][0]
    _notify(session, clock, [rep])
    fake_wecom.fail_next("message/send", errcode, times=delivery.MAX_ATTEMPTS)
    for _ in range(delivery.MAX_ATTEMPTS):
        outbox.send_due(
            runtime.db,
            runtime.redis,
            runtime.wecom,
            clock,
            public_url="http://x",
            store=runtime.store,
        )
        clock.advance(seconds=delivery.BACKOFF_MAX_SECONDS)
    (row,) = _rows(session)
    assert row.status == OutboxStatus.FAILED and row.attempts == delivery.MAX_ATTEMPTS
    assert str(errcode) in row.last_error and fake_wecom.messages == []
