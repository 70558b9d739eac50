"""Queues named by purpose. Each job module starts its own job once (`outbox.enqueue_outbox`,
`jobs.enqueue_import`, …), so this module imports none of them and all of them import it."""

from __future__ import annotations

import redis
from rq import Queue

DEFAULT = "default"
INBOUND = "inbound"
IMPORTS = "imports"
MAINTENANCE = "maintenance"
NOTIFICATIONS = "notifications"
MAIL = "mail"
CAPTURE = "capture"  # chat archive messages into follow-ups
# Inbound first: a member who typed a command is waiting for the answer, which notifications
# carry. Imports last: a large file keeps a worker busy for minutes, so a worker takes one only
# when nothing a person waits for is queued (run more than one worker where imports are common).
# Chat capture, which nobody waits for by the second, goes just before them.
ALL_QUEUES = (INBOUND, NOTIFICATIONS, DEFAULT, MAIL, MAINTENANCE, CAPTURE, IMPORTS)


def queue(connection: redis.Redis, name: str) -> Queue:
    """The RQ queue `name` on `connection`."""
    return Queue(name, connection=connection)
