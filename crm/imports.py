"""Customer import from Excel or CSV: headers in the users' words, phones normalised, duplicates
merged or skipped by choice, and a report line for every row that was not simply created."""

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

from crm import custom_fields
from crm.actors import Actor, user_scope
from crm.customer_changes import create_customer, update_customer
from crm.customers import find_by_phone, get_customer
from crm.errors import Conflict, DomainError, Invalid, NotFound
from crm.phones import normalise_phone
from models import Customer, User

# Column titles people really use, all mapped to one field each (compared without spaces/case).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("客户名称", "客户姓名", "客户", "姓名", "名称", "name", "customer"),
    "phone": ("电话", "手机", "手机号", "手机号码", "联系电话", "电话号码", "phone", "mobile"),
    "email": ("邮箱", "电子邮箱", "邮件地址", "email", "e-mail"),
    "company": ("公司", "公司名称", "单位", "单位名称", "company"),
    "region": ("区域", "所属区域", "地区", "县市", "region"),
    "category": ("分类", "客户分类", "客户类型", "分类标签", "category"),
    "stage": ("阶段", "当前阶段", "客户阶段", "stage"),
    "grade": ("等级", "客户等级", "grade"),
    "source": ("来源", "客户来源", "source"),
    "first_contact_method": ("首次接触方式", "接触方式", "first_contact_method"),
    "need_match": ("需求匹配度", "匹配度", "need_match"),
    "quote_feedback": ("报价反馈", "quote_feedback"),
    "expected_amount": ("预计金额", "预计成交金额", "金额", "expected_amount"),
    "inquiry_count": ("询价次数", "累计询价", "inquiry_count"),
    "has_budget": ("有预算", "是否有预算", "明确预算", "has_budget"),
    "attended_expo": ("参加展会", "是否参加展会", "参加过线下展会", "attended_expo"),
    "tags": ("标签", "tags"),
    "owner": ("负责人", "归属销售", "销售", "所属销售", "owner"),
}
TAG_SEPARATORS = re.compile(r"[,，、;；/]")
_YES = {"是", "有", "yes", "y", "true", "1", "√"}
_NO = {"否", "无", "no", "n", "false", "0", "×", ""}
MAX_ROWS = 50_000
# Fields whose cells are text however Excel typed them (a name of 1001, a date in 区域).
TEXT_FIELDS = frozenset(
    (
        "name",
        "phone",
        "email",
        "company",
        "region",
        "category",
        "source",
        "first_contact_method",
        "need_match",
        "quote_feedback",
    )
)
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
    lookup = {_norm(alias): name for name, aliases in HEADER_ALIASES.items() for alias in aliases}
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
    seen_phones: dict[str, int] = {}  # phone → customer id, for duplicates inside the file

    for done, (row_number, raw) in enumerate(rows, start=1):
        try:
            with session.begin_nested():
                outcome, details = _import_row(
                    session,
                    actor=actor,
                    raw=raw,
                    mapping=mapping,
                    owners=owners,
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


def _import_row(
    session: Session,
    *,
    actor: Actor,
    raw: list[Any],
    mapping: dict[int, str],
    owners: dict[str, int],
    on_duplicate: str,
    seen_phones: dict[str, int],
    now: datetime,
) -> tuple[str, dict[str, Any]]:
    values: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    tags: list[str] = []
    stage = grade = owner_key = None
    for index, target in mapping.items():
        cell = raw[index] if index < len(raw) else None
        if _is_blank(cell):
            continue
        if isinstance(cell, float) and cell.is_integer():
            cell = int(cell)  # Excel stores 1001 as 1001.0
        if isinstance(cell, str) or target in TEXT_FIELDS:
            cell = _text(cell)
        if target.startswith("custom:"):
            custom[target.removeprefix("custom:")] = cell
        elif target == "tags":
            tags = [t for t in TAG_SEPARATORS.split(str(cell)) if t.strip()]
        elif target == "stage":
            stage = str(cell)
        elif target == "grade":
            grade = str(cell).upper()
        elif target == "owner":
            owner_key = str(cell)
        elif target in ("has_budget", "attended_expo"):
            values[target] = _yes_no(cell, target)
        else:
            values[target] = _within_column(target, cell)
    if "name" not in values:
        raise Invalid("客户名称为空", code="required", field="name")
    phone = normalise_phone(values.get("phone"))
    existing_id = seen_phones.get(phone) if phone else None
    existing = None
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
                values=values,
                now=now,
                custom_values=custom or None,
                reason="导入合并",
            )
        except NotFound:
            raise Conflict(
                f"电话 {phone} 已登记在其他销售名下，无法合并",
                code="duplicate_phone",
                field="phone",
            ) from None
        return "merged", {"customer_id": customer.id, "message": f"电话 {phone} 已存在，已合并"}
    owner_id = None
    if owner_key is not None:
        owner_id = owners.get(owner_key)
        if owner_id is None:
            raise Invalid(
                f"找不到负责人「{owner_key}」：请填写你可分配的成员姓名或企业微信账号"
                "（重名时填账号）",
                field="owner",
            )
    customer = create_customer(
        session,
        actor=actor,
        values=values,
        now=now,
        owner_id=owner_id if actor.can_manage else None,
        stage=stage or "潜在",
        grade=grade if actor.can_manage else None,
        tags=tags,
        custom_values=custom,
        cause="导入",
    )
    if phone:
        seen_phones[phone] = customer.id
    return "created", {"customer_id": customer.id}


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


def _within_column(name: str, value: Any) -> Any:
    """Refuse text longer than its column: PostgreSQL would fail the whole import instead."""
    limit = getattr(Customer.__table__.c[name].type, "length", None)
    if limit and isinstance(value, str) and len(value) > limit:
        raise Invalid(f"内容过长：最多{limit}字，这里有{len(value)}字", field=name)
    return value


def _yes_no(cell: Any, field_name: str) -> bool:
    if isinstance(cell, bool):
        return cell
    word = str(cell).strip().lower()
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise Invalid(f"应填写是或否，而不是「{cell}」", field=field_name)


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
