"""Builds the runtime with what it needs from the workers: the senders a commit starts.

The runtime sits below the workers (jobs use it), so it cannot import them; every process
that builds one (the CLI, the app factory, the demo, tests, benchmarks) goes through here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from config import Settings
from crm import delivery
from wecrm.runtime import Runtime, SenderStarter, utc_now
from workers.mail import enqueue_mail
from workers.outbox import enqueue_outbox

SENDERS: dict[str, SenderStarter] = {
    delivery.OUTBOX: enqueue_outbox,
    delivery.MAIL: enqueue_mail,
}


def build_runtime(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Runtime:
    """A runtime whose commits start the workers' senders."""
    return Runtime(settings, senders=SENDERS, clock=clock)
