"""Queues named by purpose. Each job module starts its own job once (`outbox.enqueue_outbox`,
`jobs.enqueue_import`, …), so this module imports none of them and all of them import it."""

from __future__ import annotations

from collections.abc import Callable

import redis
from rq import Queue

DEFAULT = "default"
INBOUND = "inbound"
IMPORTS = "imports"
MAINTENANCE = "maintenance"
NOTIFICATIONS = "notifications"
MAIL = "mail"
CAPTURE = "capture"  # chat archive messages into follow-ups
TRANSCRIPTION = "transcription"  # recordings and voice messages into text (speech/)
# Inbound first: a member who typed a command is waiting for the answer, which notifications
# carry. Imports last: a large file keeps a worker busy for minutes, so a worker takes one only
# when nothing a person waits for is queued (run more than one worker where imports are common).
# Chat capture, which nobody waits for by the second, goes just before them, then transcription
# (`wecrm worker` serves that one from a process of its own: see wecrm/cli.py).
ALL_QUEUES = (INBOUND, NOTIFICATIONS, DEFAULT, MAIL, MAINTENANCE, CAPTURE, TRANSCRIPTION, IMPORTS)


def queue(connection: redis.Redis, name: str) -> Queue:
    """The RQ queue `name` on `connection`."""
    return Queue(name, connection=connection)


def enqueue_once(
    connection: redis.Redis,
    func: Callable[..., object],
    *args: int,
    queue_name: str,
    pending_key: str,
    pending_seconds: int,
    job_timeout: int,
) -> None:
    """Queue one run of `func(*args)` however many commits ask for it meanwhile: `pending_key`
    stands while a run is queued (the job deletes it when it starts, so work arriving after that
    gets a run of its own), and expires after `pending_seconds` should that job be lost."""
    if connection.set(pending_key, "1", nx=True, ex=pending_seconds):
        try:
            queue(connection, queue_name).enqueue(func, *args, job_timeout=job_timeout)
        except redis.RedisError:
            connection.delete(pending_key)  # no job behind the key: let the next call try
            raise
