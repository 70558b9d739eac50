"""The outbox's domain side: what notify() queues, how sending changes state, who sees what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm import after_commit, delivery, notifications
from crm.actors import Actor
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from crm.notifications import OutboxStatus
from models import OutboxMessage
from tests.factories import make_company, make_customer

PUBLIC_URL = "https://crm.example.com"


def test_notify_queues_one_pending_message_per_active_recipient(session, clock):
    company = make_company(session)
    active, inactive = company.reps[0]
    inactive.is_active = False
    customer = make_customer(session, active, clock())

    queued = notifications.notify(
        session,
        recipients=[active, inactive, active],
        title="客户待跟进",
        text="张三已 3 天未跟进",
        now=clock(),
        customer_id=customer.id,
    )
    session.commit()

    rows = session.scalars(select(OutboxMessage)).all()
    assert [m.id for m in queued] == [r.id for r in rows]
    (row,) = rows
    assert row.recipient_id == active.id and row.touser == active.wecom_userid
    assert row.status == OutboxStatus.PENDING and row.attempts == 0
    assert row.next_attempt_at == clock() and row.created_at == clock()
    assert row.msgtype == "textcard"
    assert row.content == {"title": "客户待跟进", "description": "张三已 3 天未跟进"}


def test_text_and_markdown_carry_title_and_text_in_one_content_within_wecom_limits(session, clock):
    rep = make_company(session).reps[0][0]
    (text,) = notifications.notify(
        session, recipients=[rep], title="提醒", text="内容", now=clock(), msgtype="text"
    )
    (markdown,) = notifications.notify(
        session, recipients=[rep], title="提醒", text="长" * 2000, now=clock(), msgtype="markdown"
    )
    assert text.content == {"content": "提醒\n内容"}
    assert markdown.content["content"].startswith("**提醒**\n长")
    assert len(markdown.content["content"].encode()) <= notifications.TEXT_CONTENT_MAX_BYTES


def test_a_button_card_goes_to_each_recipient_with_its_subject(session, clock):
    first, second = make_company(session).reps[0]
    card = notifications.ButtonCard(
        subject={"order_id": 7, "step_id": 9},
        buttons=(
            notifications.CardButton("approve", "同意"),
            notifications.CardButton("no", "驳回"),
        ),
        fields=(("金额", "¥1,000.00"),),
    )
    queued = notifications.notify(
        session,
        recipients=[first, second],
        title="订单待审批",
        text="请审批",
        now=clock(),
        card=card,
    )
    assert {m.msgtype for m in queued} == {"template_card"}
    assert [(m.recipient_id, m.content["subject"]) for m in queued] == [
        (first.id, {"order_id": 7, "step_id": 9}),
        (second.id, {"order_id": 7, "step_id": 9}),
    ]
    assert queued[0].content["button_list"] == [
        {"type": 0, "text": "同意", "style": 1, "key": "approve"},
        {"type": 0, "text": "驳回", "style": 1, "key": "no"},
    ]
    assert queued[0].content["horizontal_content_list"] == [
        {"keyname": "金额", "value": "¥1,000.00"}
    ]
    assert notifications.payload(queued[0], public_url=PUBLIC_URL) == queued[0].content


@pytest.mark.parametrize(
    "card",
    [
        notifications.ButtonCard({}, (notifications.CardButton("a", "同意"),)),
        notifications.ButtonCard({"order": 7}, (notifications.CardButton("a", "同意"),)),
        notifications.ButtonCard({"order_id": "7"}, (notifications.CardButton("a", "同意"),)),
        notifications.ButtonCard(
            {"a_id": 1, "b_id": 2, "c_id": 3, "d_id": 4}, (notifications.CardButton("a", "同意"),)
        ),
        notifications.ButtonCard({"order_id": 7}, ()),
    ],
    ids=["no-id", "not-an-id", "text-id", "too-many-ids", "no-button"],
)
def test_a_card_wecom_would_refuse_is_a_bug_of_the_caller(session, clock, card):
    rep = make_company(session).reps[0][0]
    with pytest.raises(ValueError):
        notifications.notify(session, recipients=[rep], title="t", text="x", now=clock(), card=card)


def test_unknown_message_type_is_refused(session, clock):
    rep = make_company(session).reps[0][0]
    with pytest.raises(Invalid):
        notifications.notify(
            session, recipients=[rep], title="t", text="x", now=clock(), msgtype="news"
        )


def test_dedupe_key_queues_a_message_once_per_recipient(session, clock):
    company = make_company(session)
    first, second = company.reps[0]
    key = "rule:7:customer:3:2026-03-02"

    assert (
        len(
            notifications.notify(
                session, recipients=[first], title="t", text="x", now=clock(), dedupe_key=key
            )
        )
        == 1
    )
    session.commit()
    again = notifications.notify(
        session, recipients=[first, second], title="t", text="x", now=clock(), dedupe_key=key
    )
    session.commit()

    assert [m.recipient_id for m in again] == [second.id]
    keys = session.scalars(select(OutboxMessage.dedupe_key).order_by(OutboxMessage.id)).all()
    assert keys == [f"{key}:{first.id}", f"{key}:{second.id}"]


def test_textcard_links_to_the_customer_or_to_wecrm_home():
    with_customer = OutboxMessage(
        msgtype="textcard", content={"title": "t", "description": "d"}, customer_id=42
    )
    without = OutboxMessage(msgtype="textcard", content={"title": "t", "description": "d"})
    text = OutboxMessage(msgtype="text", content={"content": "c"}, customer_id=42)

    assert notifications.payload(with_customer, public_url=PUBLIC_URL + "/")["url"] == (
        f"{PUBLIC_URL}/customers/42"
    )
    assert notifications.payload(without, public_url=PUBLIC_URL)["url"] == f"{PUBLIC_URL}/"
    assert notifications.payload(text, public_url=PUBLIC_URL) == {"content": "c"}


def test_backoff_doubles_from_thirty_seconds_up_to_ten_minutes():
    assert [delivery.backoff_seconds(n) for n in range(1, 8)] == [
        30,
        60,
        120,
        240,
        480,
        600,
        600,
    ]


def test_claim_leases_due_messages_and_a_second_claim_gets_none(session, clock):
    rep = make_company(session).reps[0][0]
    notifications.notify(session, recipients=[rep], title="t", text="due", now=clock())
    notifications.notify(
        session, recipients=[rep], title="t", text="later", now=clock() + timedelta(minutes=5)
    )
    session.commit()
    lease_until = clock() + timedelta(minutes=5)

    claimed = notifications.claim_due(session, now=clock(), limit=10, lease_until=lease_until)
    session.commit()

    assert [m.content["description"] for m in claimed] == ["due"]
    assert claimed[0].status == OutboxStatus.SENDING and claimed[0].next_attempt_at == lease_until
    assert notifications.claim_due(session, now=clock(), limit=10, lease_until=lease_until) == []


def test_expired_lease_is_claimed_again_and_fails_after_max_attempts(session, clock):
    rep = make_company(session).reps[0][0]
    (message,) = notifications.notify(session, recipients=[rep], title="t", text="x", now=clock())
    session.commit()
    for _ in range(delivery.MAX_ATTEMPTS):  # a claim, then an expired lease per attempt
        lease_until = clock() + timedelta(seconds=1)
        claimed = notifications.claim_due(session, now=clock(), limit=10, lease_until=lease_until)
        assert [m.id for m in claimed] == [message.id]
        clock.advance(seconds=2)  # the worker died holding the lease
    last = notifications.claim_due(session, now=clock(), limit=10, lease_until=clock())
    assert last == []
    assert message.status == OutboxStatus.FAILED
    assert message.attempts == delivery.MAX_ATTEMPTS
    assert message.last_error == delivery.LEASE_EXPIRED_ERROR


def test_refused_message_is_retried_with_backoff_then_failed(session, clock):
    rep = make_company(session).reps[0][0]
    (message,) = notifications.notify(session, recipients=[rep], title="t", text="x", now=clock())
    for attempt in range(1, delivery.MAX_ATTEMPTS):
        notifications.record_error(
            session, message_id=message.id, now=clock(), error="WeCom error 40003:  bad\nuser"
        )
        assert message.status == OutboxStatus.PENDING
        expected = clock() + timedelta(seconds=delivery.backoff_seconds(attempt))
        assert message.next_attempt_at == expected
    notifications.record_error(session, message_id=message.id, now=clock(), error="x" * 999)
    assert message.status == OutboxStatus.FAILED
    assert len(message.last_error) == delivery.LAST_ERROR_MAX_CHARS


@pytest.fixture
def outbox(session, clock):
    """One failed message to each rep of the company."""
    company = make_company(session)
    reps = [r for team in company.reps for r in team]
    messages = notifications.notify(session, recipients=reps, title="t", text="x", now=clock())
    for message in messages:
        message.status = OutboxStatus.FAILED
    session.commit()
    return company, {m.recipient_id: m for m in messages}


@pytest.mark.parametrize("role", ["rep", "manager", "boss"])
def test_messages_are_listed_within_the_actors_scope(role, outbox, session):
    company, by_recipient = outbox
    user = {"rep": company.reps[1][0], "manager": company.managers[1], "boss": company.boss}[role]
    if role == "rep":
        expected = {by_recipient[user.id].id}
    elif role == "manager":
        expected = {by_recipient[r.id].id for r in company.reps[1]}
    else:
        expected = {m.id for m in by_recipient.values()}

    page = notifications.list_messages(session, actor=Actor.of(user), status="failed")

    assert {m.id for m in page.items} == expected and page.total == len(expected)
    assert notifications.list_messages(session, actor=Actor.of(user), status="sent").total == 0


def test_manager_retries_a_failed_message_of_their_team_only(outbox, session, clock):
    company, by_recipient = outbox
    manager = Actor.of(company.managers[0])
    own_team = by_recipient[company.reps[0][0].id]
    other_team = by_recipient[company.reps[1][0].id]

    retried = notifications.retry(session, actor=manager, message_id=own_team.id, now=clock())
    assert retried.status == OutboxStatus.PENDING and retried.attempts == 0
    assert retried.next_attempt_at == clock()
    assert after_commit.take(session) == {(after_commit.OUTBOX,)}
    with pytest.raises(NotFound):
        notifications.retry(session, actor=manager, message_id=other_team.id, now=clock())
    with pytest.raises(Conflict):
        notifications.retry(session, actor=manager, message_id=own_team.id, now=clock())
    with pytest.raises(Forbidden):
        notifications.retry(
            session, actor=Actor.of(company.reps[1][0]), message_id=other_team.id, now=clock()
        )
