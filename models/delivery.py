"""The states of a row a worker delivers to the outside (WeCom app messages, emails)."""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for next_attempt_at
    SENDING = "sending"  # claimed by a worker until next_attempt_at (its lease)
    SENT = "sent"
    FAILED = "failed"  # gave up after MAX_ATTEMPTS; a person may retry it
