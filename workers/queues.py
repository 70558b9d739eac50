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
# Inbound first: a member who typed a command is waiting for the answer.
ALL_QUEUES = (INBOUND, DEFAULT, IMPORTS, MAINTENANCE, NOTIFICATIONS, MAIL)


def queue(connection: redis.Redis, name: str) -> Queue:
    """The RQ queue `name` on `connection`."""
    return Queue(name, connection=connection)
