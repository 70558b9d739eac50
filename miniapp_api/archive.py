"""/archive: the boss uploads a chat archive export (会话存档导出文件, JSON lines); its messages
are stored once each and the capture job turns them into follow-ups (crm/chat_capture.py)."""

from __future__ import annotations

from typing import Any

from crm import chat_capture
from crm.errors import Invalid
from miniapp_api import api
from miniapp_api.context import actor, now, session
from miniapp_api.routing import operation, uploaded_files
from miniapp_api.schemas import ArchiveImportIn, ArchiveImportOut


@operation(
    api,
    "POST",
    "/archive/imports",
    summary="上传会话存档导出文件（老板；每行一条消息，后台生成跟进）",
    tag="archive",
    body=ArchiveImportIn,
    files="file",
    response=ArchiveImportOut,
)
def upload_archive(body: ArchiveImportIn) -> Any:
    files = uploaded_files("file")
    if len(files) != 1:
        raise Invalid(
            "请上传一个会话存档导出文件（每行一条 JSON 消息）", code="required", field="file"
        )
    _, data = files[0]
    result = chat_capture.import_export(session(), actor=actor(), data=data, now=now())
    return {
        "stored": result.stored,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "rejections": [{"line": line, "reason": reason} for line, reason in result.rejections],
    }
