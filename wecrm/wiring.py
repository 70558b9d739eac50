"""Builds the runtime with what it needs from the workers: the jobs a commit starts.

The runtime sits below the workers (jobs use it), so it cannot import them; every process
that builds one (the CLI, the app factory, the demo, tests, benchmarks) goes through here,
which is also where its logging learns the secrets it must never show.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from config import Settings, redaction
from crm import after_commit
from wecrm.runtime import JobStarter, Runtime, utc_now
from workers.archive import enqueue_pull
from workers.capture import enqueue_capture
from workers.jobs import enqueue_completeness, enqueue_import
from workers.mail import enqueue_mail
from workers.outbox import enqueue_outbox
from workers.transcription import enqueue_transcription

STARTERS: dict[str, JobStarter] = {
    after_commit.OUTBOX: enqueue_outbox,
    after_commit.MAIL: enqueue_mail,
    after_commit.COMPLETENESS: enqueue_completeness,
    after_commit.IMPORT: enqueue_import,
    after_commit.CAPTURE: enqueue_capture,
    after_commit.PULL_ARCHIVE: enqueue_pull,
    after_commit.TRANSCRIBE: enqueue_transcription,
}


def build_runtime(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Runtime:
    """A runtime whose commits start the workers' jobs; the settings' secrets are redacted
    from this process's logs from now on."""
    redaction.install(settings.secret_values)
    return Runtime(settings, starters=STARTERS, clock=clock)
