"""Text every store can keep: no control characters (PostgreSQL refuses NUL outright) and no
lone surrogates (they cannot be written as UTF-8)."""

from __future__ import annotations

import re

from crm.errors import Invalid

# C0 controls except tab, newline and carriage return.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
BAD_TEXT_MESSAGE = "包含不可见的控制字符或无效字符"


def is_storable(text: str) -> bool:
    """True when the text holds no control characters and encodes as UTF-8."""
    if CONTROL_CHARACTERS.search(text):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(text: str, *, field: str) -> str:
    """Return the text, or raise Invalid naming the field."""
    if not is_storable(text):
        raise Invalid(f"「{field}」{BAD_TEXT_MESSAGE}", code="bad_text", field=field)
    return text


def escape_like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern written with ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
