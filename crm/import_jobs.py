"""Import jobs: an uploaded file queued for the worker, and who may read its report.

The rows themselves are read and written by crm/imports.py inside the job (workers/jobs.py);
this module is what the edge calls around it.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import PurePath

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import after_commit, imports
from crm.actors import Actor
from crm.errors import Invalid, NotFound
from crm.storage import FileStore
from models import ImportJob
from models.imports import ImportStatus
from models.users import Role

MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_FILENAME_LENGTH = 255


def store_upload(store: FileStore, *, filename: str, data: bytes) -> tuple[str, str]:
    """Check an uploaded file (kind, size, and an xlsx's archive, so a zip bomb is refused now,
    not in the worker) and store it; returns its storage key and the name to record."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise Invalid("只支持 .xlsx 或 .csv 文件", code="bad_import_file", field="file")
    if not data or len(data) > MAX_IMPORT_BYTES:
        raise Invalid("文件为空或超过 20 MB", code="bad_import_file", field="file")
    if suffix == ".xlsx":
        imports.check_archive(io.BytesIO(data))
    key, _ = store.save(data, suffix=suffix)
    return key, PurePath(filename).name[-MAX_FILENAME_LENGTH:]  # the end keeps the suffix


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
