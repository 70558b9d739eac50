"""Export the customers an actor may see, in the same columns the importer reads back: every
field of the catalogue (`crm.fields`), tags and owner, the custom fields, then read-only facts."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy.orm import Session, joinedload, selectinload

from crm import custom_fields
from crm.actors import Actor
from crm.customers import CustomerQuery, filter_conditions, scoped_customers, sort_order
from crm.fields import CATALOGUE
from crm.imports import FORMULA_PREFIXES, OWNER_HEADERS, TAG_HEADERS
from models import Customer, CustomField

EXPORT_BATCH_SIZE = 1000
EXTRA_COLUMNS = ("资料完整度", "最近跟进", "创建时间")
# The database keeps UTC; the people reading the file live on Beijing time.
LOCAL_TIMEZONE = ZoneInfo("Asia/Shanghai")


def export_table(session: Session, *, actor: Actor, query: CustomerQuery) -> Iterator[list[Any]]:
    """The header row, then one row per customer in scope that matches the filters.

    Filters are checked here, before any row is produced, so a bad filter never leaves a
    half-written file behind."""
    definitions = custom_fields.active_fields(session)
    header = (
        [f.label for f in CATALOGUE]
        + [TAG_HEADERS[0], OWNER_HEADERS[0]]
        + [d.label for d in definitions]
        + list(EXTRA_COLUMNS)
    )
    statement = (
        scoped_customers(actor)
        .where(*filter_conditions(session, query))
        .options(joinedload(Customer.owner), selectinload(Customer.tags))
        .order_by(*sort_order(query.sort))
        .execution_options(yield_per=EXPORT_BATCH_SIZE)
    )
    customers = session.scalars(statement)
    return itertools.chain([header], (_row(c, definitions) for c in customers))


def _row(customer: Customer, definitions: list[CustomField]) -> list[Any]:
    row: list[Any] = [_cell(getattr(customer, f.key)) for f in CATALOGUE]
    row += [
        "、".join(t.tag for t in customer.tags),
        customer.owner.wecom_userid if customer.owner else "",
    ]
    row += [_cell(customer.custom_values.get(d.key)) for d in definitions]
    followed = customer.last_follow_up_at
    row += [
        customer.completeness,
        followed.astimezone(LOCAL_TIMEZONE).strftime("%Y-%m-%d %H:%M") if followed else "",
        customer.created_at.astimezone(LOCAL_TIMEZONE).strftime("%Y-%m-%d"),
    ]
    return row


def to_csv(rows: Iterator[list[Any]]) -> bytes:
    """CSV with a BOM, so Excel on Chinese Windows opens it without mojibake."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        # A leading "'" keeps Excel from running a name like "=HYPERLINK(...)" as a formula.
        writer.writerow(["'" + v if _is_formula_like(v) else v for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(rows: Iterator[list[Any]]) -> bytes:
    """A workbook with one sheet; text stays text, even when it looks like a formula."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("客户")
    for row in rows:
        # Control characters (pasted from chats) are not allowed in xlsx cells: drop them.
        values = [ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in row]
        sheet.append([_text_cell(sheet, v) if _is_formula_like(v) else v for v in values])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, Decimal):
        return float(value)  # a number Excel can sum (the amount), not the text of a Decimal
    return "" if value is None else value


def _is_formula_like(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)


def _text_cell(sheet: Any, value: str) -> WriteOnlyCell:
    # openpyxl stores any string starting with "=" as a formula unless told it is a string; the
    # exact text is kept (no "'"), so the file imports back unchanged.
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell
