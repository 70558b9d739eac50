"""Job functions: importable, take ids, open their own session and commit; those that write a
lot (imports, timer sweeps) commit batch by batch, so none holds SQLite's write lock for long."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import chat_capture, completeness, emails, imports, notifications
from crm.actors import Actor
from crm.errors import DomainError
from crm.rules import timers
from models import Attachment, ImportJob, User
from models.db import Database
from models.imports import ImportStatus
from wecrm.runtime import Runtime
from workers import context, queues

log = logging.getLogger(__name__)
# While one completeness recompute waits in the queue, more requests for it add nothing.
COMPLETENESS_LOCK_KEY = "wecrm:lock:recompute_completeness"
COMPLETENESS_LOCK_SECONDS = 600
# An import writes this many rows per transaction, then pauses so other writers get the lock:
# on SQLite a waiting writer retries every 100 ms at most, so a pause longer than that lets it in.
IMPORT_BATCH_ROWS = 50
IMPORT_BATCH_PAUSE_SECONDS = 0.11
# A running import renews its heartbeat with every batch (about a second); one silent for this
# long has lost its worker.
IMPORT_LEASE_SECONDS = 300
ORPHAN_UPLOAD_AGE_SECONDS = 24 * 3600
INTERNAL_IMPORT_ERROR = "导入时发生内部错误，请联系管理员"
STOPPED_AT = (
    "导入在处理完前 {rows} 行数据后停止：{reason}。这些行的结果已保存（见上方报告），其余行未导入"
)
STALLED_IMPORT = (
    "导入中断：处理导入的后台程序意外停止。前 {rows} 行数据已保存，其余行未导入；"
    "请把剩余的行另存为新文件再导入（重复电话可选择跳过）"
)


def enqueue_import(connection: redis.Redis, import_id: int) -> None:
    """Queue the import of one uploaded file."""
    queues.queue(connection, queues.IMPORTS).enqueue(run_import, import_id, job_timeout=3600)


def enqueue_completeness(connection: redis.Redis) -> None:
    """Re-score every customer's completeness once, however many field edits asked for it."""
    queues.enqueue_once(
        connection,
        recompute_completeness,
        queue_name=queues.MAINTENANCE,
        pending_key=COMPLETENESS_LOCK_KEY,
        pending_seconds=COMPLETENESS_LOCK_SECONDS,
        job_timeout=1800,
    )


def run_import(import_id: int) -> dict[str, int]:
    """Import one uploaded file: checked first, then written in short transactions of
    `IMPORT_BATCH_ROWS` rows, so callbacks and API writes get the write lock between two."""
    rt = context.runtime()
    with rt.db.session(lock_for_write=True) as session:
        job = session.get(ImportJob, import_id)
        # Only a queued import starts: one that ran before has batches written already.
        if job is None or job.status != ImportStatus.QUEUED:
            return {}
        creator = session.get(User, job.created_by)
        assert creator is not None
        job.status = ImportStatus.RUNNING
        job.heartbeat_at = rt.clock()
        session.commit()
    progress: imports.ImportResult | None = None
    try:
        with rt.db.session() as reading:  # nothing is written while the file is checked
            plan = imports.open_import(
                reading,
                actor=Actor.of(creator),
                path=rt.store.path(job.storage_key),
                on_duplicate=job.on_duplicate,
            )
        with rt.db.session(lock_for_write=True) as session:

            def checkpoint(batch_done: imports.ImportResult) -> None:
                nonlocal progress
                _save_progress(session, import_id, batch_done, now=rt.clock())
                session.commit()
                progress = replace(batch_done, report=list(batch_done.report))  # as committed
                let_writers_in(rt.db)

            result = imports.write_import(
                session, plan, now=rt.clock(), batch_rows=IMPORT_BATCH_ROWS, on_batch=checkpoint
            )
            job = _save_progress(session, import_id, result, now=rt.clock())
            job.report = result.report
            job.status = ImportStatus.DONE
            job.finished_at = rt.clock()
            session.commit()
    except ImportStopped:
        return {}  # failed by the sweep meanwhile; its reason stands
    except DomainError as error:
        _fail_import(rt, import_id, progress, error.message, error.field)
        return {"errors": 1}
    except Exception:
        _fail_import(rt, import_id, progress, INTERNAL_IMPORT_ERROR, None)
        raise  # RQ keeps the traceback in its failed-job registry
    return {"created": result.created, "errors": result.errors}


def let_writers_in(db: Database) -> None:
    """After an import batch's commit: on SQLite, wait long enough for the writers queued on
    the lock to take it (PostgreSQL locks rows, not the database)."""
    if db.is_sqlite:
        time.sleep(IMPORT_BATCH_PAUSE_SECONDS)


class ImportStopped(Exception):
    """The import is no longer running (the sweep failed it): its worker stops writing."""


def _running_import(session: Session, import_id: int) -> ImportJob:
    # FOR UPDATE (PostgreSQL): the sweep cannot fail the import between this read and the commit.
    job = session.get(ImportJob, import_id, populate_existing=True, with_for_update=True)
    if job is None or job.status != ImportStatus.RUNNING:
        session.rollback()
        raise ImportStopped
    return job


def _save_progress(
    session: Session, import_id: int, progress: imports.ImportResult, *, now: datetime
) -> ImportJob:
    """Record the counts with the batch they count, in its transaction; renew the heartbeat."""
    job = _running_import(session, import_id)
    job.total_rows = progress.total_rows
    job.processed_rows = progress.processed_rows
    job.created_count = progress.created
    job.merged_count = progress.merged
    job.skipped_count = progress.skipped
    job.error_count = progress.errors
    job.heartbeat_at = now
    return job


def _fail_import(
    rt: Runtime,
    import_id: int,
    progress: imports.ImportResult | None,
    message: str,
    field: str | None,
) -> None:
    """Mark the job failed, so it never stays "running": a file refused as a whole reports why;
    one that stopped half-way keeps the report of the batches written and says where it
    stopped."""
    with rt.db.session(lock_for_write=True) as session:
        job = session.get(ImportJob, import_id, populate_existing=True, with_for_update=True)
        if job is None or job.status != ImportStatus.RUNNING:
            return  # failed by the sweep meanwhile; its reason stands
        if progress is None:
            job.report = [{"row": 1, "outcome": "error", "field": field, "message": message}]
            job.error_count = 1
        else:
            stopped = STOPPED_AT.format(rows=progress.processed_rows, reason=message)
            job.report = [*progress.report, _stop_line(stopped, field)]
        job.status = ImportStatus.FAILED
        job.finished_at = rt.clock()
        session.commit()


def _stop_line(message: str, field: str | None = None) -> dict[str, Any]:
    """The report's last line when an import stopped half-way: no row of its own."""
    return {"row": None, "outcome": "error", "field": field, "message": message}


def fail_stalled_imports() -> int:
    """Fail the running imports whose worker stopped renewing their heartbeat (killed, lost),
    and queue again the imports whose job was lost before it reached Redis."""
    rt = context.runtime()
    now = rt.clock()
    cutoff = now - timedelta(seconds=IMPORT_LEASE_SECONDS)
    with rt.db.session() as session:
        # A job only starts a queued import, so one queued twice still runs once.
        lost = session.scalars(
            select(ImportJob.id).where(
                ImportJob.status == ImportStatus.QUEUED, ImportJob.created_at < cutoff
            )
        ).all()
    for import_id in lost:
        enqueue_import(rt.redis, import_id)
    with rt.db.session(lock_for_write=True) as session:
        stalled = list(
            session.scalars(
                select(ImportJob).where(
                    ImportJob.status == ImportStatus.RUNNING, ImportJob.heartbeat_at < cutoff
                )
            )
        )
        for job in stalled:
            message = STALLED_IMPORT.format(rows=job.processed_rows)
            job.status = ImportStatus.FAILED
            job.report = [*job.report, _stop_line(message)]
            job.finished_at = now
        session.commit()
    if stalled:
        log.warning("failed %d imports whose worker stopped", len(stalled))
    return len(stalled)


def recompute_completeness() -> int:
    """Re-score every customer after required fields changed."""
    rt = context.runtime()
    rt.redis.delete(COMPLETENESS_LOCK_KEY)  # edits from now on need another pass
    with rt.db.session(lock_for_write=True) as session:
        changed = completeness.recompute_all(session)
        session.commit()
    return changed


def purge_orphan_uploads() -> int:
    """Delete stored files no attachment, import, email template, archived message or unsent
    image message refers to (left by a failed request or pull, or taken off a template)."""
    rt = context.runtime()
    root = rt.store.root
    if not root.exists():
        return 0
    with rt.db.session() as session:
        referenced = set(session.scalars(select(Attachment.storage_key)))
        referenced |= set(session.scalars(select(ImportJob.storage_key)))
        referenced |= emails.referenced_storage_keys(session)
        referenced |= chat_capture.referenced_storage_keys(session)
        referenced |= notifications.referenced_storage_keys(session)
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
