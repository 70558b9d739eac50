"""The customer-field catalogue: every built-in customer field declared once.

Each entry says what people call the field, its kind, the other column titles an import
recognises, whether rules may ask about it, whether it counts toward completeness and how a
written value is checked. The rest derives from here: writes (`customers.clean_fields`),
imports and exports, the rule facts, completeness and the API's customer schemas. Adding a
field is one entry below plus a migration adding its column to `models.Customer`.

Tags and the owner are not fields: they are relations with their own verbs and columns in an
import (`crm.imports`). Custom fields share the kinds and the value checks defined here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Integer, Numeric

from crm.email_addresses import normalise_email
from crm.errors import Invalid
from crm.phones import normalise_phone
from crm.text import check_text
from crm.vocab import Category, ContactMethod, Grade, NeedMatch, Source, Stage
from models import Customer

# Unbounded text columns (Text) still take no more than a page.
LONG_TEXT_MAX_CHARS = 2000
# Every spelling of yes and no people put in a cell or a message, for built-in and custom fields.
YES_WORDS = frozenset({"是", "有", "yes", "y", "true", "1", "√"})
NO_WORDS = frozenset({"否", "无", "no", "n", "false", "0", "×"})


class FieldKind(StrEnum):
    """What a field's value is: built-in and custom fields have the same kinds."""

    TEXT = "text"
    NUMBER = "number"
    BOOL = "bool"
    ENUM = "enum"
    DATE = "date"  # custom fields only, kept as ISO text


@dataclass(frozen=True)
class CustomerField:
    """One built-in customer field; its key is the `Customer` column that stores it."""

    key: str
    label: str  # the column title of exports, the fact label of rules, the name in messages
    kind: FieldKind
    aliases: tuple[str, ...] = ()  # other column titles an import recognises (besides key/label)
    vocabulary: type[StrEnum] | None = None  # ENUM: the allowed values
    normalise: Callable[[Any], Any] | None = None  # a value with its own format (phone, email)
    maximum: int | Decimal | None = None  # NUMBER: the largest value (the smallest is 0)
    is_editable: bool = True  # False: set by its own verb (stage moves, grading), not a write
    is_fact: bool = True  # rules may ask about it
    is_required: bool = False  # counts toward data completeness (资料完整度)

    @property
    def column(self) -> Column[Any]:
        return Customer.__mapper__.columns[self.key]

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(member.value for member in self.vocabulary) if self.vocabulary else ()

    @property
    def max_length(self) -> int:
        """The most characters a TEXT or ENUM value may have: its column's size."""
        return getattr(self.column.type, "length", None) or LONG_TEXT_MAX_CHARS

    @property
    def is_nullable(self) -> bool:
        return bool(self.column.nullable)

    @property
    def is_whole_number(self) -> bool:
        return isinstance(self.column.type, Integer)

    @property
    def default(self) -> Any:
        """What a blank becomes: the column's default, or None."""
        return getattr(self.column.default, "arg", None)


CATALOGUE: tuple[CustomerField, ...] = (
    CustomerField(
        "name",
        "客户名称",
        FieldKind.TEXT,
        aliases=("客户姓名", "客户", "姓名", "名称", "customer"),
        is_required=True,
    ),
    CustomerField(
        "phone",
        "电话",
        FieldKind.TEXT,
        aliases=("手机", "手机号", "手机号码", "联系电话", "电话号码", "mobile"),
        normalise=normalise_phone,
        is_fact=False,
        is_required=True,
    ),
    CustomerField(
        "email",
        "邮箱",
        FieldKind.TEXT,
        aliases=("电子邮箱", "邮件地址", "e-mail"),
        normalise=normalise_email,
        is_fact=False,
    ),
    CustomerField(
        "company",
        "公司",
        FieldKind.TEXT,
        aliases=("公司名称", "单位", "单位名称"),
        is_required=True,
    ),
    CustomerField(
        "region", "所属区域", FieldKind.TEXT, aliases=("区域", "地区", "县市"), is_required=True
    ),
    CustomerField(
        "category",
        "客户分类",
        FieldKind.ENUM,
        aliases=("分类", "客户类型", "分类标签"),
        vocabulary=Category,
        is_required=True,
    ),
    CustomerField(
        "stage",
        "阶段",
        FieldKind.ENUM,
        aliases=("当前阶段", "客户阶段"),
        vocabulary=Stage,
        is_editable=False,
    ),
    CustomerField(
        "grade",
        "等级",
        FieldKind.ENUM,
        aliases=("客户等级",),
        vocabulary=Grade,
        is_editable=False,
    ),
    CustomerField(
        "source", "客户来源", FieldKind.ENUM, aliases=("来源",), vocabulary=Source, is_required=True
    ),
    CustomerField(
        "first_contact_method",
        "首次接触方式",
        FieldKind.ENUM,
        aliases=("接触方式",),
        vocabulary=ContactMethod,
        is_required=True,
    ),
    CustomerField(
        "need_match",
        "需求匹配度",
        FieldKind.ENUM,
        aliases=("匹配度",),
        vocabulary=NeedMatch,
        is_required=True,
    ),
    CustomerField("quote_feedback", "报价反馈", FieldKind.TEXT, is_fact=False),
    CustomerField(
        "expected_amount",
        "预计金额",
        FieldKind.NUMBER,
        aliases=("预计成交金额", "金额"),
        maximum=Decimal("999999999999.99"),
        is_required=True,
    ),
    CustomerField(
        "inquiry_count",
        "累计询价次数",
        FieldKind.NUMBER,
        aliases=("询价次数", "累计询价"),
        maximum=100_000,
    ),
    CustomerField(
        "has_budget", "有明确预算", FieldKind.BOOL, aliases=("有预算", "是否有预算", "明确预算")
    ),
    CustomerField(
        "attended_expo", "参加过线下展会", FieldKind.BOOL, aliases=("参加展会", "是否参加展会")
    ),
)
FIELDS: dict[str, CustomerField] = {field.key: field for field in CATALOGUE}
EDITABLE_KEYS = tuple(field.key for field in CATALOGUE if field.is_editable)


def clean_value(key: str, raw: Any) -> Any:
    """A written value of a built-in field, checked and normalised; Invalid names the field."""
    field = FIELDS[key]
    value = check_text(raw, field=key).strip() if isinstance(raw, str) else raw
    if value is None or value == "":
        if not field.is_nullable and field.default is None:
            raise Invalid(f"「{field.label}」不能为空", code="required", field=key)
        return field.default
    if field.normalise is not None:
        return field.normalise(value)
    if field.kind is FieldKind.ENUM:
        return clean_choice(value, field.choices, label=field.label, field=key)
    if field.kind is FieldKind.NUMBER:
        return _clean_number(field, value)
    if field.kind is FieldKind.BOOL:
        return clean_yes_no(value, label=field.label, field=key)
    return clean_text(value, max_length=field.max_length, label=field.label, field=key)


def parse_yes_no(raw: Any) -> bool | None:
    """True or False for the ways people write yes and no (是/否, 有/无, √/×, yes/no, 1/0),
    None for anything else."""
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None


def clean_yes_no(raw: Any, *, label: str, field: str) -> bool:
    """A yes/no value, or Invalid naming the field."""
    value = parse_yes_no(raw)
    if value is None:
        raise Invalid(f"「{label}」应为是或否", field=field)
    return value


def clean_choice(raw: Any, choices: tuple[str, ...] | list[str], *, label: str, field: str) -> str:
    """One of `choices` (Latin letters in any case: a grade typed as "a" is "A")."""
    text = str(raw).strip()
    by_folded = {choice.casefold(): choice for choice in choices}
    choice = by_folded.get(text.casefold())
    if choice is None:
        raise Invalid(f"「{label}」只能是：{'、'.join(choices)}", field=field)
    return choice


def clean_text(raw: Any, *, max_length: int, label: str, field: str) -> str:
    """Storable text of at most `max_length` characters."""
    text = check_text(str(raw), field=field).strip()
    if len(text) > max_length:
        raise Invalid(f"「{label}」不能超过{max_length}字，这里有{len(text)}字", field=field)
    return text


def _clean_number(field: CustomerField, raw: Any) -> int | Decimal:
    """A number from 0 to the field's maximum, whole or rounded to its column's decimals."""
    not_a_number = Invalid(
        f"「{field.label}」应为{'整数' if field.is_whole_number else '数字'}", field=field.key
    )
    if isinstance(raw, bool):
        raise not_a_number
    # Excel's thousands separators stay in a CSV (1,200); Excel stores a whole number as 3.0.
    text = str(raw).strip().replace(",", "").replace("，", "")
    try:
        number = Decimal(text)
        if not number.is_finite():
            raise not_a_number
        column_type = field.column.type
        if isinstance(column_type, Numeric) and column_type.scale is not None:
            # Round before the range check: 999999999999.999 rounds up past the column's limit.
            number = number.quantize(Decimal(1).scaleb(-column_type.scale))
    except ArithmeticError:
        raise not_a_number from None
    if field.is_whole_number and number != number.to_integral_value():
        raise not_a_number
    assert field.maximum is not None
    if not 0 <= number <= field.maximum:
        raise Invalid(f"「{field.label}」应在 0 到 {field.maximum} 之间", field=field.key)
    return int(number) if field.is_whole_number else number
