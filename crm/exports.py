"""Export the customers an actor may see, in the same columns the importer reads back."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from openpyxl import Workbook
from sqlalchemy.orm import Session, joinedload, selectinload

from crm import custom_fields
from crm.actors import Actor
from crm.customers import CustomerQuery, filter_conditions, scoped_customers, sort_order
from crm.imports import HEADER_ALIASES
from models import Customer

EXPORT_BATCH_SIZE = 1000
EXPORT_FIELDS = (
    "name", "phone", "company", "region", "category", "stage", "grade", "source",
    "first_contact_method", "need_match", "quote_feedback", "expected_amount", "inquiry_count",
    "has_budget", "attended_expo", "tags", "owner",
)
FORMULA_PREFIXES = ("=", "+", "-", "@")
EXTRA_COLUMNS = ("资料完整度", "最近跟进", "创建时间")


def export_table(session: Session, *, actor: Actor, query: CustomerQuery) -> Iterator[list[Any]]:
    """The header row, then one row per customer in scope that matches the filters."""
    definitions = custom_fields.active_fields(session)
    yield ([HEADER_ALIASES[f][0] for f in EXPORT_FIELDS] + [d.label for d in definitions]
           + list(EXTRA_COLUMNS))
    statement = (
        scoped_customers(actor)
        .where(*filter_conditions(session, query))
        .options(joinedload(Customer.owner), selectinload(Customer.tags))
        .order_by(*sort_order(query.sort))
        .execution_options(yield_per=EXPORT_BATCH_SIZE)
    )
    for customer in session.scalars(statement):
        row: list[Any] = []
        for name in EXPORT_FIELDS:
            if name == "tags":
                row.append("、".join(t.tag for t in customer.tags))
            elif name == "owner":
                row.append(customer.owner.wecom_userid if customer.owner else "")
            elif name in ("has_budget", "attended_expo"):
                row.append("是" if getattr(customer, name) else "否")
            elif name == "expected_amount":
                row.append(float(customer.expected_amount) if customer.expected_amount is not None else "")
            else:
                row.append(_cell(getattr(customer, name)))
        row += [_cell(customer.custom_values.get(d.key)) for d in definitions]
        row += [
            customer.completeness,
            customer.last_follow_up_at.strftime("%Y-%m-%d %H:%M") if customer.last_follow_up_at else "",
            customer.created_at.strftime("%Y-%m-%d"),
        ]
        yield row


def to_csv(rows: Iterator[list[Any]]) -> bytes:
    """CSV with a BOM, so Excel on Chinese Windows opens it without mojibake."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(rows: Iterator[list[Any]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("客户")
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value  # a name like "=HYPERLINK(...)" must not run as a formula in Excel
    return "" if value is None else value
