"""The one list of periodic jobs, run by RQ's own cron scheduler, or one round of them at once
(`wecrm sweep`, a burst worker)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import redis
from rq.cron import CronScheduler
from rq.job import Job

from workers import (
    archive,
    capture,
    contact_stats,
    digest,
    inbound,
    jobs,
    mail,
    outbox,
    queues,
    transcription,
)


@dataclass(frozen=True)
class Periodic:
    func: Callable[..., object]
    queue: str
    every_seconds: int
    label: str  # what `wecrm sweep` prints before the job's result


PERIODIC_JOBS = (
    Periodic(
        jobs.purge_orphan_uploads,
        queues.MAINTENANCE,
        every_seconds=6 * 3600,
        label="清理无主的上传文件（个）",
    ),
    # Catches messages whose after-commit enqueue was lost, and retries that came due.
    Periodic(outbox.send_outbox, queues.NOTIFICATIONS, every_seconds=60, label="发送企业微信消息"),
    # Timer rules count days; a sweep every five minutes acts within minutes of a deadline.
    Periodic(jobs.run_timers, queues.MAINTENANCE, every_seconds=300, label="定时规则触发（次）"),
    # Emails whose after-commit enqueue was lost, and retries that came due.
    Periodic(mail.send_mail, queues.MAIL, every_seconds=60, label="发送客户邮件"),
    # Imports whose worker died mid-file: failed with where they stopped, not "running" forever.
    Periodic(
        jobs.fail_stalled_imports,
        queues.MAINTENANCE,
        every_seconds=60,
        label="结束处理程序已停止的导入（个）",
    ),
    # WeCom keeps archived records a few days: pull even when no msgaudit_notify arrives.
    Periodic(archive.pull_archive, queues.CAPTURE, every_seconds=300, label="拉取会话内容存档"),
    # Chat archive messages whose enqueue was lost, and windows whose half hour has passed.
    Periodic(
        capture.capture_chats,
        queues.CAPTURE,
        every_seconds=120,
        label="会话存档生成跟进",
    ),
    # Recordings whose worker stopped mid-job (or whose job was lost): queued again.
    Periodic(
        transcription.requeue_stalled_recordings,
        queues.MAINTENANCE,
        every_seconds=300,
        label="重新排队中断的录音转写（条）",
    ),
    # WeCom's 联系客户统计 of finished days; hourly so a day missed in an outage comes soon.
    Periodic(
        contact_stats.fetch_contact_stats,
        queues.MAINTENANCE,
        every_seconds=3600,
        label="拉取企业微信联系客户统计",
    ),
    # Acts once a day, at WECRM_DIGEST_TIME (Beijing); each run checks whether that time has come.
    Periodic(digest.send_digests, queues.MAINTENANCE, every_seconds=60, label="发送每日晨报（份）"),
    # WeCom messages stored but not processed (a lost enqueue, a crashed worker, a retry due).
    Periodic(
        inbound.sweep_inbound, queues.INBOUND, every_seconds=60, label="处理积压的企业微信消息"
    ),
)


def enqueue_round(connection: redis.Redis) -> list[tuple[Periodic, Job]]:
    """One run of every periodic job, queued now for whichever workers serve `connection`."""
    return [
        (periodic, queues.queue(connection, periodic.queue).enqueue(periodic.func))
        for periodic in PERIODIC_JOBS
    ]


def build_scheduler(connection: redis.Redis) -> CronScheduler:
    scheduler = CronScheduler(connection=connection, logging_level=logging.INFO, name="wecrm")
    for job in PERIODIC_JOBS:
        scheduler.register(job.func, queue_name=job.queue, interval=job.every_seconds)
    return scheduler
