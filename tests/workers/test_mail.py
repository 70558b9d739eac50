"""Email delivery when the SMTP server is down, elsewhere or refuses our login: bounded retries
with back-off, a visible failure, and one delivery once it works again."""

from __future__ import annotations

import os
import smtplib
import socket
import time
from datetime import timedelta
from email.message import EmailMessage

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from config.settings import SmtpServer
from crm import delivery, emails, followups
from crm.actors import Actor
from models import FollowUp, OutgoingEmail
from tests.conftest import SMTP_PASSWORD, SMTP_USER
from tests.factories import make_company, make_customer, sign_in
from workers import queues
from workers.mail import SmtpMailer, deliver_due, enqueue_mail

PDF = b"%PDF-1.4 brochure"
DAY_SECONDS = 24 * 3600


def _work(runtime) -> None:
    SimpleWorker([queues.MAIL], connection=runtime.redis).work(burst=True)


def _rows(session) -> list[OutgoingEmail]:
    session.rollback()
    session.expire_all()
    return list(session.scalars(select(OutgoingEmail).order_by(OutgoingEmail.id)))


@pytest.fixture
def sent(session, clock, runtime, use_smtp):
    """A rep, a customer with an address, and a template with a brochure; `send()` queues one."""
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), email="buyer@example.com")
    template = emails.create_template(
        session,
        actor=Actor.of(company.managers[0]),
        name="产品手册",
        subject="{客户}您好",
        body="附件是产品手册",
        now=clock(),
    )
    emails.add_attachments(
        session,
        actor=Actor.of(company.managers[0]),
        template_id=template.id,
        uploads=[followups.Upload("手册.pdf", PDF), followups.Upload("价目表.pdf", PDF)],
        store=runtime.store,
        max_attachment_bytes=10**6,
        now=clock(),
    )
    session.commit()

    def send() -> OutgoingEmail:
        email = emails.send(
            session,
            actor=Actor.of(rep),
            customer_id=customer.id,
            template_id=template.id,
            now=clock(),
            company_name="湘瓷",
            is_configured=True,
        )
        session.commit()
        enqueue_mail(runtime.redis)  # what the API does after its commit
        return email

    return company, customer, send


def test_smtp_down_backs_off_then_fails_visibly_and_a_retry_after_it_returns_delivers_once(
    client, session, clock, runtime, fake_wecom, smtp_server, sent
):
    company, customer, send = sent
    rep = company.reps[0][0]
    smtp_server.stop()
    send()
    waits = []
    for attempt in range(1, delivery.MAX_ATTEMPTS + 1):
        _work(runtime)
        (email,) = _rows(session)
        assert email.attempts == attempt and "ConnectionRefusedError" in email.last_error
        if email.status == "failed":
            break
        assert email.status == "pending"
        waits.append(email.next_attempt_at - clock())
        clock.advance(seconds=1)
        enqueue_mail(runtime.redis)  # the periodic catch-up: not due yet, nothing tried
        _work(runtime)
        assert _rows(session)[0].attempts == attempt
        clock.current = email.next_attempt_at
        enqueue_mail(runtime.redis)
    assert [w.total_seconds() for w in waits] == [30, 60, 120, 240]  # doubling back-off
    assert (email.status, email.attempts) == ("failed", delivery.MAX_ATTEMPTS)

    headers = sign_in(client, fake_wecom, rep)
    (listed,) = client.get(f"/api/v1/customers/{customer.id}/emails", headers=headers).json["items"]
    assert listed["status"] == "failed" and "ConnectionRefusedError" in listed["last_error"]
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 0

    smtp_server.start()
    retried = client.post(f"/api/v1/emails/{email.id}/retry", headers=headers)
    assert retried.status_code == 200 and retried.json["status"] == "pending"
    _work(runtime)
    enqueue_mail(runtime.redis)
    _work(runtime)

    assert len(smtp_server.envelopes) == 1
    (email,) = _rows(session)
    assert email.status == "sent" and email.follow_up_id is not None
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 1


def test_a_wrong_port_counts_an_attempt_and_the_rest_of_the_batch_waits_untried(
    session, clock, runtime, smtp_server, use_smtp, sent
):
    _company, _customer, send = sent
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    use_smtp(smtp_server.url(port=closed_port))
    send()
    send()

    _work(runtime)

    first, second = _rows(session)
    assert (first.status, first.attempts) == ("pending", 1)
    assert (second.status, second.attempts, second.last_error) == ("pending", 0, None)
    assert second.next_attempt_at == first.next_attempt_at == clock() + timedelta(seconds=30)
    assert smtp_server.envelopes == []

    use_smtp(smtp_server.url())
    clock.advance(seconds=30)
    enqueue_mail(runtime.redis)
    _work(runtime)
    assert [e.status for e in _rows(session)] == ["sent", "sent"]
    assert len(smtp_server.envelopes) == 2


def test_a_refused_login_is_retried_and_its_error_never_holds_the_password(
    session, clock, runtime, smtp_server, use_smtp, sent
):
    _company, _customer, send = sent
    wrong = "wrong-pa55word"
    use_smtp(smtp_server.url(password=wrong))
    send()

    _work(runtime)

    (email,) = _rows(session)
    assert (email.status, email.attempts) == ("pending", 1)
    assert email.last_error.startswith("535 ")
    assert wrong not in email.last_error and SMTP_PASSWORD not in email.last_error
    assert smtp_server.envelopes == []


def test_a_recipient_the_server_refuses_for_good_fails_at_once_without_stopping_the_others(
    session, clock, runtime, smtp_server, sent
):
    _company, _customer, send = sent
    refused = send()
    session.execute(
        OutgoingEmail.__table__.update()
        .where(OutgoingEmail.id == refused.id)
        .values(to_address="nobody@example.com")
    )
    session.commit()
    send()

    async def refuse_nobody(server, session_, envelope, address, options):
        if address == "nobody@example.com":
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    smtp_server.handle_RCPT = refuse_nobody
    _work(runtime)

    first, second = _rows(session)
    assert (first.status, first.attempts) == ("failed", 1)
    assert first.last_error == "nobody@example.com: 550 5.1.1 No such user"
    assert second.status == "sent"
    assert [e.rcpt_tos for e in smtp_server.envelopes] == [["buyer@example.com"]]


def test_an_smtp_server_that_never_answers_times_out_within_the_bound():
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SMTP_USER, "a@example.com", "主题"
    message.set_content("正文")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections and never says a word
        server = SmtpServer("127.0.0.1", silent.getsockname()[1], "none", SMTP_USER, "x")
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            SmtpMailer(server, timeout=0.5).send(message)
    assert time.monotonic() - started < 3


def test_a_sending_row_whose_lease_ran_out_is_sent_again(
    session, clock, runtime, smtp_server, sent
):
    _company, _customer, send = sent
    send()
    with runtime.db.session() as claiming:
        emails.claim_due(
            claiming, now=clock(), limit=10, lease_until=clock() + timedelta(minutes=15)
        )
        claiming.commit()  # ...and the worker died here
    deliver_due(
        runtime.db,
        runtime.redis,
        runtime.store,
        SmtpMailer(runtime.settings.smtp),
        clock,
        mail_from=SMTP_USER,
    )
    assert smtp_server.envelopes == []  # still leased

    clock.advance(minutes=15)
    deliver_due(
        runtime.db,
        runtime.redis,
        runtime.store,
        SmtpMailer(runtime.settings.smtp),
        clock,
        mail_from=SMTP_USER,
    )
    (email,) = _rows(session)
    assert (email.status, email.attempts) == ("sent", 1)
    assert email.last_error == delivery.LEASE_EXPIRED_ERROR
    assert len(smtp_server.envelopes) == 1


def test_template_files_and_unsent_emails_keep_their_stored_files_from_the_orphan_sweep(
    session, clock, runtime, sent
):
    company, _customer, send = sent
    manager = Actor.of(company.managers[0])
    (template,) = emails.list_templates(session, actor=manager)
    kept, removed = template.attachments
    send()  # pending: its snapshot names both files
    emails.remove_attachment(
        session, actor=manager, template_id=template.id, attachment_id=removed.id, now=clock()
    )
    session.commit()
    day_ago = time.time() - DAY_SECONDS - 60
    for key in (kept.storage_key, removed.storage_key):
        os.utime(runtime.store.path(key), (day_ago, day_ago))

    _purge(runtime)
    assert runtime.store.path(kept.storage_key).exists()
    assert runtime.store.path(removed.storage_key).exists()  # the pending email needs it

    session.execute(OutgoingEmail.__table__.delete())
    session.commit()
    _purge(runtime)
    assert runtime.store.path(kept.storage_key).exists()  # still on the template
    assert not runtime.store.path(removed.storage_key).exists()


def _purge(runtime) -> None:
    from workers import jobs

    queues.queue(runtime.redis, queues.MAINTENANCE).enqueue(jobs.purge_orphan_uploads)
    SimpleWorker([queues.MAINTENANCE], connection=runtime.redis).work(burst=True)
