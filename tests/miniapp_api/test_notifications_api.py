"""/notifications: failed WeCom messages are visible in scope and a manager can send them again."""

from __future__ import annotations

from rq import SimpleWorker

from crm import delivery, notifications
from tests.factories import make_company, sign_in
from workers import outbox, queues


def _work(runtime) -> None:
    SimpleWorker([queues.NOTIFICATIONS], connection=runtime.redis).work(burst=True)


def test_failed_message_is_listed_then_retried_by_the_manager_and_sent(
    runtime, session, client, clock, fake_wecom
):
    company = make_company(session)
    rep, manager = company.reps[0][0], company.managers[0]
    notifications.notify(session, recipients=[rep], title="跟进提醒", text="内容", now=clock())
    session.commit()
    fake_wecom.fail_next("message/send", 40003, times=delivery.MAX_ATTEMPTS)
    for _ in range(delivery.MAX_ATTEMPTS):
        _work(runtime)
        clock.advance(seconds=delivery.BACKOFF_MAX_SECONDS)
        outbox.enqueue_outbox(runtime.redis)  # what the periodic catch-up does
    _work(runtime)
    assert fake_wecom.messages == []

    headers = sign_in(client, fake_wecom, manager)
    listed = client.get("/api/v1/notifications?status=failed", headers=headers)
    assert listed.status_code == 200
    (item,) = listed.json["items"]
    assert listed.json["total"] == 1
    assert (item["touser"], item["status"], item["attempts"]) == (rep.wecom_userid, "failed", 5)
    assert "40003" in item["last_error"]

    retried = client.post(f"/api/v1/notifications/{item['id']}/retry", headers=headers)
    assert retried.status_code == 200
    assert (retried.json["status"], retried.json["attempts"]) == ("pending", 0)
    _work(runtime)  # the retry's commit enqueued the sender

    assert [m["touser"] for m in fake_wecom.messages] == [[rep.wecom_userid]]
    sent = client.get("/api/v1/notifications?status=sent", headers=headers).json["items"]
    assert [m["id"] for m in sent] == [item["id"]]
    again = client.post(f"/api/v1/notifications/{item['id']}/retry", headers=headers)
    assert (again.status_code, again.json["error"]["code"]) == (409, "not_failed")


def test_reps_see_only_their_own_messages_and_cannot_retry(session, client, clock, fake_wecom):
    company = make_company(session)
    rep, teammate = company.reps[0]
    messages = notifications.notify(
        session, recipients=[rep, teammate], title="t", text="x", now=clock()
    )
    for message in messages:
        message.status = notifications.OutboxStatus.FAILED
    session.commit()
    headers = sign_in(client, fake_wecom, rep)

    listed = client.get("/api/v1/notifications", headers=headers).json
    assert [m["touser"] for m in listed["items"]] == [rep.wecom_userid]
    retried = client.post(f"/api/v1/notifications/{messages[0].id}/retry", headers=headers)
    assert retried.status_code == 403


def test_other_teams_manager_gets_not_found_like_a_missing_message(
    session, client, clock, fake_wecom
):
    company = make_company(session)
    (message,) = notifications.notify(
        session, recipients=[company.reps[0][0]], title="t", text="x", now=clock()
    )
    message.status = notifications.OutboxStatus.FAILED
    session.commit()
    headers = sign_in(client, fake_wecom, company.managers[1])

    hidden = client.post(f"/api/v1/notifications/{message.id}/retry", headers=headers)
    missing = client.post("/api/v1/notifications/2000000000/retry", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json == missing.json
    assert client.get("/api/v1/notifications", headers=headers).json["total"] == 0


def test_unknown_status_filter_is_a_validation_error(session, client, fake_wecom):
    company = make_company(session)
    headers = sign_in(client, fake_wecom, company.boss)
    response = client.get("/api/v1/notifications?status=lost", headers=headers)
    assert response.status_code == 422
