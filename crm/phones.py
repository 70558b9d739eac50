"""Phone normalisation, so 138-0013-8000, +86 13800138000 and 8613800138000 are one customer."""

from __future__ import annotations

import re
import unicodedata

from crm.errors import Invalid

# ASCII digits only: `\d` would also keep other scripts' digits, which no phone uses.
_NON_DIGITS = re.compile(r"[^0-9+]")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{9,11}$")


def normalise_phone(raw: str | None, *, field: str = "phone") -> str | None:
    """A mainland mobile as 11 digits or a landline with its area code; None when empty."""
    if raw is None:
        return None
    # NFKC turns the full-width digits of a Chinese input method (１３８…) into ASCII ones.
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    if text.endswith(".0"):  # Excel hands back numbers typed into a cell as floats
        text = text[:-2]
    if not text:
        return None
    digits = _NON_DIGITS.sub("", text)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if _MOBILE.match(digits) or _LANDLINE.match(digits):
        return digits
    raise Invalid(f"电话号码格式不正确：{text}", code="invalid_phone", field=field)
