"""Text that some store would refuse is stopped at the door with a clear error."""

from __future__ import annotations

import pytest

from crm.errors import Invalid
from crm.text import check_text, is_storable


@pytest.mark.parametrize("good", ["恒达装饰", "第一行\n第二行\t缩进", "emoji 😀"])
def test_ordinary_text_is_storable(good):
    assert is_storable(good)
    assert check_text(good, field="name") == good


@pytest.mark.parametrize("bad", ["a\x00b", "\x17bell", "lone \ud800 surrogate", "del\x7f"])
def test_control_characters_and_lone_surrogates_are_refused_naming_the_field(bad):
    assert not is_storable(bad)
    with pytest.raises(Invalid) as raised:
        check_text(bad, field="company")
    assert raised.value.field == "company" and raised.value.code == "bad_text"
