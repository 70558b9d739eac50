"""Fields the boss adds to every customer (company settings), and the validation every write runs
them through.

`is_required` means the field counts toward data completeness (资料完整度): a rep may save a
customer without it, which is exactly what the completeness score makes visible.
"""

from __future__ import annotations

import contextlib
import re
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import after_commit, audit
from crm.actors import Actor
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from crm.fields import FieldKind, clean_choice, clean_text, clean_yes_no
from models import CustomField
from models.users import Role

MAX_TEXT_LENGTH = 500
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# 2026-03-01 and 20260301, and the 2026/3/1 and 2026年3月1日 Chinese Excel writes into a CSV.
_DATE = re.compile(r"^(\d{4})(?:[-/.年](\d{1,2})[-/.月](\d{1,2})日?|(\d{2})(\d{2}))$")


def active_fields(session: Session) -> list[CustomField]:
    """The fields in force, in the order they were added."""
    return list(
        session.scalars(select(CustomField).where(CustomField.is_active).order_by(CustomField.id))
    )


def clean_value(definition: CustomField, raw: Any) -> Any:
    """Coerce one value to the field's kind (imports send text) or raise Invalid naming it."""
    field = f"custom_values.{definition.key}"
    if raw is None or raw == "":
        return None
    kind = FieldKind(definition.kind)
    if kind is FieldKind.TEXT:
        text = clean_text(raw, max_length=MAX_TEXT_LENGTH, label=definition.label, field=field)
        return text or None  # blanks are "not filled", for completeness as for filters
    if kind is FieldKind.NUMBER:
        if isinstance(raw, bool):
            raise Invalid(f"「{definition.label}」应为数字", field=field)
        if isinstance(raw, str):  # a CSV keeps Excel's thousands separators: 1,200
            raw = raw.replace(",", "").replace("，", "")
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise Invalid(f"「{definition.label}」应为数字", field=field) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise Invalid(f"「{definition.label}」应为数字", field=field)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind is FieldKind.BOOL:
        return clean_yes_no(raw, label=definition.label, field=field)
    if kind is FieldKind.ENUM:
        return clean_choice(raw, definition.options, label=definition.label, field=field)
    if isinstance(raw, (date, datetime)):
        return (raw.date() if isinstance(raw, datetime) else raw).isoformat()
    match = _DATE.match(str(raw).strip())
    if match is not None:
        with contextlib.suppress(ValueError):  # 2026-02-30 has the shape but is no date
            return date(*(int(part) for part in match.groups() if part)).isoformat()
    raise Invalid(f"「{definition.label}」应为日期（如 2026-03-01）", field=field)


def clean_values(
    definitions: list[CustomField], values: dict[str, Any], *, current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Merge `values` into `current` after validating each against its definition."""
    by_key = {d.key: d for d in definitions}
    merged = dict(current or {})
    for key, raw in values.items():
        definition = by_key.get(key)
        if definition is None:
            raise Invalid(f"没有名为「{key}」的自定义字段", field=f"custom_values.{key}")
        value = clean_value(definition, raw)
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def define_field(
    session: Session,
    *,
    actor: Actor,
    key: str,
    label: str,
    kind: str,
    options: list[str],
    is_required: bool,
    is_tag_dimension: bool,
    now: datetime,
) -> CustomField:
    """Add a field to every customer at once: no migration, no restart."""
    _require_boss(actor)
    if not KEY_PATTERN.match(key):
        raise Invalid("字段标识只能用小写字母、数字和下划线，并以字母开头", field="key")
    if session.scalar(select(CustomField.id).where(CustomField.key == key)) is not None:
        raise Conflict(f"字段标识「{key}」已存在", code="duplicate_field")
    options = _clean_options(kind, options, is_tag_dimension)
    field = CustomField(
        key=key,
        label=label.strip(),
        kind=FieldKind(kind),
        options=options,
        is_required=is_required,
        is_tag_dimension=is_tag_dimension,
        is_active=True,
        created_at=now,
    )
    session.add(field)
    session.flush()
    audit.record(
        session,
        actor=actor,
        entity="custom_field",
        entity_id=field.id,
        action="create",
        before={},
        after={"key": key, "label": label, "kind": kind, "required": is_required},
        now=now,
    )
    if is_required:
        after_commit.start(session, after_commit.COMPLETENESS)
    return field


def change_field(
    session: Session,
    *,
    actor: Actor,
    field_id: int,
    changes: dict[str, Any],
    now: datetime,
) -> CustomField:
    """Change a field's label, options, required flag or retire it; its kind stays fixed."""
    _require_boss(actor)
    field = session.get(CustomField, field_id)
    if field is None:
        raise NotFound("自定义字段")
    before = {k: getattr(field, k) for k in changes}
    if {"options", "is_tag_dimension"} & changes.keys():
        # Checked together: a text field must not become a tag dimension by itself either.
        options = _clean_options(
            field.kind,
            changes.get("options", field.options),
            changes.get("is_tag_dimension", field.is_tag_dimension),
        )
        if "options" in changes:
            changes["options"] = options
    for name, value in changes.items():
        setattr(field, name, value)
    audit.record(
        session,
        actor=actor,
        entity="custom_field",
        entity_id=field.id,
        action="update",
        before=before,
        after=changes,
        now=now,
    )
    if {"is_required", "is_active"} & changes.keys():
        after_commit.start(session, after_commit.COMPLETENESS)  # what counts toward it changed
    return field


def _clean_options(kind: str, options: list[str], is_tag_dimension: bool) -> list[str]:
    cleaned = list(dict.fromkeys(o.strip() for o in options if o.strip()))
    if kind == FieldKind.ENUM and not cleaned:
        raise Invalid("枚举字段至少需要一个选项", field="options")
    if kind != FieldKind.ENUM and cleaned:
        raise Invalid("只有枚举字段可以设置选项", field="options")
    if is_tag_dimension and kind not in (FieldKind.BOOL, FieldKind.ENUM):
        raise Invalid("标签维度只能是是/否或枚举字段", field="is_tag_dimension")
    return cleaned


def _require_boss(actor: Actor) -> None:
    # Fields are the company's settings: every team's customers carry the same ones.
    if actor.role is not Role.BOSS:
        raise Forbidden("只有老板可以管理自定义字段")
