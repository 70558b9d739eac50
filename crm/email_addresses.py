"""Email address checks, so a customer's 邮箱 and a typed recipient are addresses SMTP accepts."""

from __future__ import annotations

import re
import unicodedata

from crm.errors import Invalid

MAX_ADDRESS_CHARS = 254  # RFC 5321's limit on a forward path, and the column's size
MAX_LOCAL_PART_CHARS = 64
# The dot-atom of RFC 5322 in ASCII: quoted local parts and SMTPUTF8 mailboxes are left out,
# since many servers refuse them and no customer of ours has one.
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def normalise_email(raw: str | None, *, field: str = "email") -> str | None:
    """The address with a lower-case (and, for 中文 domains, IDNA-encoded) domain; None when
    empty; Invalid naming `field` when it is not a mailbox address."""
    if raw is None:
        return None
    # NFKC turns a Chinese input method's full-width ＠ and letters into ASCII ones.
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    if not text:
        return None
    local, at, domain = text.rpartition("@")
    try:
        domain = domain.lower().encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    labels = domain.split(".")
    if (
        not at
        or len(local) > MAX_LOCAL_PART_CHARS
        or not _LOCAL_PART.match(local)
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
        or len(f"{local}@{domain}") > MAX_ADDRESS_CHARS
    ):
        raise Invalid(
            f"邮箱格式不正确：{text[:MAX_ADDRESS_CHARS]}", code="invalid_email", field=field
        )
    return f"{local}@{domain}"
