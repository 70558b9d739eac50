"""Custom fields: every kind coerces what people type, and refusals name `custom_values.<key>`."""

from datetime import date, datetime

import pytest

from crm import after_commit, custom_fields
from crm.actors import Actor
from crm.custom_fields import clean_value, clean_values
from crm.errors import Conflict, Forbidden, Invalid
from models import CustomField
from tests.factories import make_company


def field(kind: str, key: str = "k", label: str = "字段", options: list[str] | None = None):
    return CustomField(key=key, label=label, kind=kind, options=options or [])


def refusal(definition: CustomField, raw: object) -> Invalid:
    with pytest.raises(Invalid) as caught:
        clean_value(definition, raw)
    return caught.value


@pytest.mark.parametrize("kind", ["text", "number", "bool", "enum", "date"])
@pytest.mark.parametrize("raw", [None, ""])
def test_an_empty_value_of_any_kind_is_none(kind, raw):
    assert clean_value(field(kind, options=["是"]), raw) is None


def test_text_is_trimmed_and_blank_text_counts_as_empty():
    assert clean_value(field("text"), "  广东佛山  ") == "广东佛山"
    assert clean_value(field("text"), "   ") is None


def test_text_over_the_limit_is_refused():
    error = refusal(field("text", key="note", label="备注"), "字" * 501)
    assert error.field == "custom_values.note"
    assert "备注" in error.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(5, 5), (2.5, 2.5), ("12", 12), (" 3.5 ", 3.5), ("1,200", 1200), ("1，200", 1200), (7.0, 7)],
)
def test_numbers_come_back_as_int_when_whole(raw, expected):
    value = clean_value(field("number"), raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("raw", ["五千", "12元", True, "nan", "inf", [1]])
def test_a_bad_number_is_refused_naming_the_field(raw):
    error = refusal(field("number", key="area_m2", label="面积"), raw)
    assert error.field == "custom_values.area_m2"
    assert error.message == "「面积」应为数字"


@pytest.mark.parametrize("raw", ["是", "有", "true", "TRUE", "1", "yes", "Y", True])
def test_yes_words_are_true(raw):
    assert clean_value(field("bool"), raw) is True


@pytest.mark.parametrize("raw", ["否", "无", "false", "0", "no", "N", False])
def test_no_words_are_false(raw):
    assert clean_value(field("bool"), raw) is False


def test_a_bool_that_is_neither_is_refused():
    error = refusal(field("bool", key="needs_install", label="是否需要安装"), "也许")
    assert error.field == "custom_values.needs_install"
    assert error.message == "「是否需要安装」应为是或否"


def test_an_enum_takes_one_of_its_options_and_nothing_else():
    definition = field("enum", key="level", label="意向强度", options=["强", "中", "弱"])
    assert clean_value(definition, " 强 ") == "强"
    error = refusal(definition, "很强")
    assert error.field == "custom_values.level"
    assert error.message == "「意向强度」只能是：强、中、弱"


@pytest.mark.parametrize(
    "raw",
    [
        "2026-03-01",
        "2026/3/1",  # how Chinese Excel writes a date cell into a CSV
        "2026年3月1日",
        "2026.3.1",
        "20260301",
        date(2026, 3, 1),
        datetime(2026, 3, 1, 14, 30),  # an Excel date cell
    ],
)
def test_dates_in_the_ways_people_write_them_become_iso(raw):
    assert clean_value(field("date"), raw) == "2026-03-01"


@pytest.mark.parametrize("raw", ["2026-02-30", "下周一", "3/1", "2026-13-01", 20260301.5])
def test_a_bad_date_is_refused_naming_the_field(raw):
    error = refusal(field("date", key="visit_on", label="拜访日期"), raw)
    assert error.field == "custom_values.visit_on"
    assert "拜访日期" in error.message


def test_clean_values_merges_into_current_and_an_empty_value_removes_the_key():
    definitions = [field("text", key="note"), field("number", key="area")]
    merged = clean_values(definitions, {"area": "300", "note": ""}, current={"note": "旧", "x": 1})
    assert merged == {"area": 300, "x": 1}


def test_clean_values_refuses_an_unknown_key_naming_it():
    with pytest.raises(Invalid) as caught:
        clean_values([field("text", key="note")], {"colour": "红"})
    assert caught.value.field == "custom_values.colour"


# --- defining fields (database) ----------------------------------------------------------------


def define(session, actor, clock, **overrides):
    values = dict(
        key="needs_install",
        label="是否需要安装",
        kind="bool",
        options=[],
        is_required=False,
        is_tag_dimension=True,
    )
    values.update(overrides)
    return custom_fields.define_field(session, actor=actor, now=clock(), **values)


def test_a_rep_or_a_manager_cannot_define_a_field(session, clock):
    company = make_company(session)
    for user in (company.reps[0][0], company.managers[0]):
        with pytest.raises(Forbidden):
            define(session, Actor.of(user), clock)
    assert custom_fields.active_fields(session) == []


def test_the_boss_defines_a_field_that_is_active_at_once(session, clock):
    company = make_company(session)
    define(session, Actor.of(company.boss), clock)
    assert [f.key for f in custom_fields.active_fields(session)] == ["needs_install"]


def test_a_key_is_defined_once(session, clock):
    boss = Actor.of(make_company(session).boss)
    define(session, boss, clock)
    with pytest.raises(Conflict):
        define(session, boss, clock, label="另一个")


@pytest.mark.parametrize(
    ("overrides", "bad_field"),
    [
        ({"key": "Needs-Install"}, "key"),
        ({"kind": "enum", "options": []}, "options"),
        ({"kind": "text", "options": ["a"], "is_tag_dimension": False}, "options"),
        ({"kind": "text", "is_tag_dimension": True}, "is_tag_dimension"),
    ],
)
def test_a_malformed_definition_names_its_bad_part(session, clock, overrides, bad_field):
    boss = Actor.of(make_company(session).boss)
    with pytest.raises(Invalid) as caught:
        define(session, boss, clock, **overrides)
    assert caught.value.field == bad_field


def test_a_text_field_cannot_be_turned_into_a_tag_dimension_later(session, clock):
    boss = Actor.of(make_company(session).boss)
    note = define(
        session, boss, clock, key="note", label="备注", kind="text", is_tag_dimension=False
    )
    with pytest.raises(Invalid) as caught:
        custom_fields.change_field(
            session,
            actor=boss,
            field_id=note.id,
            changes={"is_tag_dimension": True},
            now=clock(),
        )
    assert caught.value.field == "is_tag_dimension"


def test_only_changes_to_what_counts_toward_completeness_start_a_rescore(session, clock):
    boss = Actor.of(make_company(session).boss)
    optional = define(session, boss, clock)
    assert after_commit.take(session) == set()
    define(session, boss, clock, key="floor", is_required=True)
    assert after_commit.take(session) == {(after_commit.COMPLETENESS,)}

    custom_fields.change_field(
        session, actor=boss, field_id=optional.id, changes={"label": "安装"}, now=clock()
    )
    assert after_commit.take(session) == set()
    for changes in ({"is_required": True}, {"is_active": False}):
        custom_fields.change_field(
            session, actor=boss, field_id=optional.id, changes=changes, now=clock()
        )
        assert after_commit.take(session) == {(after_commit.COMPLETENESS,)}
