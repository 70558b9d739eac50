"""Customer import from Excel or CSV: headers in the users' words, phones normalised, duplicates
merged or skipped by choice, and a report line for every row that was not simply created.

A file is read twice, streamed and never whole: once to check its size and headers (a file over
the limits, or without a name column, is refused before any row is written), then batch by batch
while the rows are written. A row is checked cell by cell before anything is written, so a
refused row is reported with every problem it has (row, column, reason), and the other rows
still import. Each batch is its own short transaction at the edge (workers/jobs.py), so a large
import never holds the database's write lock for long; rows of batches already written stay if
the import stops half-way, and the report says where it stopped."""

from __future__ import annotations

import codecs
import csv
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

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
# Cells as the reader hands them over, the blanks up to each row's last cell included and a
# blank row counted as one: 50,000 rows of 40 columns. A sheet padded far past that (a cell in
# column XFD, a row numbered 1,000,000) would cost minutes of CPU, not bring customers.
MAX_CELLS = 2_000_000
# An .xlsx is a zip archive: what its parts inflate to is checked before any part is parsed.
# Python's zipfile stops a part at the size its directory states, so the stated sizes bind.
MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
# openpyxl holds every shared string in memory at once.
MAX_SHARED_STRINGS_BYTES = 32 * 1024 * 1024
# Spreadsheet XML shrinks 5 to 30 times; a part that shrank 100 times more is padding.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECKED_FROM_BYTES = 1024 * 1024
# A CSV line is read whole before it is split into cells.
MAX_CSV_LINE_CHARS = 1024 * 1024
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
DUPLICATE_POLICIES = ("merge", "skip")


class ImportFileError(Invalid):
    """The file as a whole cannot be read (no rows are touched)."""

    code = "bad_import_file"


class ImportTooLarge(ImportFileError):
    """The file would take more memory or time to read than any customer list needs."""

    code = "import_too_large"


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

    @property
    def processed_rows(self) -> int:
        """Rows written or reported so far."""
        return self.created + self.merged + self.skipped + self.errors


@dataclass
class CustomerImport:
    """A file checked and mapped, ready to be written batch by batch: its columns, the people
    its rows may go to, and the phones already written (duplicates inside the file)."""

    actor: Actor
    path: Path
    on_duplicate: str
    headers: list[str]
    mapping: dict[int, str]
    total_rows: int
    ignored_columns: list[str]
    owners: dict[str, int]
    custom_by_key: dict[str, CustomField]
    seen_phones: dict[str, int] = field(default_factory=dict)  # phone → customer id

    def batches(self, size: int) -> Iterator[list[tuple[int, _Row]]]:
        """The data rows, read and checked with no database, `size` at a time."""
        batch: list[tuple[int, _Row]] = []
        data_rows = _numbered_rows(self.path)
        next(data_rows)  # the header row, read by open_import
        for row_number, raw in data_rows:
            row = _read_row(raw, self.mapping, self.headers, self.custom_by_key, self.owners)
            batch.append((row_number, row))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def open_import(session: Session, *, actor: Actor, path: Path, on_duplicate: str) -> CustomerImport:
    """Check the file's size and headers (streamed, nothing written) and load what its rows are
    checked against; a file refused here leaves every customer alone."""
    if on_duplicate not in DUPLICATE_POLICIES:
        raise Invalid("重复处理方式只能是 merge 或 skip", field="on_duplicate")
    rows = _numbered_rows(path)
    first = next(rows, None)
    if first is None:
        raise ImportFileError("文件是空的", field="file")
    total = sum(1 for _ in rows)  # reads to the end, so the limits are checked before writing
    headers = ["" if h is None else str(h).strip() for h in first[1]]
    definitions = custom_fields.active_fields(session)
    mapping, ignored = map_headers(headers, definitions)
    return CustomerImport(
        actor=actor,
        path=path,
        on_duplicate=on_duplicate,
        headers=headers,
        mapping=mapping,
        total_rows=total,
        ignored_columns=ignored,
        owners=_owner_lookup(session, actor),
        custom_by_key={definition.key: definition for definition in definitions},
    )


def write_import(
    session: Session,
    plan: CustomerImport,
    *,
    now: datetime,
    batch_rows: int,
    on_batch: Callable[[ImportResult], None] | None = None,
) -> ImportResult:
    """Write the file's rows `batch_rows` at a time, each row in its own savepoint (a bad row is
    reported, the good ones land); `on_batch` runs after each batch, where the edge commits."""
    result = ImportResult(total_rows=plan.total_rows, ignored_columns=plan.ignored_columns)
    for batch in plan.batches(batch_rows):
        for row_number, row in batch:
            _import_row(session, plan, row_number, row, result, now=now)
        if on_batch:
            on_batch(result)
    return result


def import_customers(
    session: Session,
    *,
    actor: Actor,
    path: Path,
    on_duplicate: str,
    now: datetime,
    batch_rows: int = 500,
    on_batch: Callable[[ImportResult], None] | None = None,
) -> ImportResult:
    """Import a whole file in `session`: checked first, then written batch by batch."""
    plan = open_import(session, actor=actor, path=path, on_duplicate=on_duplicate)
    return write_import(session, plan, now=now, batch_rows=batch_rows, on_batch=on_batch)


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


def check_archive(source: Path | IO[bytes]) -> None:
    """Refuse an .xlsx whose parts would inflate past the limits, before any part is parsed."""
    try:
        with zipfile.ZipFile(source) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ImportFileError("无法读取 Excel 文件：不是有效的 xlsx 文件", field="file") from None
    too_large = "Excel 文件解压后过大（可能是恶意构造的文件），请删除多余内容或拆分文件后再导入"
    if sum(part.file_size for part in parts) > MAX_UNCOMPRESSED_BYTES:
        raise ImportTooLarge(too_large, field="file")
    for part in parts:
        inflated = part.file_size >= RATIO_CHECKED_FROM_BYTES and (
            part.file_size > MAX_COMPRESSION_RATIO * max(part.compress_size, 1)
        )
        strings = part.filename.lower().endswith("sharedstrings.xml")
        if inflated or (strings and part.file_size > MAX_SHARED_STRINGS_BYTES):
            raise ImportTooLarge(too_large, field="file")


def _numbered_rows(path: Path) -> Iterator[tuple[int, Sequence[Any]]]:
    """The non-blank rows with their spreadsheet row numbers, streamed, refused as soon as the
    file passes the row or cell limit. Blank rows are passed over but still counted, so row
    numbers match what Excel shows."""
    cells = 0
    data_rows = -1  # the first non-blank row holds the headers
    for number, raw in enumerate(_raw_rows(path), start=1):
        cells += max(len(raw), 1)
        if cells > MAX_CELLS:
            raise ImportTooLarge(
                "表格的单元格过多（含空白单元格超过 200 万个）：请删除多余的空行空列，"
                "或拆分文件后再导入",
                field="file",
            )
        if all(map(_is_blank, raw)):
            continue
        data_rows += 1
        if data_rows > MAX_ROWS:
            raise ImportTooLarge(f"单次最多导入 {MAX_ROWS} 行，请拆分文件", field="file")
        yield number, raw


def _raw_rows(path: Path) -> Iterator[Sequence[Any]]:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _xlsx_rows(path)
    if suffix == ".csv":
        return _csv_rows(path)
    raise ImportFileError("只支持 .xlsx 或 .csv 文件", field="file")


def _xlsx_rows(path: Path) -> Iterator[Sequence[Any]]:
    check_archive(path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a broken file
        message = f"无法读取 Excel 文件：{type(error).__name__}"
        raise ImportFileError(message, field="file") from None
    try:
        if not workbook.worksheets:
            return
        sheet = workbook.worksheets[0]
        # The size a sheet states may be wrong (rows past it would be lost) or padded out to
        # millions of blank cells: read the cells that are there.
        sheet.reset_dimensions()
        yield from sheet.iter_rows(values_only=True)
    except Exception as error:  # a broken part shows only once it is parsed
        message = f"无法读取 Excel 文件：{type(error).__name__}"
        raise ImportFileError(message, field="file") from None
    finally:
        workbook.close()


def _csv_rows(path: Path) -> Iterator[Sequence[Any]]:
    with path.open(encoding=_encoding(path), newline="") as handle:
        reader = csv.reader(_csv_lines(handle))
        try:
            yield from reader
        except csv.Error:
            line = reader.line_num
            message = f"无法读取 CSV 文件：第 {line} 行格式有误（引号不成对或单元格过长）"
            raise ImportFileError(message, field="file") from None


def _csv_lines(handle: IO[str]) -> Iterator[str]:
    while line := handle.readline(MAX_CSV_LINE_CHARS + 1):
        if len(line) > MAX_CSV_LINE_CHARS:
            raise ImportTooLarge("CSV 文件中有一行超过 100 万个字符，请检查文件", field="file")
        yield line


def _encoding(path: Path) -> str:
    # Excel on Chinese Windows saves CSV as GBK; everything else is UTF-8, often with a BOM.
    # Decoded piece by piece, so a large file is never held whole.
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise ImportFileError("无法识别文件编码，请另存为 UTF-8 的 CSV 或 xlsx", field="file")


def _import_row(
    session: Session,
    plan: CustomerImport,
    row_number: int,
    row: _Row,
    result: ImportResult,
    *,
    now: datetime,
) -> None:
    """Report a row refused for its cells, or write it in a savepoint and report the outcome."""
    if row.problems:
        result.add_problems(row_number, row.problems)
        return
    try:
        with session.begin_nested():
            outcome, details = _write_row(session, plan=plan, row=row, now=now)
        result.add(row_number, outcome, **details)
    except DomainError as error:
        result.add(
            row_number,
            "error",
            field=_column_label(error.field, plan.mapping, plan.headers),
            message=error.message,
        )


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
    raw: Sequence[Any],
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
    session: Session, *, plan: CustomerImport, row: _Row, now: datetime
) -> tuple[str, dict[str, Any]]:
    """Create the row's customer, or merge it into (or skip it for) the one with its phone."""
    actor, seen_phones = plan.actor, plan.seen_phones
    phone = row.values.get("phone")
    existing_id = seen_phones.get(phone) if phone else None
    if phone and existing_id is None:
        existing = find_by_phone(session, phone)
        existing_id = existing.id if existing else None
    if existing_id is not None:
        if plan.on_duplicate == "skip":
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
