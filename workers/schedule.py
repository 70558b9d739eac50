"""The one list of periodic jobs, run by RQ's own cron scheduler."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import redis
from rq.cron import CronScheduler

from workers import inbound, jobs, mail, outbox, queues


@dataclass(frozen=True)
class Periodic:
    func: Callable[..., object]
    queue: str
    every_seconds: int


PERIODIC_JOBS = (
    Periodic(jobs.purge_orphan_uploads, queues.MAINTENANCE, every_seconds=6 * 3600),
    # Catches messages whose after-commit enqueue was lost, and retries that came due.
    Periodic(outbox.send_outbox, queues.NOTIFICATIONS, every_seconds=60),
    # Timer rules count days; a sweep every five minutes acts within minutes of a deadline.
    Periodic(jobs.run_timers, queues.MAINTENANCE, every_seconds=300),
    # Emails whose after-commit enqueue was lost, and retries that came due.
    Periodic(mail.send_mail, queues.MAIL, every_seconds=60),
    # WeCom messages stored but not processed (a lost enqueue, a crashed worker, a retry due).
    Periodic(inbound.sweep_inbound, queues.INBOUND, every_seconds=60),
)


def build_scheduler(connection: redis.Redis) -> CronScheduler:
    scheduler = CronScheduler(connection=connection, logging_level=logging.INFO, name="wecrm")
    for job in PERIODIC_JOBS:
        scheduler.register(job.func, queue_name=job.queue, interval=job.every_seconds)
    return scheduler
