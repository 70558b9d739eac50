"""The customer-field catalogue: each field is a real column of its kind, every list of customer
fields (writes, imports, exports, rule facts, completeness) is built from it, and one reading of
yes and no serves built-in and custom fields alike."""

from decimal import Decimal

import pytest
from sqlalchemy import Boolean, Integer, Numeric, String

from crm import custom_fields, customer_changes, customers, fields
from crm.actors import Actor
from crm.completeness import missing_fields
from crm.customers import CustomerQuery
from crm.errors import Invalid
from crm.exports import EXTRA_COLUMNS, export_table
from crm.fields import CATALOGUE, FieldKind
from crm.imports import map_headers
from crm.rules.facts import BUILT_IN, FIELD_KINDS
from models import Customer, CustomField
from tests.factories import make_company

COLUMN_TYPES = {
    FieldKind.TEXT: String,  # Text is a String too
    FieldKind.ENUM: String,
    FieldKind.NUMBER: (Integer, Numeric),
    FieldKind.BOOL: Boolean,
}


@pytest.mark.parametrize("field", CATALOGUE, ids=lambda f: f.key)
def test_every_catalogue_field_is_a_customer_column_of_its_kind(field):
    column = Customer.__table__.c.get(field.key)
    assert column is not None, f"models.Customer has no column {field.key}: add it and a migration"
    assert isinstance(column.type, COLUMN_TYPES[field.kind])
    assert (field.vocabulary is not None) == (field.kind is FieldKind.ENUM)
    assert (field.maximum is not None) == (field.kind is FieldKind.NUMBER)
    if field.kind is FieldKind.ENUM:
        assert max(map(len, field.choices)) <= column.type.length


def test_keys_and_labels_are_unique():
    assert len({f.key for f in CATALOGUE}) == len(CATALOGUE)
    assert len({f.label for f in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("field", CATALOGUE, ids=lambda f: f.key)
def test_an_import_reads_the_label_the_key_and_every_alias_as_that_field(field):
    for title in (field.label, field.key.upper(), *field.aliases):
        mapping, ignored = map_headers([title, "客户名称"], [])
        assert mapping[0] == field.key, title
        assert ignored == ([] if field.key != "name" else ["客户名称"])


def test_an_export_has_a_column_for_every_field_titled_with_its_label(session, clock):
    rep = make_company(session).reps[0][0]
    values = {"name": "佛山陶瓷厂", "expected_amount": "1200.5", "has_budget": "√"}
    customer_changes.create_customer(session, actor=Actor.of(rep), values=values, now=clock())

    header, row = export_table(session, actor=Actor.of(rep), query=CustomerQuery())

    assert header == [f.label for f in CATALOGUE] + ["标签", "负责人", *EXTRA_COLUMNS]
    exported = dict(zip(header, row, strict=True))
    assert exported["客户名称"] == "佛山陶瓷厂"
    assert (exported["预计金额"], exported["有明确预算"], exported["累计询价次数"]) == (
        1200.5,
        "是",
        0,
    )


def test_rules_may_ask_about_exactly_the_fields_marked_as_facts():
    for field in CATALOGUE:
        if not field.is_fact:
            assert field.key not in BUILT_IN
            continue
        fact = BUILT_IN[field.key]
        assert (fact.label, fact.kind, fact.choices) == (
            field.label,
            FIELD_KINDS[field.kind],
            field.choices,
        )
    assert {"phone", "email", "quote_feedback"}.isdisjoint(BUILT_IN)


def test_completeness_asks_for_the_fields_marked_required():
    bare = Customer(name="张先生", custom_values={})
    required = [f.key for f in CATALOGUE if f.is_required]
    assert required[0] == "name"
    assert missing_fields(bare, []) == required[1:]
    assert "phone" in required and "quote_feedback" not in required


def test_a_write_sets_the_editable_fields_and_refuses_the_others():
    editable = [f.key for f in CATALOGUE if f.is_editable]
    assert tuple(editable) == customers.EDITABLE_FIELDS
    assert {"stage", "grade"}.isdisjoint(editable)
    for key in ("stage", "grade", "owner_id"):
        with pytest.raises(Invalid) as caught:
            customers.clean_fields({key: "A"})
        assert caught.value.field == key


def test_a_blank_value_becomes_the_columns_default_or_none():
    cleaned = customers.clean_fields({"inquiry_count": "", "has_budget": None, "region": "  "})
    assert cleaned == {"inquiry_count": 0, "has_budget": False, "region": None}
    with pytest.raises(Invalid) as caught:
        customers.clean_fields({"name": " "})
    assert (caught.value.code, caught.value.message) == ("required", "「客户名称」不能为空")


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("phone", "+86 138-0013-8000", "13800138000"),
        ("email", "Zhang@Example.COM", "Zhang@example.com"),
        ("category", " 工程客户 ", "工程客户"),
        ("grade", "a", "A"),
        ("expected_amount", "1,200.456", Decimal("1200.46")),
        ("expected_amount", 0, Decimal("0.00")),
        ("inquiry_count", "3.0", 3),
        ("inquiry_count", 7, 7),
        ("attended_expo", "√", True),
        ("attended_expo", "无", False),
    ],
)
def test_each_kind_reads_what_people_type(key, raw, expected):
    value = fields.clean_value(key, raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("region", "长" * 65, "「所属区域」不能超过64字，这里有65字"),
        ("source", "朋友圈", "「客户来源」只能是：" + "、".join(fields.FIELDS["source"].choices)),
        ("expected_amount", "五千", "「预计金额」应为数字"),
        ("expected_amount", "-1", "「预计金额」应在 0 到 999999999999.99 之间"),
        ("expected_amount", "999999999999.999", "「预计金额」应在 0 到 999999999999.99 之间"),
        ("expected_amount", "nan", "「预计金额」应为数字"),
        ("expected_amount", True, "「预计金额」应为数字"),
        ("inquiry_count", "2.5", "「累计询价次数」应为整数"),
        ("inquiry_count", 100001, "「累计询价次数」应在 0 到 100000 之间"),
        ("has_budget", "也许", "「有明确预算」应为是或否"),
        ("quote_feedback", "a\x00b", "「quote_feedback」包含不可见的控制字符或无效字符"),
    ],
)
def test_a_bad_value_is_refused_naming_the_field(key, raw, message):
    with pytest.raises(Invalid) as caught:
        fields.clean_value(key, raw)
    assert (caught.value.field, caught.value.message) == (key, message)


@pytest.mark.parametrize("word", ["是", "有", "√", "yes", "Y", "TRUE", "1", True])
def test_built_in_and_custom_yes_no_fields_read_yes_alike(word):
    custom = CustomField(key="needs_install", label="是否需要安装", kind="bool", options=[])
    assert fields.clean_value("has_budget", word) is True
    assert custom_fields.clean_value(custom, word) is True


@pytest.mark.parametrize("word", ["否", "无", "×", "no", "N", "false", "0", False])
def test_built_in_and_custom_yes_no_fields_read_no_alike(word):
    custom = CustomField(key="needs_install", label="是否需要安装", kind="bool", options=[])
    assert fields.clean_value("has_budget", word) is False
    assert custom_fields.clean_value(custom, word) is False


def test_a_word_that_is_neither_yes_nor_no_is_none():
    assert [fields.parse_yes_no(w) for w in ("也许", "on", "2", "√×")] == [None] * 4
