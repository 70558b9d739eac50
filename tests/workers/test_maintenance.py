"""Periodic maintenance through the real scheduler, Redis and an RQ worker."""

from __future__ import annotations

import os
import time

from rq import Queue, SimpleWorker

from crm import followups
from crm.actors import Actor
from tests.factories import make_company, make_customer
from workers import queues
from workers.schedule import PERIODIC_JOBS, build_scheduler

DAY_SECONDS = 24 * 3600


def test_scheduler_enqueues_every_periodic_job_on_its_queue(runtime):
    scheduler = build_scheduler(runtime.redis)
    enqueued = scheduler.enqueue_jobs()
    assert len(enqueued) == len(PERIODIC_JOBS)
    for name in {periodic.queue for periodic in PERIODIC_JOBS}:
        queued = Queue(name, connection=runtime.redis).get_jobs()
        assert sorted(j.func_name for j in queued) == sorted(
            f"{p.func.__module__}.{p.func.__name__}" for p in PERIODIC_JOBS if p.queue == name
        )
    assert scheduler.enqueue_jobs() == []  # not due again until its interval has passed


def test_orphaned_uploads_are_purged_by_the_worker_but_attached_files_stay(runtime, session, clock):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock())
    follow_up = followups.log_follow_up(
        session,
        actor=Actor.of(rep),
        customer_id=customer.id,
        method="电话",
        summary="报价",
        now=clock(),
        store=runtime.store,
        max_attachment_bytes=10**6,
        uploads=[followups.Upload("报价.pdf", b"%PDF-1.4")],
    )
    session.commit()
    kept_key = follow_up.attachments[0].storage_key
    old_orphan, _ = runtime.store.save(b"left by a failed request", suffix=".pdf")
    new_orphan, _ = runtime.store.save(b"request still running", suffix=".pdf")
    day_ago = time.time() - DAY_SECONDS - 60
    for key in (kept_key, old_orphan):
        os.utime(runtime.store.path(key), (day_ago, day_ago))

    build_scheduler(runtime.redis).enqueue_jobs()
    SimpleWorker([queues.MAINTENANCE], connection=runtime.redis).work(burst=True)

    assert runtime.store.path(kept_key).exists()
    assert runtime.store.path(new_orphan).exists()
    assert not runtime.store.path(old_orphan).exists()
