"""Job functions: importable, take ids, open their own session, commit or fail as a whole."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import completeness, emails, imports
from crm.actors import Actor
from crm.errors import DomainError
from crm.rules import timers
from models import Attachment, ImportJob, User
from models.imports import ImportStatus
from workers import context, queues

log = logging.getLogger(__name__)
# While one completeness recompute waits in the queue, more requests for it add nothing.
COMPLETENESS_LOCK_KEY = "wecrm:lock:recompute_completeness"
COMPLETENESS_LOCK_SECONDS = 600
PROGRESS_KEY = "wecrm:import:{id}:progress"
ORPHAN_UPLOAD_AGE_SECONDS = 24 * 3600
INTERNAL_IMPORT_ERROR = "导入时发生内部错误，已全部撤销，请联系管理员"


def enqueue_import(connection: redis.Redis, import_id: int) -> None:
    """Queue the import of one uploaded file."""
    queues.queue(connection, queues.IMPORTS).enqueue(run_import, import_id, job_timeout=3600)


def enqueue_completeness(connection: redis.Redis) -> None:
    """Re-score every customer's completeness once, however many field edits asked for it."""
    if connection.set(COMPLETENESS_LOCK_KEY, "1", nx=True, ex=COMPLETENESS_LOCK_SECONDS):
        queues.queue(connection, queues.MAINTENANCE).enqueue(
            recompute_completeness, job_timeout=1800
        )


def run_import(import_id: int) -> dict[str, int]:
    """Import one uploaded file; the rows land together with the report, or not at all."""
    rt = context.runtime()
    with rt.db.session(lock_for_write=True) as session:
        job = session.get(ImportJob, import_id)
        if job is None or job.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
            return {}
        job.status = ImportStatus.RUNNING
        session.commit()
        creator = session.get(User, job.created_by)
        assert creator is not None
        key = PROGRESS_KEY.format(id=import_id)

        def progress(done: int, total: int) -> None:
            if done % 100 == 0 or done == total:
                rt.redis.set(key, f"{done}/{total}", ex=3600)

        try:
            result = imports.import_customers(
                session,
                actor=Actor.of(creator),
                path=rt.store.path(job.storage_key),
                on_duplicate=job.on_duplicate,
                now=rt.clock(),
                on_progress=progress,
            )
        except DomainError as error:
            _fail_import(session, import_id, error.message, error.field, rt.clock())
            return {"errors": 1}
        except Exception:
            _fail_import(session, import_id, INTERNAL_IMPORT_ERROR, None, rt.clock())
            raise  # RQ keeps the traceback in its failed-job registry
        job.status = ImportStatus.DONE
        job.total_rows = result.total_rows
        job.created_count = result.created
        job.merged_count = result.merged
        job.skipped_count = result.skipped
        job.error_count = result.errors
        job.report = result.report
        job.finished_at = rt.clock()
        session.commit()
        return {"created": result.created, "errors": result.errors}


def _fail_import(
    session: Session, import_id: int, message: str, field: str | None, now: datetime
) -> None:
    """Roll the rows back and mark the job failed, so it never stays "running"."""
    session.rollback()
    job = session.get(ImportJob, import_id)
    assert job is not None
    job.status = ImportStatus.FAILED
    job.report = [{"row": 1, "outcome": "error", "field": field, "message": message}]
    job.error_count = 1
    job.finished_at = now
    session.commit()


def recompute_completeness() -> int:
    """Re-score every customer after required fields changed."""
    rt = context.runtime()
    rt.redis.delete(COMPLETENESS_LOCK_KEY)  # edits from now on need another pass
    with rt.db.session(lock_for_write=True) as session:
        changed = completeness.recompute_all(session)
        session.commit()
    return changed


def purge_orphan_uploads() -> int:
    """Delete stored files no attachment, import or email template refers to (left by a failed
    request, or taken off a template)."""
    rt = context.runtime()
    root = rt.store.root
    if not root.exists():
        return 0
    with rt.db.session() as session:
        referenced = set(session.scalars(select(Attachment.storage_key)))
        referenced |= set(session.scalars(select(ImportJob.storage_key)))
        referenced |= emails.referenced_storage_keys(session)
    cutoff = time.time() - ORPHAN_UPLOAD_AGE_SECONDS
    removed = 0
    for path in root.glob("*/*"):
        key = str(path.relative_to(root))
        if key not in referenced and path.stat().st_mtime < cutoff:
            Path(path).unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d orphaned uploads", removed)
    return removed


def run_timers() -> int:
    """Sweep every timer rule; commits batch by batch so no sweep holds the write lock long."""
    rt = context.runtime()
    fired = 0
    while True:
        with rt.db.session(lock_for_write=True) as session:
            result = timers.sweep(session, now=rt.clock())
            session.commit()
        fired += result.total
        if result.total < timers.SWEEP_LIMIT:
            if fired:
                log.info("timers fired %d times", fired)
            return fired
