"""Customer import from Excel or CSV: headers in the users' words, phones normalised, duplicates
merged or skipped by choice, and a report line for every row that was not simply created.

A row is checked cell by cell before anything is written, so a refused row is reported with
every problem it has (row, column, reason), and the other rows still import."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from crm import custom_fields, fields
from crm.actors import Actor, user_scope
from crm.customer_changes import create_customer, update_customer
from crm.customers import find_by_phone, get_customer
from crm.errors import Conflict, DomainError, Invalid, NotFound
from crm.fields import CATALOGUE, FIELDS, FieldKind
from crm.vocab import Stage
from models import CustomField, User

# Columns that are not customer fields (those are in `crm.fields`): the tags, and the owner by
# name or WeCom userid. The first title of each is the one exports write.
TAG_HEADERS = ("标签", "tags")
OWNER_HEADERS = ("负责人", "归属销售", "销售", "所属销售", "owner")
TAG_SEPARATORS = re.compile(r"[,，、;；/]")
MAX_ROWS = 50_000
# Fields whose cells are text however Excel typed them (a name of 1001, a date in 区域).
TEXT_KINDS = (FieldKind.TEXT, FieldKind.ENUM)
# Text starting with these runs as a formula in a spreadsheet; exports escape it with a "'".
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
OUTCOME_COUNTERS = {
    "created": "created",
    "merged": "merged",
    "skipped": "skipped",
    "error": "errors",
}


class ImportFileError(Invalid):
    """The file as a whole cannot be read (no rows are touched)."""

    code = "bad_import_file"


@dataclass
class ImportResult:
    total_rows: int = 0
    created: int = 0
    merged: int = 0
    skipped: int = 0
    errors: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    report: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: int, outcome: str, **details: Any) -> None:
        counter = OUTCOME_COUNTERS[outcome]
        setattr(self, counter, getattr(self, counter) + 1)
        if outcome != "created":
            self.report.append({"row": row, "outcome": outcome, **details})

    def add_problems(self, row: int, problems: list[tuple[str, str]]) -> None:
        """A row refused for its cells: one report line for each bad cell, one error counted."""
        self.errors += 1
        for column, message in problems:
            self.report.append(
                {"row": row, "outcome": "error", "field": column, "message": message}
            )


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[Any]]], int]:
    """Headers, the non-blank data rows with their spreadsheet row numbers, and their count."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises many kinds for a broken file
            message = f"无法读取 Excel 文件：{type(error).__name__}"
            raise ImportFileError(message, field="file") from None
        sheet = workbook.worksheets[0]
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        workbook.close()
    elif suffix == ".csv":
        rows = list(csv.reader(io.StringIO(_decode(path.read_bytes()))))
    else:
        raise ImportFileError("只支持 .xlsx 或 .csv 文件", field="file")
    # Blank rows are passed over but still counted, so row numbers match what Excel shows.
    numbered = [(n, r) for n, r in enumerate(rows, start=1) if not all(map(_is_blank, r))]
    if not numbered:
        raise ImportFileError("文件是空的", field="file")
    if len(numbered) - 1 > MAX_ROWS:
        raise ImportFileError(f"单次最多导入 {MAX_ROWS} 行，请拆分文件", field="file")
    headers = ["" if h is None else str(h).strip() for h in numbered[0][1]]
    return headers, numbered[1:], len(numbered) - 1


def map_headers(headers: list[str], custom: list[Any]) -> tuple[dict[int, str], list[str]]:
    """Column index → field ('custom:<key>' for custom fields); and the columns ignored."""
    titles = [(f.key, (f.label, f.key, *f.aliases)) for f in CATALOGUE]
    titles += [("tags", TAG_HEADERS), ("owner", OWNER_HEADERS)]
    lookup = {_norm(title): target for target, names in titles for title in names}
    for definition in custom:  # a custom field labelled like a built-in column must not hide it
        lookup.setdefault(_norm(definition.label), f"custom:{definition.key}")
        lookup.setdefault(_norm(definition.key), f"custom:{definition.key}")
    mapping: dict[int, str] = {}
    ignored = []
    for index, header in enumerate(headers):
        target = lookup.get(_norm(header))
        if target and target not in mapping.values():
            mapping[index] = target
        elif header:
            ignored.append(header)
    if "name" not in mapping.values():
        raise ImportFileError("缺少「客户名称」列", field="file")
    return mapping, ignored


def import_customers(
    session: Session,
    *,
    actor: Actor,
    path: Path,
    on_duplicate: str,
    now: datetime,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import every row in its own savepoint: a bad row is reported, the good ones land."""
    if on_duplicate not in ("merge", "skip"):
        raise Invalid("重复处理方式只能是 merge 或 skip", field="on_duplicate")
    definitions = custom_fields.active_fields(session)
    headers, rows, total = read_rows(path)
    mapping, ignored = map_headers(headers, definitions)
    result = ImportResult(total_rows=total, ignored_columns=ignored)
    owners = _owner_lookup(session, actor)
    custom_by_key = {definition.key: definition for definition in definitions}
    seen_phones: dict[str, int] = {}  # phone → customer id, for duplicates inside the file

    for done, (row_number, raw) in enumerate(rows, start=1):
        row = _read_row(raw, mapping, headers, custom_by_key, owners)
        if row.problems:
            result.add_problems(row_number, row.problems)
        else:
            try:
                with session.begin_nested():
                    outcome, details = _write_row(
                        session,
                        actor=actor,
                        row=row,
                        on_duplicate=on_duplicate,
                        seen_phones=seen_phones,
                        now=now,
                    )
                result.add(row_number, outcome, **details)
            except DomainError as error:
                result.add(
                    row_number,
                    "error",
                    field=_column_label(error.field, mapping, headers),
                    message=error.message,
                )
        if on_progress:
            on_progress(done, total)
    return result


@dataclass
class _Row:
    """One data row read and checked cell by cell, with every problem found in it."""

    values: dict[str, Any] = field(default_factory=dict)  # built-in fields, cleaned
    custom: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    stage: str | None = None
    grade: str | None = None
    owner_id: int | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (column title, reason)


def _read_row(
    raw: list[Any],
    mapping: dict[int, str],
    headers: list[str],
    custom_by_key: dict[str, CustomField],
    owners: dict[str, int],
) -> _Row:
    """Check every cell of a row, so the report names all of its problems at once."""
    row = _Row()
    for index, target in mapping.items():
        cell = raw[index] if index < len(raw) else None
        if _is_blank(cell):
            if target != "name":  # a blank cell leaves the field alone; a nameless row is refused
                continue
            cell = ""
        if isinstance(cell, float) and cell.is_integer():
            cell = int(cell)  # Excel stores 1001 as 1001.0
        if isinstance(cell, str) or (target in FIELDS and FIELDS[target].kind in TEXT_KINDS):
            cell = _text(cell)
        try:
            if target.startswith("custom:"):
                key = target.removeprefix("custom:")
                row.custom[key] = custom_fields.clean_value(custom_by_key[key], cell)
            elif target == "tags":
                row.tags = [t for t in TAG_SEPARATORS.split(str(cell)) if t.strip()]
            elif target == "owner":
                row.owner_id = _owner_id(owners, str(cell))
            else:
                row.values[target] = fields.clean_value(target, cell)
        except Invalid as error:
            row.problems.append((headers[index], error.message))
    row.stage = row.values.pop("stage", None)
    row.grade = row.values.pop("grade", None)
    return row


def _write_row(
    session: Session,
    *,
    actor: Actor,
    row: _Row,
    on_duplicate: str,
    seen_phones: dict[str, int],
    now: datetime,
) -> tuple[str, dict[str, Any]]:
    """Create the row's customer, or merge it into (or skip it for) the one with its phone."""
    phone = row.values.get("phone")
    existing_id = seen_phones.get(phone) if phone else None
    if phone and existing_id is None:
        existing = find_by_phone(session, phone)
        existing_id = existing.id if existing else None
    if existing_id is not None:
        if on_duplicate == "skip":
            if not _is_visible(session, actor, existing_id):  # never point at another's customer
                return "skipped", {
                    "field": "phone",
                    "message": f"电话 {phone} 已登记在其他销售名下，已跳过",
                }
            return "skipped", {
                "customer_id": existing_id,
                "field": "phone",
                "message": f"电话 {phone} 已存在，已跳过",
            }
        try:
            customer = update_customer(
                session,
                actor=actor,
                customer_id=existing_id,
                values=row.values,
                now=now,
                custom_values=row.custom or None,
                reason="导入合并",
            )
        except NotFound:
            raise Conflict(
                f"电话 {phone} 已登记在其他销售名下，无法合并",
                code="duplicate_phone",
                field="phone",
            ) from None
        return "merged", {"customer_id": customer.id, "message": f"电话 {phone} 已存在，已合并"}
    customer = create_customer(
        session,
        actor=actor,
        values=row.values,
        now=now,
        owner_id=row.owner_id if actor.can_manage else None,
        stage=row.stage or Stage.LEAD,
        grade=row.grade if actor.can_manage else None,
        tags=row.tags,
        custom_values=row.custom,
        cause="导入",
    )
    if phone:
        seen_phones[phone] = customer.id
    return "created", {"customer_id": customer.id}


def _owner_id(owners: dict[str, int], name: str) -> int:
    owner_id = owners.get(name)
    if owner_id is None:
        raise Invalid(
            f"找不到负责人「{name}」：请填写你可分配的成员姓名或企业微信账号（重名时填账号）",
            field="owner",
        )
    return owner_id


def _owner_lookup(session: Session, actor: Actor) -> dict[str, int]:
    """Names and WeCom ids of the people this actor may hand customers to."""
    users = list(
        session.scalars(
            select(User).where(user_scope(actor), or_(User.is_active, User.id == actor.user_id))
        )
    )
    names = Counter(user.name for user in users)
    lookup = {user.name: user.id for user in users if names[user.name] == 1}  # 重名 is ambiguous
    lookup.update({user.wecom_userid: user.id for user in users})
    return lookup


def _is_visible(session: Session, actor: Actor, customer_id: int) -> bool:
    try:
        get_customer(session, actor=actor, customer_id=customer_id)
    except NotFound:
        return False
    return True


def _is_blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _text(cell: Any) -> str:
    """A cell as the text a person typed, without the "'" an export put before a formula."""
    if isinstance(cell, datetime) and cell == datetime.combine(cell.date(), datetime.min.time()):
        cell = cell.date()
    text = cell.isoformat() if isinstance(cell, date) else str(cell).strip()
    if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES):
        return text[1:]
    return text


def _column_label(
    field_name: str | None, mapping: dict[int, str], headers: list[str]
) -> str | None:
    """Name the spreadsheet column a field came from, so the user can find the bad cell."""
    if field_name is None:
        return None
    key = {"owner_id": "owner"}.get(field_name) or field_name.replace("custom_values.", "custom:")
    for index, target in mapping.items():
        if target == key:
            return headers[index]
    return field_name


def _decode(data: bytes) -> str:
    # Excel on Chinese Windows saves CSV as GBK; everything else is UTF-8, often with a BOM.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError("无法识别文件编码，请另存为 UTF-8 的 CSV 或 xlsx", field="file")


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-（）()*:：]", "", text).lower()


def write_report(result: ImportResult, path: Path) -> None:
    """The per-row report as a CSV a person can open next to the source file."""
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(["行号", "结果", "客户ID", "列", "说明"])
        for line in result.report:
            writer.writerow(
                [
                    line["row"],
                    line["outcome"],
                    line.get("customer_id") or "",
                    line.get("field") or "",
                    line.get("message") or "",
                ]
            )
