"""Queues named by purpose, and the enqueue helpers the edges call."""

from __future__ import annotations

import redis
from rq import Queue

DEFAULT = "default"
IMPORTS = "imports"
MAINTENANCE = "maintenance"
NOTIFICATIONS = "notifications"
ALL_QUEUES = (DEFAULT, IMPORTS, MAINTENANCE, NOTIFICATIONS)
# While one completeness recompute waits in the queue, more requests for it add nothing.
COMPLETENESS_LOCK_KEY = "wecrm:lock:recompute_completeness"
COMPLETENESS_LOCK_SECONDS = 600
# Likewise one outbox run waits at a time; the run deletes the key as it starts.
OUTBOX_LOCK_KEY = "wecrm:lock:send_outbox"
OUTBOX_LOCK_SECONDS = 600


def queue(connection: redis.Redis, name: str) -> Queue:
    return Queue(name, connection=connection)


def enqueue_import(connection: redis.Redis, import_id: int) -> None:
    from workers import jobs

    queue(connection, IMPORTS).enqueue(jobs.run_import, import_id, job_timeout=3600)


def enqueue_completeness(connection: redis.Redis) -> None:
    """Re-score every customer's completeness once, however many field edits asked for it."""
    from workers import jobs

    if connection.set(COMPLETENESS_LOCK_KEY, "1", nx=True, ex=COMPLETENESS_LOCK_SECONDS):
        queue(connection, MAINTENANCE).enqueue(jobs.recompute_completeness, job_timeout=1800)


def enqueue_outbox(connection: redis.Redis) -> None:
    """Start one outbox run, however many commits queued messages meanwhile."""
    from workers import outbox

    if connection.set(OUTBOX_LOCK_KEY, "1", nx=True, ex=OUTBOX_LOCK_SECONDS):
        queue(connection, NOTIFICATIONS).enqueue(outbox.send_outbox, job_timeout=600)
