"""Work that must start once the transaction that asked for it is committed.

A service that leaves rows for a worker (an outbox message, an email, an import, a new required
field) names the job here; the edge that owns the session commits, and the runtime's
after-commit hook (wecrm/runtime.py) enqueues what was named. A job started before the commit
would look for rows it cannot see yet; a rolled-back transaction starts nothing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

KEY = "wecrm.after_commit"  # in Session.info
OUTBOX = "outbox"  # send WeCom app messages
MAIL = "mail"  # send emails
COMPLETENESS = "completeness"  # re-score every customer's completeness
IMPORT = "import"  # import one uploaded file; takes the ImportJob id
PULL_ARCHIVE = "pull_archive"  # pull WeCom's message archive (msgaudit_notify woke us)
CAPTURE = "capture"  # turn stored chat archive messages into follow-ups
TRANSCRIBE = "transcribe"  # transcribe one recording; takes the Recording id


def start(session: Session, job: str, *args: int) -> None:
    """Have `job` (with `args`) start once this session's transaction is committed."""
    session.info.setdefault(KEY, set()).add((job, *args))


def take(session: Session) -> set[tuple[str, ...]]:
    """The jobs named since the last call, each as (job, *args); the list starts empty again."""
    return session.info.pop(KEY, set())
