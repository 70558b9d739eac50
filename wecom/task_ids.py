"""Template card task ids: how a card's subject and its recipient become WeCom's task id, and
how the task id of a click becomes the subject again.

A card's subject is what a click decides, named by ids ({"order_id": 7, "step_id": 9}); the
copy for user 3 gets the task id "order-7-step-9-u3" (the ids in the order of their names).
WeCom wants a task id of letters, digits and "_-@", at most 128 bytes, never reused by the app
(a reuse answers 42014), so each recipient's copy carries their user id. A click comes back as
a template_card_event with the task id in TaskId:
https://developer.work.weixin.qq.com/document/path/90240
"""

from __future__ import annotations

import re
from collections.abc import Mapping

TASK_ID_MAX_BYTES = 128
_PART = r"([a-z]{1,16})-(\d{1,10})"
_TASK_ID = re.compile(rf"((?:{_PART}-)+)u(\d{{1,10}})")
_KEY = re.compile(r"[a-z]{1,16}_id")


def task_id(subject: Mapping[str, int], recipient_id: int) -> str:
    """The task id of `recipient_id`'s copy of a card about `subject`."""
    if not subject or not all(_KEY.fullmatch(k) and 0 <= v < 2**31 for k, v in subject.items()):
        raise ValueError(f"a card subject names ids: {dict(subject)!r}")
    # By name: the stored subject keeps no order (PostgreSQL's JSONB sorts keys its own way),
    # and a resend must make the very same task id.
    parts = [f"{key.removesuffix('_id')}-{value}" for key, value in sorted(subject.items())]
    value = "-".join([*parts, f"u{recipient_id}"])
    if len(value.encode()) > TASK_ID_MAX_BYTES:
        raise ValueError(f"task id {value!r} is longer than WeCom accepts")
    return value


def subject_of(task_id: str) -> dict[str, int] | None:
    """The subject a card's task id names, or None when the task id is not one of ours."""
    matched = _TASK_ID.fullmatch(task_id)
    if matched is None:
        return None
    pairs = re.findall(_PART, matched.group(1))
    return {f"{key}_id": int(value) for key, value in pairs}
