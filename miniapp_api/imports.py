"""/imports: upload an Excel/CSV file; a worker imports it and writes a per-row report."""

from __future__ import annotations

from typing import Any

from crm import import_jobs
from crm.errors import Invalid
from miniapp_api import api
from miniapp_api.context import actor, now, runtime, session
from miniapp_api.routing import operation, uploaded_files
from miniapp_api.schemas import ImportIn, ImportJobOut


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
    key, name = import_jobs.store_upload(runtime().store, filename=filename, data=data)
    return import_jobs.queue_import(
        session(),
        actor=actor(),
        filename=name,
        storage_key=key,
        on_duplicate=body.on_duplicate,
        now=now(),
    )


@operation(
    api,
    "GET",
    "/imports/{import_id}",
    summary="导入进度与逐行报告",
    tag="imports",
    response=ImportJobOut,
)
def get_import(import_id: int) -> Any:
    return import_jobs.get_import_job(session(), actor=actor(), import_id=import_id)
