"""Generated WeCom chats: decrypted 会话内容存档 messages, in WeCom's own format, for the demo's
week of archive and the chat-capture benchmark.

Input: reps (WeCom userids) with their customers' external_userids, a start, a number of days
(or of messages) and a seed; the same input gives the same messages, msgids included. Output:
an `Archive`, its messages in time order as WeCom hands them out: conversations (bursts of a few
to ~20 messages between one rep and one customer, both ways, within minutes; some in a group
chat with a roomid, a colleague and the customer), text lines from `synthetic.chat_words`
(~15% with a capture keyword, some negated, some risk words, substring traps, the rest small
talk), a few quote conversations ("已发送正式报价单" and then a 报价单_….pdf file message), images,
voice, mixed messages (their items' content a JSON string inside the JSON), recalls of earlier
messages of the same conversation, and a few `switch` log entries.

A rep never has two conversations with the same customer on one day, and a conversation lasts
under 30 minutes, so each conversation is one capture window of the default length. The ground
truth (which texts are keywords, traps…, which conversations are quotes, what each recall
withdraws) rides along in the `Archive` for tests and benchmarks; the pipeline reads only the
messages. Field names follow WeCom's archive documentation
(https://developer.work.weixin.qq.com/document/path/91774).
"""

from __future__ import annotations

import base64
import bisect
import gc
import itertools
import json
import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from synthetic.chat_words import (
    BATHROOM_WARES,
    CUSTOMER,
    MIXED_CAPTIONS,
    OTHER_FILES,
    QUOTE_FILE_SUBJECTS,
    QUOTE_SENT,
    REP,
    RIVALS,
    SIZES,
    TILES,
    TITLES,
    WEEKDAYS,
    Line,
    LineKind,
)
from synthetic.rules import BUSINESS_TZ

# Chat hours, Beijing time: reps answer customers into the evening.
DAY_STARTS_MINUTE = 8 * 60 + 30
DAY_ENDS_MINUTE = 21 * 60 + 30
CONVERSATION_MAX_SECONDS = 25 * 60  # under the default 30-minute capture window
CONVERSATIONS_PER_REP_DAY = (2, 8)  # when the size is given in days
GROUP_CHAT_SHARE = 0.12
QUOTE_SHARE = 0.04  # of conversations with a customer who may be quoted
RECALL_CHANCE = 0.012  # per message its sender may still recall (within WeCom's 2 minutes)
SWITCH_CHANCE = 0.05  # per rep and day: a rep switching to another company's WeCom account
# What a message of a conversation is, by weight. Calibrated so that ~15% of all messages
# (recalls, quote files and switch entries included) are texts with a captured keyword.
MESSAGE_KINDS = (
    "small_talk",
    "keyword",
    "negated",
    "risk",
    "trap",
    "image",
    "voice",
    "file",
    "mixed",
)
MESSAGE_WEIGHTS = (59, 14.3, 3, 2.5, 4.5, 6, 4.5, 1.5, 3)
_KIND_BOUNDS = tuple(itertools.accumulate(MESSAGE_WEIGHTS))
TEXT_KINDS = frozenset(k.value for k in LineKind)


@dataclass
class Conversation:
    """One burst of messages between a rep and a customer (in a group chat: roomid set)."""

    rep: str
    external_userid: str
    roomid: str  # "" for a one-to-one chat
    members: tuple[str, ...]  # everyone in it, the rep first
    msgids: list[str] = field(default_factory=list)
    quote: tuple[str, str] | None = None  # (msgid of "已发送正式报价单", msgid of the PDF)

    @property
    def is_quote(self) -> bool:
        return self.quote is not None


@dataclass
class Archive:
    """Generated messages in time order, and what a correct capture makes of them."""

    messages: list[dict[str, Any]]
    conversations: list[Conversation]
    texts: dict[str, Line]  # msgid -> the labelled text of a text or mixed message
    recalls: dict[str, str]  # msgid of a recall -> msgid of the message it withdraws

    @property
    def quote_conversations(self) -> list[Conversation]:
        return [c for c in self.conversations if c.is_quote]

    def msgids_of(self, kind: LineKind) -> list[str]:
        """Messages whose text is of this kind (traps, keywords …), as generated."""
        return [m for m, line in self.texts.items() if line.kind is kind]

    @property
    def keyword_share(self) -> float:
        """Share of all messages that carry a captured keyword."""
        return len(self.msgids_of(LineKind.KEYWORD)) / len(self.messages)


def generate(
    reps: Mapping[str, Sequence[str]],
    *,
    start: datetime,
    days: int = 7,
    messages: int | None = None,
    seed: int = 11,
    quoting: Collection[str] | None = None,
) -> Archive:
    """Chats of `reps` (userid -> their customers' external_userids) over `days` days from
    `start`: a random number of conversations per rep and day, or, with `messages`, exactly
    that many messages spread over the days. Quote conversations are held only with customers
    in `quoting` (default: any)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    customers = {rep: list(externals) for rep, externals in reps.items() if externals}
    if not customers:
        raise ValueError("no rep has a customer to chat with")
    generator = _Generator(random.Random(seed), customers, start, days, quoting)
    # Only acyclic dicts and lists are made: the cyclic collector, which would walk every one
    # of them again and again, is paused meanwhile (a third of the time at 100k messages).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return generator.run(messages)
    finally:
        if was_enabled:
            gc.enable()


def write_jsonl(messages: Iterable[Mapping[str, Any]], path: Path) -> Path:
    """Write messages as an archive export: one JSON object a line, UTF-8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for message in messages:
            out.write(json.dumps(message, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
    return path


class _Generator:
    def __init__(
        self,
        rng: random.Random,
        customers: dict[str, list[str]],
        start: datetime,
        days: int,
        quoting: Collection[str] | None,
    ) -> None:
        self.rng = rng
        self.customers = customers
        self.reps = sorted(customers)
        self.start_ms = _ms(start)
        self.end_ms = _ms(start + timedelta(days=days))
        first = start.astimezone(BUSINESS_TZ).date()
        self.days = [first + timedelta(days=n) for n in range(days + 1)]
        self.quoting = None if quoting is None else frozenset(quoting)
        self.msgid_base = rng.randrange(10**18, 10**19)
        self.counter = 0
        # Messages with a sort key: msgtime, then generation order.
        self.keyed: list[tuple[int, int, dict[str, Any]]] = []
        self.conversations: list[Conversation] = []
        self.texts: dict[str, Line] = {}
        self.recalls: dict[str, str] = {}
        self.busy: set[tuple[str, str, int]] = set()  # (rep, customer, day) that had a chat

    # --- the plan: which conversations, when -------------------------------------------------

    def run(self, limit: int | None) -> Archive:
        rng = self.rng
        slots = [(rep, day) for day in range(len(self.days)) for rep in self.reps]
        if limit is None:
            for rep, day in slots:
                for _ in range(rng.randint(*CONVERSATIONS_PER_REP_DAY)):
                    self._conversation(rep, day, None)
                if rng.random() < SWITCH_CHANCE:
                    self._switch(rep, day)
        else:
            misses = 0
            while self.counter < limit:
                rep, day = rng.choice(slots)
                if not self._conversation(rep, day, limit):
                    misses += 1
                    if misses > 100 * len(slots):
                        raise ValueError(f"too few customers for {limit:,} messages")
                elif rng.random() < SWITCH_CHANCE / 6 and self.counter < limit:
                    self._switch(rep, day)
        self.keyed.sort(key=lambda k: (k[0], k[1]))
        return Archive(
            messages=[m for _, _, m in self.keyed],
            conversations=self.conversations,
            texts=self.texts,
            recalls=self.recalls,
        )

    def _start_ms(self, day: int, length_s: int) -> int | None:
        """A random moment of chat hours on that day, the conversation inside the period."""
        date = self.days[day]
        midnight = _ms(datetime(date.year, date.month, date.day, tzinfo=BUSINESS_TZ))
        low = max(midnight + DAY_STARTS_MINUTE * 60_000, self.start_ms)
        high = min(midnight + DAY_ENDS_MINUTE * 60_000, self.end_ms - length_s * 1000)
        if low >= high:
            return None
        return self.rng.randrange(low, high)

    def _conversation(self, rep: str, day: int, limit: int | None) -> bool:
        rng = self.rng
        customer = rng.choice(self.customers[rep])
        if (rep, customer, day) in self.busy:
            return False
        begins = self._start_ms(day, CONVERSATION_MAX_SECONDS)
        if begins is None:
            return False
        self.busy.add((rep, customer, day))
        if rng.random() < GROUP_CHAT_SHARE and len(self.reps) > 1:
            colleague = rng.choice([r for r in self.reps if r != rep])
            members: tuple[str, ...] = (rep, customer, colleague)
            roomid = "wr" + _token(rng, 22)
        else:
            members, roomid = (rep, customer), ""
        conversation = _Chat(self, Conversation(rep, customer, roomid, members), begins)
        may_quote = self.quoting is None or customer in self.quoting
        conversation.talk(quote=may_quote and rng.random() < QUOTE_SHARE, limit=limit)
        self.conversations.append(conversation.truth)
        return True

    def _switch(self, rep: str, day: int) -> None:
        at = self._start_ms(day, 0)
        if at is not None:
            # A log entry, not a message: no msgtime, no msgtype (WeCom's shape).
            self.add(
                at,
                {"msgid": self.new_msgid(at, False), "action": "switch", "time": at, "user": rep},
            )

    # --- messages ----------------------------------------------------------------------------

    def new_msgid(self, at_ms: int, external: bool) -> str:
        self.counter += 1
        # WeCom's msgids of chats with external contacts read like "<number>_<seconds>_external".
        suffix = "_external" if external else ""
        return f"{self.msgid_base + self.counter}_{at_ms // 1000}{suffix}"

    def add(self, at_ms: int, message: dict[str, Any]) -> None:
        self.keyed.append((at_ms, self.counter, message))


class _Chat:
    """One conversation being written, message after message."""

    def __init__(self, generator: _Generator, truth: Conversation, begins_ms: int) -> None:
        self.g = generator
        self.truth = truth
        self.at = begins_ms
        # New messages stop two minutes early: a recall or a quote's PDF may still follow.
        self.ends = begins_ms + (CONVERSATION_MAX_SECONDS - 120) * 1000
        self.said: set[str] = set()  # the templates used so far
        self.others = {m: [o for o in truth.members if o != m] for m in truth.members}
        rng = generator.rng
        product = rng.choice(TILES) if rng.random() < 0.6 else rng.choice(BATHROOM_WARES)
        self.words = {
            "title": rng.choice(TITLES),
            "product": product,
            "size": rng.choice(SIZES),
            "day": rng.choice(WEEKDAYS),
            "area": rng.randrange(60, 3000, 10),
            "qty": rng.randint(3, 80),
            "price": rng.randrange(25, 260, 5),
            "deposit": rng.choice(("0.5", "1", "2", "3", "5")),
            "rival": rng.choice(RIVALS),
        }

    def talk(self, *, quote: bool, limit: int | None) -> None:
        rng = self.g.rng
        length = max(3, min(20, round(rng.triangular(3, 21, 6))))
        quote_at = rng.randint(1, max(1, length - 2)) if quote else -1
        speaker = self.truth.rep if rng.random() < 0.6 else self.truth.external_userid
        for index in range(length):
            if limit is not None and self.g.counter >= limit:
                return
            if index:
                self.at += rng.randint(8_000, 100_000)  # seconds between messages, in ms
                if rng.random() > 0.35:
                    speaker = self._other(speaker)
            if self.at >= self.ends:
                return
            if index == quote_at:
                self._quote(limit)
                speaker = self.truth.rep
                continue
            # A weighted choice without rng.choices' per-call set-up: 100k messages in ~1 s.
            kind = MESSAGE_KINDS[bisect.bisect(_KIND_BOUNDS, rng.random() * _KIND_BOUNDS[-1])]
            msgid = self._message(speaker, kind)
            if msgid and rng.random() < RECALL_CHANCE and self._room_for(1, limit):
                self.at += rng.randint(3_000, 60_000)
                self._send(speaker, "revoke", {"pre_msgid": msgid}, action="recall")
                self.g.recalls[self.truth.msgids[-1]] = msgid

    def _room_for(self, count: int, limit: int | None) -> bool:
        return limit is None or self.g.counter + count <= limit

    def _other(self, speaker: str) -> str:
        truth = self.truth
        if speaker != truth.external_userid:
            return truth.external_userid
        # In a group the colleague speaks now and then.
        if truth.roomid and self.g.rng.random() < 0.3:
            return truth.members[2]
        return truth.rep

    def _message(self, speaker: str, kind: str) -> str | None:
        rng = self.g.rng
        is_rep = speaker != self.truth.external_userid
        if kind in TEXT_KINDS:
            said = REP if is_rep else CUSTOMER
            # Reps raise no risk words: their turn is small talk then.
            lines = said.get(LineKind(kind)) or said[LineKind.SMALL_TALK]
            line = rng.choice(lines)
            if line.text in self.said:  # once more: people rarely repeat themselves
                line = rng.choice(lines)
            return self._text(speaker, line)
        if kind == "image":
            return self._send(speaker, "image", self._media(rng.randint(40_000, 3_000_000)))
        if kind == "voice":
            seconds = rng.randint(2, 59)
            body = {
                "md5sum": _md5(rng),
                "voice_size": seconds * rng.randint(1_500, 2_100),
                "play_length": seconds,
                "sdkfileid": _sdkfileid(rng),
            }
            return self._send(speaker, "voice", body)
        if kind == "file":
            name, ext = rng.choice(OTHER_FILES)
            return self._send(speaker, "file", self._file(f"{name}.{ext}", ext))
        caption = rng.choice(MIXED_CAPTIONS)
        text = caption.text.format(**self.words)
        items = [
            {"type": "text", "content": json.dumps({"content": text}, ensure_ascii=False)},
            {"type": "image", "content": json.dumps(self._media(rng.randint(40_000, 3_000_000)))},
        ]
        msgid = self._send(speaker, "mixed", {"item": items})
        self.g.texts[msgid] = Line(text, caption.kind, caption.categories, caption.risks)
        return msgid

    def _quote(self, limit: int | None) -> None:
        """The rep sends the formal quote: the sentence, then the PDF a few seconds later."""
        if not self._room_for(2, limit):
            return
        rng = self.g.rng
        text_id = self._text(self.truth.rep, Line(QUOTE_SENT, LineKind.KEYWORD, ("报价",)))
        self.at += rng.randint(2_000, 15_000)
        subject = rng.choice(QUOTE_FILE_SUBJECTS)
        filename = f"报价单_{subject}_{_token(rng, 6)}.pdf"
        file_id = self._send(self.truth.rep, "file", self._file(filename, "pdf"))
        self.truth.quote = (text_id, file_id)

    def _text(self, speaker: str, line: Line) -> str:
        self.said.add(line.text)
        text = line.text.format(**self.words) if "{" in line.text else line.text
        msgid = self._send(speaker, "text", {"content": text})
        self.g.texts[msgid] = (
            line if text is line.text else Line(text, line.kind, line.categories, line.risks)
        )
        return msgid

    def _media(self, size: int) -> dict[str, Any]:
        rng = self.g.rng
        return {"md5sum": _md5(rng), "filesize": size, "sdkfileid": _sdkfileid(rng)}

    def _file(self, filename: str, ext: str) -> dict[str, Any]:
        rng = self.g.rng
        return {
            "filename": filename,
            "fileext": ext,
            "filesize": rng.randint(30_000, 6_000_000),
            "md5sum": _md5(rng),
            "sdkfileid": _sdkfileid(rng),
        }

    def _send(
        self, speaker: str, msgtype: str, body: dict[str, Any], *, action: str = "send"
    ) -> str:
        truth = self.truth
        msgid = self.g.new_msgid(self.at, True)
        message = {
            "msgid": msgid,
            "action": action,
            "from": speaker,
            "tolist": self.others[speaker].copy(),
            "roomid": truth.roomid,
            "msgtime": self.at,
            "msgtype": msgtype,
            msgtype: body,
        }
        self.g.add(self.at, message)
        truth.msgids.append(msgid)
        return msgid


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(_ALPHABET, k=length))


def _md5(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _sdkfileid(rng: random.Random) -> str:
    # Real ones are long base64 strings the SDK's GetMediaData takes back.
    return base64.b64encode(rng.randbytes(72)).decode()
