"""Rows a worker delivers to the outside under a lease: WeCom app messages (the outbox) and
emails. Both live the same way: pending → sending (a lease until next_attempt_at) → sent; back
to pending with a back-off after a failure; failed after MAX_ATTEMPTS; pending again when a
person retries. These are the state changes, each made in the caller's short transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.delivery import DeliveryStatus

MAX_ATTEMPTS = 5
BACKOFF_FIRST_SECONDS = 30
BACKOFF_MAX_SECONDS = 600
LAST_ERROR_MAX_CHARS = 255
LEASE_EXPIRED_ERROR = "worker stopped while sending; resent after its lease expired"


def backoff_seconds(attempts: int) -> int:
    """Wait before the next try after `attempts` failed ones: 30 s doubling, at most 10 min."""
    return min(BACKOFF_FIRST_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)


def short_error(error: str) -> str:
    """An error text fit to store and show: one line, bounded."""
    return " ".join(error.split())[:LAST_ERROR_MAX_CHARS]


def claim_due(
    session: Session, model: type[Any], *, now: datetime, limit: int, lease_until: datetime
) -> list[Any]:
    """Lease up to `limit` due rows of `model`, oldest first, so that no other worker takes them."""
    # A "sending" row whose lease ran out belongs to a worker that stopped mid-send; the other
    # side may or may not have taken it, and it is sent again (at least once) rather than lost.
    rows = session.scalars(
        select(model)
        .where(
            model.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
            model.next_attempt_at <= now,
        )
        .order_by(model.id)
        .limit(limit)
        # PostgreSQL: rows another worker is claiming are skipped, not waited for. SQLite ignores
        # this; there the caller's write-locked session serialises claims.
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for row in rows:
        if row.status == DeliveryStatus.SENDING:
            row.attempts += 1
            row.last_error = LEASE_EXPIRED_ERROR
            if row.attempts >= MAX_ATTEMPTS:  # a row that keeps killing workers stops
                row.status = DeliveryStatus.FAILED
                continue
        row.status = DeliveryStatus.SENDING
        row.next_attempt_at = lease_until
        claimed.append(row)
    session.flush()
    return claimed


def defer(row: Any, *, until: datetime) -> None:
    """Put a claimed row back, untried, until `until` (a rate limit, the other side down)."""
    if row.status == DeliveryStatus.SENDING:
        row.status = DeliveryStatus.PENDING
        row.next_attempt_at = until


def record_error(row: Any, *, now: datetime, error: str, permanent: bool = False) -> None:
    """A failed try: retry after a back-off, fail after MAX_ATTEMPTS tries (at once if
    `permanent`)."""
    row.attempts += 1
    row.last_error = short_error(error)
    if permanent or row.attempts >= MAX_ATTEMPTS:
        row.status = DeliveryStatus.FAILED
    else:
        row.status = DeliveryStatus.PENDING
        row.next_attempt_at = now + timedelta(seconds=backoff_seconds(row.attempts))


def retry(row: Any, *, now: datetime) -> None:
    """A person sends a failed row again, with a fresh set of attempts."""
    row.status = DeliveryStatus.PENDING
    row.attempts = 0  # last_error stays: it tells why the row had failed
    row.next_attempt_at = now
