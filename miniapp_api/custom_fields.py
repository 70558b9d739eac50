"""/custom-fields: fields the boss adds to every customer, live at once."""

from __future__ import annotations

from typing import Any

from crm import custom_fields
from miniapp_api import api
from miniapp_api.context import actor, now, session
from miniapp_api.routing import operation
from miniapp_api.schemas import CustomFieldIn, CustomFieldList, CustomFieldOut, CustomFieldPatch


@operation(
    api,
    "GET",
    "/custom-fields",
    summary="自定义字段列表",
    tag="custom-fields",
    response=CustomFieldList,
)
def list_fields() -> Any:
    return {"items": custom_fields.active_fields(session())}


@operation(
    api,
    "POST",
    "/custom-fields",
    summary="新增自定义字段（老板）",
    tag="custom-fields",
    body=CustomFieldIn,
    response=CustomFieldOut,
    status=201,
)
def create_field(body: CustomFieldIn) -> Any:
    return custom_fields.define_field(session(), actor=actor(), now=now(), **body.model_dump())


@operation(
    api,
    "PATCH",
    "/custom-fields/{field_id}",
    summary="修改或停用自定义字段（老板）",
    tag="custom-fields",
    body=CustomFieldPatch,
    response=CustomFieldOut,
)
def change_field(field_id: int, body: CustomFieldPatch) -> Any:
    changes = body.model_dump(exclude_unset=True)
    return custom_fields.change_field(
        session(), actor=actor(), field_id=field_id, changes=changes, now=now()
    )
