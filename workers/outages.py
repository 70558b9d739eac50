"""Keeps `wecrm worker` and `wecrm scheduler` running through a Redis outage.

RQ's worker retries only while it waits for a job: Redis going away anywhere else (a
heartbeat, a job's bookkeeping, the teardown) ends `Worker.work`, and RQ's cron scheduler
has no retry at all. Rather than patch either loop, each runs inside a small supervisor here:
when the loop ends without being asked to stop, the supervisor waits for Redis with
exponential back-off, logging each attempt once, then starts it again. Nothing is lost
meanwhile: the callback stores messages before it answers, and the first drain after the
restart (a new message's, or the sweeper's) takes every pending one.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Sequence

import redis
from redis.backoff import ExponentialBackoff
from rq import SimpleWorker, Worker
from rq.cron import CronScheduler
from rq.exceptions import StopRequested

log = logging.getLogger(__name__)

REDIS_DOWN_ERRORS = (redis.ConnectionError, redis.TimeoutError)
# From one second, doubling, to at most half a minute between two attempts.
RECONNECT_BACKOFF = ExponentialBackoff(cap=30, base=0.5)


def wait_for_redis(
    connection: redis.Redis, *, what: str, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Block until `connection` answers a PING, retrying with back-off; `what` names the
    process in the log."""
    failures = 0
    while True:
        try:
            connection.ping()
        except REDIS_DOWN_ERRORS as error:
            failures += 1
            delay = RECONNECT_BACKOFF.compute(failures)
            log.warning(
                "%s: Redis unreachable (%s); retry %d in %.0f s",
                what,
                type(error).__name__,
                failures,
                delay,
            )
            sleep(delay)
            continue
        if failures:
            log.info("%s: Redis is back after %d retries; carrying on", what, failures)
        return


class _RemembersStop:
    """Remembers a warm shutdown asked by a signal: RQ ends its loop the same way for that and
    for an error it cannot handle."""

    stop_was_requested = False

    def handle_warm_shutdown_request(self) -> None:
        self.stop_was_requested = True
        super().handle_warm_shutdown_request()  # type: ignore[misc]


class _Worker(_RemembersStop, Worker):
    """RQ's forking worker: each job in a forked horse."""


class _SimpleWorker(_RemembersStop, SimpleWorker):
    """RQ's worker that runs jobs in its own process, with what it loaded before (the speech
    model: CTranslate2's thread pools do not survive a fork, a forked horse would hang)."""


def run_worker(
    connection: redis.Redis, queue_names: Sequence[str], *, burst: bool, forking: bool = True
) -> None:
    """Work `queue_names` until stopped by a signal (or, in burst, until they are empty);
    a loop that Redis ended starts again once Redis answers. `forking=False` runs the jobs in
    this process, with whatever it has loaded."""
    worker_class = _Worker if forking else _SimpleWorker
    while True:
        worker = worker_class(list(queue_names), connection=connection)
        try:
            worker.work(burst=burst)
        except REDIS_DOWN_ERRORS:
            # The teardown could not deregister the worker (its key expires by itself) and
            # never reached the unsubscribe: stop the listener thread, or it outlives the loop.
            if worker.pubsub_thread is not None:
                worker.pubsub_thread.stop()
        except StopRequested:
            return  # a signal arrived while the teardown was talking to Redis
        if worker.horse_pid:
            # The loop ended while a job ran in its forked horse: let the job finish (its own
            # timeout bounds it), so that a restarted worker never runs two jobs at once.
            worker.wait_for_horse()
        if burst or worker.stop_was_requested:
            return
        # Any other end is an error RQ could not handle; in the worker process (jobs run in a
        # forked horse) that means Redis, or a bug: wait for Redis either way, so a bug costs a
        # restart a second rather than a busy loop.
        log.warning("worker %s stopped without being asked; restarting it", worker.name)
        _stop_on_signals()  # RQ's handlers would talk to Redis
        try:
            wait_for_redis(connection, what="worker")
            time.sleep(1)
        except StopRequested:
            return


def _stop_on_signals() -> None:
    def stop(signum: int, frame: object) -> None:
        raise StopRequested()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def run_scheduler(scheduler: CronScheduler) -> None:
    """Run RQ's cron scheduler until a signal stops it; when Redis goes away, wait for it and
    carry on with the same schedule (a job due meanwhile is enqueued at once)."""
    while True:
        try:
            scheduler.start()  # returns when a signal stopped it
            return
        except REDIS_DOWN_ERRORS as error:
            log.warning("scheduler: lost Redis (%s)", type(error).__name__)
        try:
            # The scheduler's signal handlers stay installed and raise StopRequested.
            wait_for_redis(scheduler.connection, what="scheduler")
        except StopRequested:
            return
