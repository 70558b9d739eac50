"""Import jobs: an uploaded file queued for the worker, and who may read its report.

The rows themselves are read and written by crm/imports.py inside the job (workers/jobs.py);
this module is what the edge calls around it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import after_commit
from crm.actors import Actor
from crm.errors import NotFound
from models import ImportJob
from models.imports import ImportStatus
from models.users import Role


def queue_import(
    session: Session,
    *,
    actor: Actor,
    filename: str,
    storage_key: str,
    on_duplicate: str,
    now: datetime,
) -> ImportJob:
    """Record an uploaded file as a queued import; the worker starts once this is committed."""
    job = ImportJob(
        created_by=actor.user_id,
        filename=filename,
        storage_key=storage_key,
        on_duplicate=on_duplicate,
        status=ImportStatus.QUEUED,
        report=[],
        created_at=now,
    )
    session.add(job)
    session.flush()
    after_commit.start(session, after_commit.IMPORT, job.id)
    return job


def get_import_job(session: Session, *, actor: Actor, import_id: int) -> ImportJob:
    """An import the actor started (the boss: any import), or NotFound."""
    query = select(ImportJob).where(ImportJob.id == import_id)
    # A report lists the rows of the file, customers of any team among them: only the one who
    # uploaded it reads it, and the boss, who may see every customer anyway.
    if actor.role is not Role.BOSS:
        query = query.where(ImportJob.created_by == actor.user_id)
    job = session.scalar(query)
    if job is None:
        raise NotFound("导入任务")
    return job
