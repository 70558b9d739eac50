"""/imports: upload an Excel/CSV file; a worker imports it and writes a per-row report."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from sqlalchemy import select

from crm.errors import Invalid, NotFound
from miniapp_api import api
from miniapp_api.context import actor, now, runtime, session
from miniapp_api.routing import operation, uploaded_files
from miniapp_api.schemas import ImportIn, ImportJobOut
from models import ImportJob
from models.users import Role
from workers.jobs import PROGRESS_KEY, enqueue_import

MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_FILENAME_LENGTH = 255


@operation(
    api,
    "POST",
    "/imports",
    summary="上传 Excel/CSV 导入客户（后台处理）",
    tag="imports",
    body=ImportIn,
    files="file",
    response=ImportJobOut,
    status=202,
)
def upload_import(body: ImportIn) -> Any:
    files = uploaded_files("file")
    if len(files) != 1:
        raise Invalid("请上传一个 .xlsx 或 .csv 文件", code="required", field="file")
    filename, data = files[0]
    suffix = PurePath(filename).suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise Invalid("只支持 .xlsx 或 .csv 文件", code="bad_import_file", field="file")
    if not data or len(data) > MAX_IMPORT_BYTES:
        raise Invalid("文件为空或超过 20 MB", code="bad_import_file", field="file")
    key, _ = runtime().store.save(data, suffix=suffix)
    name = PurePath(filename).name[-MAX_FILENAME_LENGTH:]  # the end keeps the suffix
    job = ImportJob(
        created_by=actor().user_id,
        filename=name,
        storage_key=key,
        on_duplicate=body.on_duplicate,
        status="queued",
        report=[],
        created_at=now(),
    )
    session().add(job)
    session().commit()  # the worker must find the job
    enqueue_import(runtime().redis, job.id)
    return job


@operation(
    api,
    "GET",
    "/imports/{import_id}",
    summary="导入进度与逐行报告",
    tag="imports",
    response=ImportJobOut,
)
def get_import(import_id: int) -> Any:
    query = select(ImportJob).where(ImportJob.id == import_id)
    if actor().role is not Role.BOSS:
        query = query.where(ImportJob.created_by == actor().user_id)
    job = session().scalar(query)
    if job is None:
        raise NotFound("导入任务")
    out = ImportJobOut.model_validate(job)
    if job.status == "running":
        progress = runtime().redis.get(PROGRESS_KEY.format(id=job.id))
        if progress:
            done, total = progress.decode().split("/")
            out = out.model_copy(update={"processed_rows": int(done), "total_rows": int(total)})
    elif job.status in ("done", "failed"):
        out = out.model_copy(update={"processed_rows": job.total_rows})
    return out
