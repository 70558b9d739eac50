"""/customers: the customer book, its timeline, stages, reassignment, follow-ups and export."""

from __future__ import annotations

from typing import Any

from flask import Response, send_file

from crm import completeness, customer_changes, customers, exports, followups
from crm.customers import CustomerQuery
from crm.errors import NotFound
from miniapp_api import api
from miniapp_api.context import actor, now, runtime, session
from miniapp_api.routing import operation, uploaded_files
from miniapp_api.schemas import (
    CustomerDetailOut,
    CustomerFilters,
    CustomerIn,
    CustomerListQuery,
    CustomerOut,
    CustomerPageOut,
    CustomerPatch,
    ExportQuery,
    FollowUpIn,
    FollowUpOut,
    ReassignIn,
    StageIn,
)
from models import Attachment, FollowUp

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PLAIN_FIELDS = set(CustomerIn.model_fields) - {"name", "stage", "owner_id", "tags", "custom_values"}


def to_query(filters: CustomerFilters, *, page: int = 1, page_size: int = 20) -> CustomerQuery:
    return CustomerQuery(
        q=filters.q,
        stages=tuple(filters.stage),
        grades=tuple(filters.grade),
        region=filters.region,
        category=filters.category,
        owner_id=filters.owner_id,
        tag=filters.tag,
        custom=tuple(tuple(c.split(":", 1)) for c in filters.custom),  # type: ignore[misc]
        sort=filters.sort,
        page=page,
        page_size=page_size,
    )


@operation(
    api,
    "GET",
    "/customers",
    summary="客户列表（搜索、筛选、排序、分页）",
    tag="customers",
    query=CustomerListQuery,
    response=CustomerPageOut,
)
def list_customers(query: CustomerListQuery) -> Any:
    return customers.list_customers(
        session(), actor=actor(), query=to_query(query, page=query.page, page_size=query.page_size)
    )


@operation(
    api,
    "POST",
    "/customers",
    summary="新建客户",
    tag="customers",
    body=CustomerIn,
    response=CustomerOut,
    status=201,
)
def create_customer(body: CustomerIn) -> Any:
    values = body.model_dump(include=PLAIN_FIELDS | {"name"}, exclude_unset=True)
    customer = customer_changes.create_customer(
        session(),
        actor=actor(),
        values=values,
        now=now(),
        owner_id=body.owner_id,
        stage=body.stage,
        tags=body.tags,
        custom_values=body.custom_values,
    )
    session().refresh(customer, ["owner", "tags"])
    return customer


@operation(
    api,
    "GET",
    "/customers/{customer_id}",
    summary="客户详情与时间线",
    tag="customers",
    response=CustomerDetailOut,
)
def get_customer(customer_id: int) -> Any:
    detail = customers.customer_detail(session(), actor=actor(), customer_id=customer_id)
    keys = completeness.required_custom_keys(session())
    return {
        "customer": detail.customer,
        "missing_fields": completeness.missing_fields(detail.customer, keys),
        "timeline": [{"kind": e.kind, "at": e.at, e.kind: e.record} for e in detail.timeline],
    }


@operation(
    api,
    "PATCH",
    "/customers/{customer_id}",
    summary="修改客户资料",
    tag="customers",
    body=CustomerPatch,
    response=CustomerOut,
)
def update_customer(customer_id: int, body: CustomerPatch) -> Any:
    customer = customer_changes.update_customer(
        session(),
        actor=actor(),
        customer_id=customer_id,
        values=body.model_dump(include=PLAIN_FIELDS | {"name"}, exclude_unset=True),
        now=now(),
        tags=body.tags,
        custom_values=body.custom_values,
        grade=body.grade,
        reason=body.reason,
    )
    session().refresh(customer, ["owner", "tags"])
    return customer


@operation(
    api,
    "POST",
    "/customers/{customer_id}/stage",
    summary="变更客户阶段",
    tag="customers",
    body=StageIn,
    response=CustomerOut,
)
def change_stage(customer_id: int, body: StageIn) -> Any:
    customer = customer_changes.move_stage(
        session(),
        actor=actor(),
        customer_id=customer_id,
        to_stage=body.stage,
        now=now(),
        cause=body.cause,
    )
    session().refresh(customer, ["owner", "tags"])
    return customer


@operation(
    api,
    "POST",
    "/customers/{customer_id}/reassign",
    summary="调整客户归属（主管）",
    tag="customers",
    body=ReassignIn,
    response=CustomerOut,
)
def reassign(customer_id: int, body: ReassignIn) -> Any:
    customer = customer_changes.reassign(
        session(),
        actor=actor(),
        customer_id=customer_id,
        owner_id=body.owner_id,
        now=now(),
        reason=body.reason,
    )
    session().refresh(customer, ["tags"])
    return customer


@operation(
    api,
    "POST",
    "/customers/{customer_id}/follow-ups",
    summary="记录跟进（可带附件）",
    tag="follow-ups",
    body=FollowUpIn,
    files="files",
    response=FollowUpOut,
    status=201,
)
def log_follow_up(customer_id: int, body: FollowUpIn) -> Any:
    settings = runtime().settings
    uploads = [followups.Upload(filename=name, data=data) for name, data in uploaded_files()]
    follow_up = followups.log_follow_up(
        session(),
        actor=actor(),
        customer_id=customer_id,
        method=body.method,
        summary=body.summary,
        now=now(),
        store=runtime().store,
        max_attachment_bytes=settings.max_attachment_bytes,
        happened_at=body.happened_at,
        next_plan=body.next_plan,
        next_follow_up_on=body.next_follow_up_on,
        uploads=uploads,
    )
    session().refresh(follow_up, ["author", "attachments", "recordings"])
    return follow_up


@operation(
    api,
    "GET",
    "/customers/{customer_id}/attachments/{attachment_id}",
    summary="下载跟进附件",
    tag="follow-ups",
    file_response=("application/octet-stream",),
)
def download_attachment(customer_id: int, attachment_id: int) -> Response:
    customer = customers.get_customer(session(), actor=actor(), customer_id=customer_id)
    attachment = session().get(Attachment, attachment_id)
    follow_up = session().get(FollowUp, attachment.follow_up_id) if attachment else None
    if attachment is None or follow_up is None or follow_up.customer_id != customer.id:
        raise NotFound("附件")
    return send_file(
        runtime().store.path(attachment.storage_key),
        mimetype=attachment.content_type,
        as_attachment=True,
        download_name=attachment.filename,
    )


@operation(
    api,
    "GET",
    "/customers/export",
    summary="导出客户（权限范围内，CSV 或 Excel）",
    tag="customers",
    query=ExportQuery,
    file_response=("text/csv", XLSX),
)
def export_customers(query: ExportQuery) -> Response:
    rows = exports.export_table(session(), actor=actor(), query=to_query(query))
    if query.format == "csv":
        data, mimetype = exports.to_csv(rows), "text/csv; charset=utf-8"
    else:
        data, mimetype = exports.to_xlsx(rows), XLSX
    stamp = now().strftime("%Y%m%d-%H%M")
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=customers-{stamp}.{query.format}"
    )
    return response
