"""Email delivery: due emails go to the SMTP server, then onto the customer's timeline.

Delivery is at least once, as in the WeCom outbox (workers/outbox.py): a run leases a batch in
one short transaction, talks SMTP outside any transaction, and records each outcome in its own
short transaction. When the server cannot be reached, times out or refuses our login, the email
that found it so counts an attempt and the rest of the batch waits as long as it does, untried.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

import redis

from config.settings import SmtpServer
from crm import emails
from crm.delivery import backoff_seconds
from crm.storage import FileStore
from models import Database, OutgoingEmail
from workers import context, queues

log = logging.getLogger(__name__)

# Every socket operation (connect, each command, each block of data) gives up after this long.
# One email delivery run waits at a time; the run deletes the key as it starts.
MAIL_LOCK_KEY = "wecrm:lock:send_mail"
MAIL_LOCK_SECONDS = 600
SMTP_TIMEOUT_SECONDS = 20
BATCH_SIZE = 20
MAX_BATCHES_PER_RUN = 10  # then the run hands over to a fresh job, so one run stays bounded
# Far longer than a batch takes (each send is bounded by the timeouts); expiry means a dead worker.
LEASE_SECONDS = 900


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand one message to the mail system; raise smtplib.SMTPException or OSError."""


class SmtpMailer:
    """The real mailer: smtplib, one connection per message (reps send a few a day)."""

    def __init__(self, server: SmtpServer, *, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        self.server = server
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        server = self.server
        tls = ssl.create_default_context()
        smtp = (
            smtplib.SMTP_SSL(server.host, server.port, timeout=self.timeout, context=tls)
            if server.security == "tls"
            else smtplib.SMTP(server.host, server.port, timeout=self.timeout)
        )
        with smtp:
            if server.security == "starttls":
                smtp.starttls(context=tls)
            if server.username:
                smtp.login(server.username, server.password)
            smtp.send_message(message)


@dataclass(frozen=True)
class _Claimed:
    """What the sender needs of a claimed row once its claiming session is closed."""

    id: int
    to_address: str
    subject: str
    body: str
    attachments: list[dict[str, Any]]
    created_at: datetime


def enqueue_mail(connection: redis.Redis) -> None:
    """Start one email delivery run, however many emails were queued meanwhile."""
    queues.enqueue_once(
        connection,
        send_mail,
        queue_name=queues.MAIL,
        pending_key=MAIL_LOCK_KEY,
        pending_seconds=MAIL_LOCK_SECONDS,
        job_timeout=1800,
    )


def send_mail() -> dict[str, int]:
    """Deliver every due email (the job sends, retries and the schedule enqueue)."""
    rt = context.runtime()
    rt.redis.delete(MAIL_LOCK_KEY)  # emails queued from now on need another run
    server = rt.settings.smtp
    if server is None:
        log.warning("WECRM_SMTP_URL is not set; emails wait until it is")
        return {}
    return deliver_due(
        rt.db,
        rt.redis,
        rt.store,
        SmtpMailer(server),
        rt.clock,
        mail_from=rt.settings.mail_from,
        secrets=(server.password,),
    )


def deliver_due(
    db: Database,
    connection: redis.Redis,
    store: FileStore,
    mailer: Mailer,
    clock: Callable[[], datetime],
    *,
    mail_from: str,
    secrets: tuple[str, ...] = (),
) -> dict[str, int]:
    """Claim and send due emails batch by batch; stop early while the server is unusable.
    `secrets` never appear in a stored error."""
    report: Counter[str] = Counter()
    for _ in range(MAX_BATCHES_PER_RUN):
        batch = _claim(db, clock)
        if not batch:
            break
        for index, email in enumerate(batch):
            outcome, next_try = _send_one(db, store, mailer, clock, email, mail_from, secrets)
            report[outcome] += 1
            if outcome == "unavailable":
                rest = batch[index + 1 :]
                if rest:
                    until = next_try or clock() + timedelta(seconds=backoff_seconds(1))
                    _record_each(db, emails.defer, rest, until=until)
                    report["released"] += len(rest)
                return dict(report)
    else:
        enqueue_mail(connection)  # more than one run's worth: continue in a new job
    return dict(report)


def build_message(email: _Claimed, *, mail_from: str, store: FileStore) -> EmailMessage:
    """The MIME message: UTF-8 text and the template's files read from the store."""
    message = EmailMessage()
    message["Subject"] = email.subject
    message["From"] = mail_from
    message["To"] = email.to_address
    message["Date"] = format_datetime(email.created_at)
    # Stable per email, so a copy sent again after a lost lease reads as the same message.
    domain = message["From"].addresses[0].domain
    message["Message-ID"] = f"<wecrm-email-{email.id}.{int(email.created_at.timestamp())}@{domain}>"
    message.set_content(email.body)
    for file in email.attachments:
        maintype, subtype = file["content_type"].split("/", 1)
        message.add_attachment(
            store.path(file["storage_key"]).read_bytes(),
            maintype=maintype,
            subtype=subtype,
            filename=file["filename"],
        )
    return message


def _claim(db: Database, clock: Callable[[], datetime]) -> list[_Claimed]:
    # lock_for_write: on SQLite the claim's read and write happen under one write lock, so two
    # workers cannot read the same due rows; PostgreSQL uses FOR UPDATE SKIP LOCKED instead.
    with db.session(lock_for_write=True) as session:
        now = clock()
        rows = emails.claim_due(
            session, now=now, limit=BATCH_SIZE, lease_until=now + timedelta(seconds=LEASE_SECONDS)
        )
        claimed = [_snapshot(row) for row in rows]
        session.commit()
    return claimed


def _snapshot(row: OutgoingEmail) -> _Claimed:
    return _Claimed(
        id=row.id,
        to_address=row.to_address,
        subject=row.subject,
        body=row.body,
        attachments=list(row.attachments),
        created_at=row.created_at,
    )


def _send_one(
    db: Database,
    store: FileStore,
    mailer: Mailer,
    clock: Callable[[], datetime],
    email: _Claimed,
    mail_from: str,
    secrets: tuple[str, ...],
) -> tuple[str, datetime | None]:
    """Send one claimed email and record what happened: (outcome, when it is tried next)."""
    try:
        message = build_message(email, mail_from=mail_from, store=store)
    except OSError as error:  # a stored file is gone: sending again cannot help
        _record(
            db,
            emails.record_error,
            email_id=email.id,
            now=clock(),
            error=str(error),
            permanent=True,
        )
        return "error", None
    try:
        mailer.send(message)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as error:
        # The server is fine but will not take this message: 5xx for good, 4xx for now.
        codes = (
            [code for code, _ in error.recipients.values()]
            if isinstance(error, smtplib.SMTPRecipientsRefused)
            else [error.smtp_code]
        )
        log.info("SMTP server refused email %d: %s", email.id, _describe(error, secrets))
        next_try = _record(
            db,
            emails.record_error,
            email_id=email.id,
            now=clock(),
            error=_describe(error, secrets),
            permanent=all(code >= 500 for code in codes),
        )
        return "refused", next_try
    except (smtplib.SMTPException, OSError) as error:
        # Down, timed out, TLS or login refused, or it hung up: nothing gets through for now.
        log.warning("SMTP server unusable; mail paused: %s", _describe(error, secrets))
        next_try = _record(
            db,
            emails.record_error,
            email_id=email.id,
            now=clock(),
            error=_describe(error, secrets),
        )
        return "unavailable", next_try
    _record(db, emails.mark_sent, email_id=email.id, now=clock())
    return "sent", None


def _describe(error: Exception, secrets: tuple[str, ...]) -> str:
    """An error as stored for people to read, without any credential in it."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        text = "; ".join(
            f"{address}: {code} {reply.decode(errors='replace')}"
            for address, (code, reply) in error.recipients.items()
        )
    elif isinstance(error, smtplib.SMTPResponseException):
        reply = error.smtp_error
        if isinstance(reply, bytes):
            reply = reply.decode(errors="replace")
        text = f"{error.smtp_code} {reply}"
    else:
        text = f"{type(error).__name__}: {error}"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _record(db: Database, change: Callable[..., Any], **kwargs: Any) -> Any:
    """Apply one outcome in its own short transaction."""
    with db.session(lock_for_write=True) as session:
        result = change(session, **kwargs)
        session.commit()
        return result


def _record_each(
    db: Database, change: Callable[..., Any], batch: list[_Claimed], **kwargs: Any
) -> None:
    with db.session(lock_for_write=True) as session:
        for email in batch:
            change(session, email_id=email.id, **kwargs)
        session.commit()
