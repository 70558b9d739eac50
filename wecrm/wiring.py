"""Builds the runtime with what it needs from the workers: the jobs a commit starts.

The runtime sits below the workers (jobs use it), so it cannot import them; every process
that builds one (the CLI, the app factory, the demo, tests, benchmarks) goes through here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from config import Settings
from crm import after_commit
from wecrm.runtime import JobStarter, Runtime, utc_now
from workers.jobs import enqueue_completeness, enqueue_import
from workers.mail import enqueue_mail
from workers.outbox import enqueue_outbox

STARTERS: dict[str, JobStarter] = {
    after_commit.OUTBOX: enqueue_outbox,
    after_commit.MAIL: enqueue_mail,
    after_commit.COMPLETENESS: enqueue_completeness,
    after_commit.IMPORT: enqueue_import,
}


def build_runtime(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Runtime:
    """A runtime whose commits start the workers' jobs."""
    return Runtime(settings, starters=STARTERS, clock=clock)
