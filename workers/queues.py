"""Queues named by purpose, and the enqueue helpers the edges call."""

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
# While one completeness recompute waits in the queue, more requests for it add nothing.
COMPLETENESS_LOCK_KEY = "wecrm:lock:recompute_completeness"
COMPLETENESS_LOCK_SECONDS = 600
# Likewise one outbox run waits at a time; the run deletes the key as it starts.
OUTBOX_LOCK_KEY = "wecrm:lock:send_outbox"
OUTBOX_LOCK_SECONDS = 600
# And one inbound drain: a burst of WeCom messages costs one SET NX each, not an RQ job each.
INBOUND_LOCK_KEY = "wecrm:lock:process_inbound"
INBOUND_LOCK_SECONDS = 600
# One email delivery run at a time as well.
MAIL_LOCK_KEY = "wecrm:lock:send_mail"
MAIL_LOCK_SECONDS = 600


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


def enqueue_inbound(connection: redis.Redis) -> None:
    """Start one drain of stored WeCom messages, however many arrived meanwhile."""
    from workers import inbound

    if connection.set(INBOUND_LOCK_KEY, "1", nx=True, ex=INBOUND_LOCK_SECONDS):
        try:
            queue(connection, INBOUND).enqueue(inbound.process_inbound, job_timeout=600)
        except redis.RedisError:
            # No job behind the key: without this, messages would wait for the sweeper until
            # the key expires.
            connection.delete(INBOUND_LOCK_KEY)
            raise


def enqueue_mail(connection: redis.Redis) -> None:
    """Start one email delivery run, however many emails were queued meanwhile."""
    from workers import mail

    if connection.set(MAIL_LOCK_KEY, "1", nx=True, ex=MAIL_LOCK_SECONDS):
        try:
            queue(connection, MAIL).enqueue(mail.send_mail, job_timeout=1800)
        except redis.RedisError:
            connection.delete(MAIL_LOCK_KEY)  # no job behind the key: let the next call try
            raise
