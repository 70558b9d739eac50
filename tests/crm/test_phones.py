"""Phone normalisation: every way a mainland number is written becomes one key."""

import pytest

from crm.errors import Invalid
from crm.phones import normalise_phone


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+86 13800138000",
        "+8613800138000",
        "0086 138 0013 8000",
        "8613800138000",
        "138-0013-8000",
        " 138 0013 8000 ",
        "13800138000.0",  # what Excel hands back for a number typed into a cell
        13800138000,
        "１３８００１３８０００",  # full-width digits from a Chinese input method
        "+86-138-0013-8000",
    ],
)
def test_every_spelling_of_a_mobile_becomes_its_eleven_digits(raw):
    assert normalise_phone(raw) == "13800138000"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010-12345678", "01012345678"),
        ("0731-8888 8888", "073188888888"),
        ("(0755) 1234567", "07551234567"),
        ("0086 0731-88888888", "073188888888"),
    ],
)
def test_a_landline_keeps_its_area_code(raw, expected):
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_an_empty_phone_is_none(raw):
    assert normalise_phone(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "无",
        "12345",
        "1380013800",  # one digit short
        "138001380001",  # one digit long
        "12800138000",  # no mobile prefix starts 12
        "88888888",  # a landline without its area code
        "138-0013-8000 转 123",
        "+1 415 555 0100",
    ],
)
def test_anything_else_is_invalid_and_names_the_field(raw):
    with pytest.raises(Invalid) as caught:
        normalise_phone(raw, field="mobile")
    assert caught.value.code == "invalid_phone"
    assert caught.value.field == "mobile"
    assert "电话号码格式不正确" in caught.value.message


def test_the_field_defaults_to_phone():
    with pytest.raises(Invalid) as caught:
        normalise_phone("not a phone")
    assert caught.value.field == "phone"
