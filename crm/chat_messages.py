"""WeCom's archived chat messages (会话内容存档) read into typed, pure values.

A decrypted archive message is WeCom's own JSON (https://developer.work.weixin.qq.com/document/path/91774):
`{"msgid", "action": "send"|"recall"|"switch", "from", "tolist", "roomid", "msgtime" (ms),
"msgtype", "<msgtype>": {...}}`. A switch (a member changing company) has `time` and `user`
instead; a recall is msgtype "revoke" with `revoke.pre_msgid`; a mixed message's items carry
their content as a JSON string inside the JSON. `header` checks what storing needs,
`parse` reads what capture needs; neither touches the database (crm/chat_capture.py does).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import PurePath
from typing import Any

MSGID_MAX_CHARS = 128
ID_MAX_CHARS = 64
MAX_TOLIST = 2000  # a WeCom group holds at most 2,000 people
# Whole milliseconds between 2000 and 2100: anything else is not a WeCom msgtime.
MSGTIME_RANGE_MS = (946_684_800_000, 4_102_444_800_000)
# What capture reads; every other msgtype (emotion, link, location, card, …) is skipped.
READABLE = frozenset({"text", "file", "image", "voice", "mixed"})


class Action(StrEnum):
    SEND = "send"
    RECALL = "recall"
    SWITCH = "switch"


class Malformed(ValueError):
    """Not an archive message: says what is wrong (short, English: it is logged and counted)."""


def is_external(party_id: str) -> bool:
    """External contacts (WeChat users, other companies' members) are wo…/wm… ids."""
    return party_id.startswith(("wo", "wm"))


def is_bot(party_id: str) -> bool:
    return party_id.startswith("wb")


def is_member(party_id: str) -> bool:
    """Our own company's members: any id that is neither external nor a bot."""
    return bool(party_id) and not is_external(party_id) and not is_bot(party_id)


@dataclass(frozen=True)
class ChatFile:
    filename: str
    size: int
    sdkfileid: str  # for fetching the bytes later (SDK sources); an export has none


@dataclass(frozen=True)
class ChatMessage:
    """What capture needs of one stored message."""

    msgid: str
    action: str
    msgtype: str
    sender: str
    tolist: tuple[str, ...]
    roomid: str  # "" for a one-to-one chat
    sent_at: datetime
    texts: tuple[str, ...] = ()  # what was said (text, mixed text items)
    files: tuple[ChatFile, ...] = ()
    images: int = 0
    voice: bool = False
    recalls: str | None = None  # a recall: the msgid it withdraws

    @property
    def participants(self) -> tuple[str, ...]:
        return (self.sender, *(p for p in self.tolist if p != self.sender))

    @property
    def is_readable(self) -> bool:
        return self.action == Action.SEND and self.msgtype in READABLE

    def line(self, voice: str = "") -> str:
        """The message as one line of a follow-up's snippet (without the speaker); `voice` is
        what a voice message reads as (capture knows its transcript)."""
        parts = list(self.texts)
        parts += [f"[文件] {file.filename}" for file in self.files]
        parts += ["[图片]"] * self.images
        if self.voice:
            parts.append(voice)
        return " ".join(part for part in parts if part)


def _id(value: Any, name: str, *, required: bool = True, limit: int = ID_MAX_CHARS) -> str:
    if value is None or value == "":
        if required:
            raise Malformed(f"no {name}")
        return ""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise Malformed(f"{name} is not a short text")
    return value


def _moment(value: Any, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{name} is not a number of milliseconds")
    if not MSGTIME_RANGE_MS[0] <= value < MSGTIME_RANGE_MS[1]:
        raise Malformed(f"{name} is out of range")
    return datetime.fromtimestamp(value / 1000, UTC)


def _has_nul(value: Any) -> bool:
    # PostgreSQL's JSONB refuses \u0000; no person types it.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def header(message: Any) -> dict[str, Any]:
    """The columns a stored message is filed under; raises Malformed."""
    if not isinstance(message, Mapping):
        raise Malformed("not a JSON object")
    if _has_nul(message):
        raise Malformed("holds a NUL character")
    msgid = _id(message.get("msgid"), "msgid", limit=MSGID_MAX_CHARS)
    try:
        action = Action(str(message.get("action") or ""))
    except ValueError:
        raise Malformed("action is not send, recall or switch") from None
    if action is Action.SWITCH:
        return {
            "msgid": msgid,
            "action": action.value,
            "msgtype": "switch",
            "sender": _id(message.get("user"), "user", required=False),
            "tolist": [],
            "roomid": None,
            "sent_at": _moment(message.get("time"), "time"),
            "recalls_msgid": None,
        }
    tolist = message.get("tolist") or []
    if not isinstance(tolist, list) or len(tolist) > MAX_TOLIST:
        raise Malformed("tolist is not a list")
    recalls = None
    if action is Action.RECALL:
        revoke = message.get("revoke")
        if not isinstance(revoke, Mapping):
            raise Malformed("a recall without revoke")
        recalls = _id(revoke.get("pre_msgid"), "revoke.pre_msgid", limit=MSGID_MAX_CHARS)
    return {
        "msgid": msgid,
        "action": action.value,
        "msgtype": _id(message.get("msgtype"), "msgtype", limit=32),
        "sender": _id(message.get("from"), "from"),
        "tolist": [_id(p, "tolist item") for p in tolist],
        "roomid": _id(message.get("roomid"), "roomid", required=False) or None,
        "sent_at": _moment(message.get("msgtime"), "msgtime"),
        "recalls_msgid": recalls,
    }


def parse(payload: Mapping[str, Any]) -> ChatMessage:
    """A stored payload read for capture (it passed `header` when stored)."""
    filed = header(payload)
    content = payload.get(filed["msgtype"])
    body = content if isinstance(content, Mapping) else {}
    texts: list[str] = []
    files: list[ChatFile] = []
    images = 0
    voice = False
    kind = filed["msgtype"]
    if kind == "text":
        texts.append(_text(body.get("content")))
    elif kind == "file":
        files.append(_file(body))
    elif kind == "image":
        images = 1
    elif kind == "voice":
        voice = True
    elif kind == "mixed":
        for item in body.get("item") or []:
            if not isinstance(item, Mapping):
                continue
            inner = _inner(item.get("content"))
            if item.get("type") == "text":
                texts.append(_text(inner.get("content")))
            elif item.get("type") == "image":
                images += 1
            elif item.get("type") == "file":
                files.append(_file(inner))
    return ChatMessage(
        msgid=filed["msgid"],
        action=filed["action"],
        msgtype=kind,
        sender=filed["sender"],
        tolist=tuple(filed["tolist"]),
        roomid=filed["roomid"] or "",
        sent_at=filed["sent_at"],
        texts=tuple(t for t in texts if t),
        files=tuple(files),
        images=images,
        voice=voice,
        recalls=filed["recalls_msgid"],
    )


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _inner(value: Any) -> Mapping[str, Any]:
    """A mixed item's content: a JSON string inside the JSON (or an object already)."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, Mapping) else {}
    return {}


def _file(body: Mapping[str, Any]) -> ChatFile:
    name = _text(body.get("filename"))
    ext = _text(body.get("fileext")).lstrip(".")
    if not name:
        name = f"未命名文件.{ext}" if ext else "未命名文件"
    elif ext and not PurePath(name).suffix:
        name = f"{name}.{ext}"
    size = body.get("filesize")
    return ChatFile(
        filename=name[:255],
        size=size if isinstance(size, int) and not isinstance(size, bool) else 0,
        sdkfileid=_text(body.get("sdkfileid")),
    )
