"""Chat capture: archived WeCom messages become the customer's follow-up records by themselves.

An archive source (the Finance SDK puller, an export file) hands decrypted messages to
`store_messages`, which keeps each msgid once. `capture` (run by workers/capture.py) then works
through the stored messages in time order, in bounded batches, each flushed for the caller to
commit: it maps each message to one customer and one rep, groups a conversation's messages
into windows, and turns a settled window with a keyword hit (crm/keywords.py) into ONE
follow-up (method 企微会话, source chat) through `crm.followups.add_follow_up`, so the same
triggers run as for a typed follow-up. Every message ends in one status (models/chat.py), never
an error.

Decisions (the README's 会话存档 section says the same to users):
- A window is one rep's conversation with one customer (one chat, or one group) whose messages
  are at most `window` apart (30 minutes by default); it closes when its last message is older
  than that, or when a later message of the same conversation starts a new one.
- A closed window takes no more messages; it settles (its follow-up or contact is written)
  when it closes, or, when one of its voice messages is still being transcribed, in the first
  capture run after the last of them is done or failed (finishing one starts that run).
- A closed window without a keyword hit writes no follow-up, but when the rep wrote in it, it
  is contact: the customer's `last_follow_up_at` moves forward to its last message (never
  back), so the no-follow-up timers (reminders, the 30-day pool release) do not fire on a
  customer the rep is talking to. "还没报价" is a negated hit: not captured.
- Files are listed by name in the snippet and count as attachments for the triggers (a PDF
  file message is a PDF attachment); the SDK puller (workers/archive.py) fetches their bytes
  before storing, and those become the follow-up's attachments; an export file has none.
- A voice message whose bytes were fetched becomes a Recording when it is filed into its
  window (crm/recordings.py: transcribed, retried and settled like an uploaded recording).
  Its transcript counts as what was said: the keyword match reads it, its snippet line is
  "[语音] <transcript>" ("[语音]（未能转写）" when it failed, "[语音]（无内容）" when silent), so
  "已发送正式报价单" said in a voice message is captured exactly as typed. The follow-up takes
  the voice file as an attachment with its recording linked to it, and the window's
  transcripts as its transcript. A voice message without bytes (an export file) reads
  "[语音]（无音频）" and holds nothing up. Image and mixed messages are read; other types and
  switch entries are skipped and counted.
- Group chats map through their external members: the customers whose external_userid is in
  the room and whose owner is in the room too. With several, the whole room's conversation is
  kept under the earliest-created of them (lowest id), so one group makes one follow-up, not
  one per customer. A group without such a customer, a chat between members only, or one whose
  member is not an active user is skipped with its reason.
- An external contact not yet known, in a one-to-one chat, becomes a customer of the member
  through the bot's contact path (`crm.contacts.on_change` with ADD); the job asks WeCom for
  the profile before the transaction. In a group, an unknown contact is not created.
- A recall withdraws the recalled message: it is marked recalled and left out of its window
  (a recalled voice message's recording may still finish; it holds and changes nothing).
  If the window's follow-up is written already, its snippet and keywords are written again
  without it; when no keyword remains, the follow-up is marked withdrawn (`withdrawn_at`) and
  the manager is told. What the follow-up's triggers did (a stage move, a task) stays: they are
  audited events of their own, and the manager decides whether to move the stage back.
- Consent (check_single_agree): a pair (member, external contact) that WeCom says disagrees is
  skipped (reason consent). When the archive secret is not configured (an export-only
  company), a pair with no answer counts as agreed: the archive only holds messages of members
  the company enabled for archiving.
- Risk words in the customer's messages notify the rep's manager once per window, with the
  snippet. The customer's newest message time is kept (`last_customer_message_at`) for the
  rule fact days_since_customer_message and the timer clock customer_message.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crm import after_commit, chat_messages, contacts, followups, keywords, recordings
from crm.actors import Actor
from crm.chat_messages import Action, ChatMessage, Malformed
from crm.errors import Forbidden, Invalid
from crm.notifications import notify
from crm.rules.actions import managers_of
from crm.vocab import ContactMethod, FollowUpSource
from models import (
    ArchiveConsent,
    ArchiveCursor,
    ArchiveMessage,
    ChatWindow,
    Customer,
    FollowUp,
    Recording,
    User,
)
from models.chat import ArchiveOrigin, ArchiveStatus
from models.recordings import RecordingStatus
from models.users import Role

WINDOW = timedelta(minutes=30)
MAX_EXPORT_BYTES = 20 * 1024 * 1024  # an uploaded export file
STORE_BATCH = 500  # rows per INSERT … ON CONFLICT DO NOTHING
CAPTURE_BATCH = 500  # messages per capture call (one transaction of the job)
SUMMARY_MAX_CHARS = 1000
LINE_MAX_CHARS = 200
MAX_REJECTIONS_KEPT = 20  # rejected lines named in a StoreResult; the rest are counted
CONSENT_RECHECK = timedelta(days=1)  # an answer older than this is asked again
SDK_CURSOR = "sdk"
LAST_ERROR_MAX_CHARS = 255  # ArchiveCursor.last_error
PULL_STALE_AFTER = timedelta(minutes=15)  # three missed periodic pulls
CAPTURE_LOCK = "capture"  # the cursor row every capture run locks first
CUSTOMER_SPEAKER = "客户"
COLLEAGUE_SPEAKER = "同事"
RISK_TITLE = "客户会话风险提醒：{customer}"
RISK_TEXT = "「{customer}」在企业微信会话中提到：{risks}\n{snippet}"
WITHDRAWN_TITLE = "会话跟进已撤销：{customer}"
WITHDRAWN_TEXT = (
    "{rep} 与「{customer}」的会话中有消息被撤回，由这段会话生成的跟进已标记为撤销。"
    "它引起的阶段变化和待办没有自动回退，请核实。"
)
# How a voice message reads in a snippet.
VOICE_SAID = "[语音] {transcript}"
VOICE_SILENT = "[语音]（无内容）"  # transcribed, nothing was said
VOICE_FAILED = "[语音]（未能转写）"
VOICE_NO_AUDIO = "[语音]（无音频）"  # its bytes were not fetched (an export file)


class SkipReason(StrEnum):
    SWITCH = "switch"  # a member's company-switch log entry
    UNREAD_TYPE = "unread_type"  # emotion, link, location, card, … : not read
    INTERNAL = "internal"  # members only, no external contact
    UNKNOWN_MEMBER = "unknown_member"  # the member is not an active user of ours
    NO_CUSTOMER = "no_customer"  # a group with none of our customers (with their rep)
    CONSENT = "consent"  # the member and the contact have not agreed to archiving


@dataclass(frozen=True)
class Unreadable:
    """A line of an export file that is not JSON (read_export yields it in its place)."""

    line: int
    reason: str


@dataclass
class StoreResult:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), the first


@dataclass
class CaptureResult:
    captured: int = 0  # messages put into a window
    skipped: Counter[str] = field(default_factory=Counter)  # per SkipReason
    recalled: int = 0
    windows_closed: int = 0
    follow_ups: int = 0
    withdrawn: int = 0  # follow-ups withdrawn by a recall
    contacts_created: int = 0
    more: bool = False  # the batch was full: call again

    def as_dict(self) -> dict[str, int]:
        counts = {
            "captured": self.captured,
            "recalled": self.recalled,
            "windows_closed": self.windows_closed,
            "follow_ups": self.follow_ups,
            "withdrawn": self.withdrawn,
            "contacts_created": self.contacts_created,
        }
        counts.update({f"skipped_{reason}": n for reason, n in self.skipped.items()})
        return counts


@dataclass(frozen=True)
class ConsentAnswer:
    userid: str
    external_userid: str
    agreed: bool


@dataclass(frozen=True)
class WeComNeeds:
    """What the next capture batch needs from WeCom, asked before its transaction."""

    consent_pairs: list[tuple[str, str]]  # (member userid, external_userid) with no fresh answer
    contacts: list[tuple[str, str]]  # (external_userid, member userid) not yet customers


# --- storing ------------------------------------------------------------------------------------


def read_export(lines: Iterable[str | bytes]) -> Iterator[Any]:
    """An export file's messages, one JSON object per line (blank lines skipped); a line that
    is not JSON is yielded as Unreadable. Reads lazily: the file is streamed."""
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            yield Unreadable(number, "not UTF-8")
            continue
        if not text.strip():
            continue
        try:
            yield _Numbered(number, json.loads(text))
        except ValueError:
            yield Unreadable(number, "not JSON")


@dataclass(frozen=True)
class _Numbered:
    line: int
    message: Any


def store_messages(
    session: Session,
    messages: Iterable[Any],
    *,
    origin: str,
    now: datetime,
    media: Mapping[str, followups.StoredFile] | None = None,
) -> StoreResult:
    """Store each message once (by msgid); malformed ones are counted as rejected with their
    reason, never raised. `media` holds the bytes a puller fetched for file and voice messages,
    by msgid, already in the FileStore. Starts the capture job after the commit when something
    was stored."""
    media = media or {}
    result = StoreResult()
    chunk: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(messages, start=1):
        line, message = (item.line, item.message) if isinstance(item, _Numbered) else (index, item)
        if isinstance(item, Unreadable):
            _reject(result, item.line, item.reason)
            continue
        try:
            row = chat_messages.header(message)
        except Malformed as error:
            _reject(result, line, str(error))
            continue
        if row["msgid"] in chunk:
            result.duplicates += 1
            continue
        chunk[row["msgid"]] = {
            **row,
            "origin": origin,
            "payload": dict(message),
            "status": ArchiveStatus.PENDING.value,
            "media": asdict(media[row["msgid"]]) if row["msgid"] in media else None,
            "created_at": now,
        }
        if len(chunk) >= STORE_BATCH:
            _insert(session, list(chunk.values()), result)
            chunk = {}
    if chunk:
        _insert(session, list(chunk.values()), result)
    if result.stored:
        after_commit.start(session, after_commit.CAPTURE)
    return result


def _reject(result: StoreResult, line: int, reason: str) -> None:
    result.rejected += 1
    if len(result.rejections) < MAX_REJECTIONS_KEPT:
        result.rejections.append((line, reason))


def _insert(session: Session, rows: list[dict[str, Any]], result: StoreResult) -> None:
    # The Core table with the rows as executemany parameters: one cached statement that the
    # driver batches, not a 500-row VALUES list compiled anew for every chunk.
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(ArchiveMessage.__table__)
        .on_conflict_do_nothing(index_elements=["msgid"])
        .returning(ArchiveMessage.__table__.c.msgid)
    )
    stored = len(session.execute(statement, rows).all())
    result.stored += stored
    result.duplicates += len(rows) - stored


def import_export(session: Session, *, actor: Actor, data: bytes, now: datetime) -> StoreResult:
    """Store an uploaded export file (JSON lines) for capture: the boss's, up to
    MAX_EXPORT_BYTES (the command line `wecrm import-archive` streams files of any size)."""
    if actor.role is not Role.BOSS:
        raise Forbidden("只有老板可以导入会话存档")
    if not data:
        raise Invalid("会话存档文件是空的", code="empty_archive", field="file")
    if len(data) > MAX_EXPORT_BYTES:
        raise Invalid(
            f"会话存档文件超过 {MAX_EXPORT_BYTES // (1024 * 1024)} MB，"
            "请分成几个文件上传，或在服务器上用 wecrm import-archive 导入",
            code="archive_too_large",
            field="file",
        )
    return store_messages(
        session, read_export(io.BytesIO(data)), origin=ArchiveOrigin.FILE, now=now
    )


# --- the SDK puller's cursor -----------------------------------------------------------------


def cursor(session: Session, name: str = SDK_CURSOR) -> ArchiveCursor:
    """The named cursor, created at seq 0 the first time, locked for this transaction."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(ArchiveCursor)
        .values(name=name, seq=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    row = session.get(ArchiveCursor, name, with_for_update=True, populate_existing=True)
    assert row is not None  # inserted just above, or already there
    return row


def referenced_storage_keys(session: Session) -> set[str]:
    """The stored files that archived messages hold (fetched file and voice bytes)."""
    return {
        media["storage_key"]
        for media in session.scalars(
            select(ArchiveMessage.media).where(ArchiveMessage.msgtype.in_(("file", "voice")))
        )
        if media
    }


def puller_health(session: Session, now: datetime) -> dict[str, Any]:
    """How the archive puller is doing, for /healthz: "ok", "failing" (its last pull failed,
    with the reason) or "stale" (no good pull for PULL_STALE_AFTER). WeCom keeps records only a
    few days, so a stopped puller must show long before they are gone."""
    state = cursor_state(session)
    last = state.last_pull_at if state is not None else None
    health: dict[str, Any] = {"last_pull_at": last.isoformat() if last else None}
    if state is not None and state.last_error:
        return {"status": "failing", "error": state.last_error, **health}
    if last is None or now - last > PULL_STALE_AFTER:
        return {"status": "stale", **health}
    return {"status": "ok", **health}


def cursor_state(session: Session, name: str = SDK_CURSOR) -> ArchiveCursor | None:
    """The named cursor as last committed, without creating or locking it (for /healthz)."""
    return session.get(ArchiveCursor, name)


def record_pull_failure(
    session: Session, reason: str, now: datetime, name: str = SDK_CURSOR
) -> None:
    """A pull that failed: the reason stays on the cursor until a pull succeeds."""
    cursor(session, name).last_error = reason[:LAST_ERROR_MAX_CHARS]


@dataclass(frozen=True)
class Encrypted:
    """A pulled record that could not be decrypted yet (its key version is missing)."""

    msgid: str
    record: Mapping[str, Any]  # the encrypted record as GetChatData gave it
    error: str


def store_undecryptable(session: Session, records: Iterable[Encrypted], *, now: datetime) -> int:
    """Keep records that could not be decrypted, once each, for a later pull to try again."""
    rows = [
        {
            "msgid": record.msgid,
            "origin": ArchiveOrigin.SDK.value,
            "action": Action.SEND.value,
            "msgtype": "encrypted",
            "sender": "",
            "tolist": [],
            "sent_at": now,
            "payload": {"record": dict(record.record), "error": record.error},
            "status": ArchiveStatus.UNDECRYPTABLE.value,
            "created_at": now,
        }
        for record in records
    ]
    result = StoreResult()
    if rows:
        _insert(session, rows, result)
    return result.stored


def undecryptable(session: Session, limit: int) -> list[tuple[int, Mapping[str, Any]]]:
    """(row id, encrypted record) of messages still waiting for their key, oldest first."""
    rows = session.execute(
        select(ArchiveMessage.id, ArchiveMessage.payload)
        .where(ArchiveMessage.status == ArchiveStatus.UNDECRYPTABLE)
        .order_by(ArchiveMessage.id)
        .limit(limit)
    )
    return [(row.id, row.payload["record"]) for row in rows]


def decrypted_later(session: Session, row_id: int, message: Mapping[str, Any]) -> bool:
    """File a message decrypted on a later pull like a fresh one (pending capture); False when
    it turns out malformed (it stays undecryptable, with the reason)."""
    row = session.get(ArchiveMessage, row_id, with_for_update=True)
    if row is None or row.status != ArchiveStatus.UNDECRYPTABLE:
        return False
    try:
        columns = chat_messages.header(message)
    except Malformed as error:
        row.payload = {**row.payload, "error": str(error)}
        return False
    if columns["msgid"] != row.msgid:
        row.payload = {**row.payload, "error": "msgid differs from the record's"}
        return False
    for name, value in columns.items():
        setattr(row, name, value)
    row.payload = dict(message)
    row.status = ArchiveStatus.PENDING
    after_commit.start(session, after_commit.CAPTURE)
    return True


def advance_cursor(session: Session, seq: int, now: datetime, name: str = SDK_CURSOR) -> None:
    """Record a pull whose records are in this transaction: the cursor moves forward only."""
    row = cursor(session, name)
    row.seq = max(row.seq, seq)
    row.last_pull_at = now
    row.last_error = None


# --- routing a message to a customer and a rep ----------------------------------------------


class _Directory:
    """Members and customers looked up once per batch."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._members: dict[str, User | None] = {}
        self._customers: dict[str, Customer | None] = {}
        self._users_by_id: dict[int, User | None] = {}

    def member(self, userid: str) -> User | None:
        if userid not in self._members:
            user = self.session.scalar(select(User).where(User.wecom_userid == userid))
            self._members[userid] = user if user is not None and user.is_active else None
        return self._members[userid]

    def user(self, user_id: int) -> User | None:
        if user_id not in self._users_by_id:
            self._users_by_id[user_id] = self.session.get(User, user_id)
        return self._users_by_id[user_id]

    def customer(self, external_userid: str) -> Customer | None:
        if external_userid not in self._customers:
            self._customers[external_userid] = self.session.scalar(
                select(Customer).where(Customer.external_userid == external_userid)
            )
        return self._customers[external_userid]

    def preload(self, messages: Iterable[ChatMessage]) -> None:
        """Look up, in two statements, every member and customer a batch's messages name."""
        parties = {p for m in messages for p in m.participants if p}
        wanted_members = [
            p for p in parties if p not in self._members and chat_messages.is_member(p)
        ]
        wanted_customers = [
            p for p in parties if p not in self._customers and chat_messages.is_external(p)
        ]
        if wanted_members:
            found = {
                user.wecom_userid: user
                for user in self.session.scalars(
                    select(User).where(User.wecom_userid.in_(wanted_members))
                )
            }
            for userid in wanted_members:
                user = found.get(userid)
                self._members[userid] = user if user is not None and user.is_active else None
        if wanted_customers:
            known = {
                customer.external_userid: customer
                for customer in self.session.scalars(
                    select(Customer).where(Customer.external_userid.in_(wanted_customers))
                )
            }
            for external in wanted_customers:
                self._customers[external] = known.get(external)
        owners = {c.owner_id for c in self._customers.values() if c and c.owner_id}
        missing = [i for i in owners if i not in self._users_by_id]
        if missing:
            for user in self.session.scalars(select(User).where(User.id.in_(missing))):
                self._users_by_id[user.id] = user

    def remember(self, customer: Customer) -> None:
        assert customer.external_userid is not None
        self._customers[customer.external_userid] = customer


@dataclass(frozen=True)
class _Route:
    skip: SkipReason | None = None
    external_userid: str = ""
    rep: User | None = None
    is_new_contact: bool = False  # a one-to-one chat with a contact not yet a customer


def _route(directory: _Directory, message: ChatMessage) -> _Route:
    """The one customer (by external_userid) and rep a readable message belongs to, or why
    none."""
    parties = [p for p in message.participants if p and not chat_messages.is_bot(p)]
    externals = list(dict.fromkeys(p for p in parties if chat_messages.is_external(p)))
    members = list(dict.fromkeys(p for p in parties if chat_messages.is_member(p)))
    if not externals:
        return _Route(SkipReason.INTERNAL)
    if not message.roomid:
        if len(members) != 1:
            return _Route(SkipReason.UNKNOWN_MEMBER)
        rep = directory.member(members[0])
        if rep is None:
            return _Route(SkipReason.UNKNOWN_MEMBER)
        known = directory.customer(externals[0]) is not None
        return _Route(external_userid=externals[0], rep=rep, is_new_contact=not known)
    in_room = set(members)
    mapped: list[tuple[Customer, User]] = []
    for external in externals:
        customer = directory.customer(external)
        owner = directory.user(customer.owner_id) if customer and customer.owner_id else None
        if customer and owner and owner.is_active and owner.wecom_userid in in_room:
            mapped.append((customer, owner))
    if not mapped:
        return _Route(SkipReason.NO_CUSTOMER)
    customer, owner = min(mapped, key=lambda pair: pair[0].id)
    assert customer.external_userid is not None
    return _Route(external_userid=customer.external_userid, rep=owner)


def _pending(session: Session, limit: int) -> list[ArchiveMessage]:
    return list(
        session.scalars(
            select(ArchiveMessage)
            .where(ArchiveMessage.status == ArchiveStatus.PENDING)
            .order_by(ArchiveMessage.sent_at, ArchiveMessage.id)
            .limit(limit)
        )
    )


def needs_from_wecom(session: Session, *, now: datetime, limit: int = CAPTURE_BATCH) -> WeComNeeds:
    """The consent answers and contact profiles the next `capture(limit=limit)` will want:
    pairs with no answer younger than CONSENT_RECHECK, contacts not yet customers."""
    directory = _Directory(session)
    pairs: dict[tuple[str, str], None] = {}
    unknown: dict[str, str] = {}
    for row in _pending(session, limit):
        if row.action != Action.SEND or row.msgtype not in chat_messages.READABLE:
            continue
        route = _route(directory, chat_messages.parse(row.payload))
        if route.skip is not None or route.rep is None:
            continue
        pairs[(route.rep.wecom_userid, route.external_userid)] = None
        if route.is_new_contact:
            unknown.setdefault(route.external_userid, route.rep.wecom_userid)
    fresh = set()
    if pairs:
        fresh = {
            (c.userid, c.external_userid)
            for c in session.scalars(
                select(ArchiveConsent).where(
                    tuple_(ArchiveConsent.userid, ArchiveConsent.external_userid).in_(list(pairs)),
                    ArchiveConsent.checked_at > now - CONSENT_RECHECK,
                )
            )
        }
    return WeComNeeds(
        consent_pairs=[pair for pair in pairs if pair not in fresh],
        contacts=list(unknown.items()),
    )


def record_consent(session: Session, answers: Iterable[ConsentAnswer], *, now: datetime) -> None:
    """Keep WeCom's check_single_agree answers (the newest answer for a pair wins)."""
    wanted = {(a.userid, a.external_userid): a.agreed for a in answers}
    if not wanted:
        return
    known = {
        (c.userid, c.external_userid): c
        for c in session.scalars(
            select(ArchiveConsent)
            .where(tuple_(ArchiveConsent.userid, ArchiveConsent.external_userid).in_(list(wanted)))
            .with_for_update()
        )
    }
    for (userid, external_userid), agreed in wanted.items():
        row = known.get((userid, external_userid))
        if row is None:
            session.add(
                ArchiveConsent(
                    userid=userid, external_userid=external_userid, agreed=agreed, checked_at=now
                )
            )
        else:
            row.agreed, row.checked_at = agreed, now
    session.flush()


def _consents(session: Session, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], bool]:
    wanted = list(dict.fromkeys(pairs))
    if not wanted:
        return {}
    return {
        (c.userid, c.external_userid): c.agreed
        for c in session.scalars(
            select(ArchiveConsent).where(
                tuple_(ArchiveConsent.userid, ArchiveConsent.external_userid).in_(wanted)
            )
        )
    }


# --- capture --------------------------------------------------------------------------------


def capture(
    session: Session,
    *,
    now: datetime,
    window: timedelta = WINDOW,
    limit: int = CAPTURE_BATCH,
    consents: Iterable[ConsentAnswer] = (),
    contact_profiles: Mapping[str, contacts.ContactInfo] | None = None,
    assume_consent: bool = True,
) -> CaptureResult:
    """Capture up to `limit` pending messages in time order, close the windows no pending
    message can still join, and settle up to `limit` closed windows whose voice messages are
    all transcribed (or failed) by now; flushes, the caller commits.

    `consents` and `contact_profiles` are WeCom's answers for `needs_from_wecom`, asked before
    the transaction; `assume_consent` says what a pair with no answer counts as."""
    cursor(session, CAPTURE_LOCK)  # one capture at a time: the windows are built in order
    record_consent(session, consents, now=now)
    profiles = contact_profiles or {}
    run = _Run(session, now, window, CaptureResult())
    rows = _pending(session, limit)
    recalled_already = set(
        session.scalars(
            select(ArchiveMessage.recalls_msgid).where(
                ArchiveMessage.recalls_msgid.in_([row.msgid for row in rows])
            )
        )
    )
    routes: list[tuple[ArchiveMessage, ChatMessage, _Route]] = []
    parsed = [(row, chat_messages.parse(row.payload)) for row in rows]
    run.directory.preload(message for _, message in parsed)
    for row, message in parsed:
        if message.action == Action.SWITCH:
            run.skip(row, SkipReason.SWITCH)
        elif message.action == Action.RECALL:
            row.status = ArchiveStatus.APPLIED
            if message.recalls:
                run.withdraw(message.recalls)
        elif row.msgid in recalled_already:
            row.status = ArchiveStatus.RECALLED  # its recall was stored before it
            run.result.recalled += 1
        elif not message.is_readable:
            run.skip(row, SkipReason.UNREAD_TYPE)
        else:
            route = _route(run.directory, message)
            if route.skip is not None:
                run.skip(row, route.skip)
            else:
                routes.append((row, message, route))
    agreed = _consents(
        session, ((r.rep.wecom_userid, r.external_userid) for _, _, r in routes if r.rep)
    )
    run.load_open_windows(route.external_userid for _, _, route in routes)
    # Filing changes many rows; flushing them before each look-up would cost a round trip per
    # message, so the batch's writes go out together (and the new windows get their ids) below.
    with session.no_autoflush:
        for row, message, route in routes:
            assert route.rep is not None
            answer = agreed.get((route.rep.wecom_userid, route.external_userid))
            if answer is False or (answer is None and not assume_consent):
                run.skip(row, SkipReason.CONSENT)
                continue
            if row.status != ArchiveStatus.PENDING:
                continue  # recalled by a recall earlier in this batch
            run.file(row, message, route, profiles)
    run.link_windows()
    recordings.queue_archived(session, messages=run.voices, now=now)
    cutoff = now - window
    next_pending = session.scalar(
        select(func.min(ArchiveMessage.sent_at)).where(
            ArchiveMessage.status == ArchiveStatus.PENDING
        )
    )
    if next_pending is not None:
        cutoff = min(cutoff, next_pending - window)  # it may still join a window before it
    stale = session.scalars(
        select(ChatWindow)
        .where(ChatWindow.closed_at.is_(None), ChatWindow.last_at < cutoff)
        .order_by(ChatWindow.last_at, ChatWindow.id)
        .limit(limit)
    ).all()
    run.close_all([*run.superseded, *stale])
    transcribing = (
        select(ArchiveMessage.id)
        .join(Recording, Recording.archive_message_id == ArchiveMessage.id)
        .where(
            ArchiveMessage.window_id == ChatWindow.id,
            ArchiveMessage.status == ArchiveStatus.CAPTURED,
            Recording.status.not_in(recordings.SETTLED),
        )
    )
    ready = session.scalars(
        select(ChatWindow)
        .where(
            ChatWindow.settled_at.is_(None),
            ChatWindow.closed_at.is_not(None),
            ~transcribing.exists(),
        )
        .order_by(ChatWindow.closed_at, ChatWindow.id)
        .limit(limit)
    ).all()
    run.settle_all(ready)
    session.flush()
    run.result.more = len(rows) == limit or len(stale) == limit or len(ready) == limit
    return run.result


_Captured = tuple[ArchiveMessage, Recording | None]  # a captured message and its recording


class _Run:
    """One capture call: the batch's caches and counts."""

    def __init__(
        self, session: Session, now: datetime, window: timedelta, result: CaptureResult
    ) -> None:
        self.session = session
        self.now = now
        self.window = window
        self.result = result
        self.directory = _Directory(session)
        self.open: dict[tuple[int, int, str], ChatWindow | None] = {}
        self.filed: list[tuple[ArchiveMessage, ChatWindow]] = []  # linked once windows have ids
        self.superseded: list[ChatWindow] = []  # closed by a later message of the conversation
        self.voices: list[ArchiveMessage] = []  # filed voice messages, to transcribe
        self.dictionaries: dict[int | None, keywords.Dictionary] = {}

    def load_open_windows(self, externals: Iterable[str]) -> None:
        """The open windows of the batch's customers, in one statement."""
        ids = {c.id for e in externals if (c := self.directory.customer(e)) is not None}
        for found in self.session.scalars(
            select(ChatWindow).where(
                ChatWindow.customer_id.in_(ids), ChatWindow.closed_at.is_(None)
            )
        ):
            self.open[(found.customer_id, found.user_id, found.roomid)] = found

    def link_windows(self) -> None:
        """Give the filed messages their windows' ids (the new windows get theirs here)."""
        self.session.flush()
        for row, filed_in in self.filed:
            row.window_id = filed_in.id
        self.filed = []

    def dictionary(self, team_id: int | None) -> keywords.Dictionary:
        if team_id not in self.dictionaries:
            self.dictionaries[team_id] = keywords.dictionary_for(self.session, team_id)
        return self.dictionaries[team_id]

    def skip(self, row: ArchiveMessage, reason: SkipReason) -> None:
        row.status = ArchiveStatus.SKIPPED
        row.skip_reason = reason.value
        self.result.skipped[reason.value] += 1

    def file(
        self,
        row: ArchiveMessage,
        message: ChatMessage,
        route: _Route,
        profiles: Mapping[str, contacts.ContactInfo],
    ) -> None:
        """Put a routed message into its conversation's open window."""
        rep = route.rep
        assert rep is not None
        customer = self.directory.customer(route.external_userid)
        if customer is None:
            outcome = contacts.on_change(
                self.session,
                rep=rep,
                change_type=contacts.ChangeType.ADD,
                external_userid=route.external_userid,
                now=self.now,
                lookup=lambda ext: profiles.get(ext) or contacts.ContactInfo(name=""),
            )
            assert outcome is not None  # ADD always makes or finds the customer
            customer = outcome.customer
            self.directory.remember(customer)
            self.result.contacts_created += outcome.created
        key = (customer.id, rep.id, message.roomid)
        current = self.open.get(key)
        if current is not None and message.sent_at > current.last_at + self.window:
            # Superseded: the conversation went quiet, then started again.
            current.closed_at = self.now
            self.superseded.append(current)
            current = None
        if current is None:
            current = ChatWindow(
                customer_id=customer.id,
                user_id=rep.id,
                roomid=message.roomid,
                first_at=message.sent_at,
                last_at=message.sent_at,
                message_count=0,
                rep_wrote=False,
                categories=[],
                keywords=[],
                risks=[],
                withdrawn=False,
                created_at=self.now,
            )
            self.session.add(current)
            self.open[key] = current
        current.message_count += 1
        current.first_at = min(current.first_at, message.sent_at)
        current.last_at = max(current.last_at, message.sent_at)
        if message.sender == rep.wecom_userid:
            current.rep_wrote = True
        if message.sender == route.external_userid:
            last = customer.last_customer_message_at
            customer.last_customer_message_at = (
                max(last, message.sent_at) if last else message.sent_at
            )
        row.status = ArchiveStatus.CAPTURED
        row.customer_id, row.user_id = customer.id, rep.id
        self.filed.append((row, current))
        if message.voice:
            self.voices.append(row)
        self.result.captured += 1

    def withdraw(self, msgid: str) -> None:
        """A recall: take the recalled message out of its window (and its follow-up)."""
        target = self.session.scalar(select(ArchiveMessage).where(ArchiveMessage.msgid == msgid))
        if target is None or target.status not in (ArchiveStatus.PENDING, ArchiveStatus.CAPTURED):
            return  # not stored yet (capture marks it when it comes), or never captured
        was_captured = target.status == ArchiveStatus.CAPTURED
        target.status = ArchiveStatus.RECALLED
        self.result.recalled += 1
        if not was_captured or target.window_id is None:
            return
        self.session.flush()
        window = self.session.get(ChatWindow, target.window_id)
        if window is not None and window.closed_at is not None and window.follow_up_id:
            self._settle_again(window)

    def close_all(self, windows: Sequence[ChatWindow]) -> None:
        """Close the windows, and settle those none of whose voice messages is still being
        transcribed."""
        if not windows:
            return
        for window in windows:
            window.closed_at = self.now
            self.open.pop((window.customer_id, window.user_id, window.roomid), None)
        self.result.windows_closed += len(windows)
        self.settle_all(windows)

    def settle_all(self, windows: Sequence[ChatWindow]) -> None:
        """Write what each closed window captured, unless one of its voice messages is still
        being transcribed; their messages (with recordings) and customers are read in one
        statement each (customers locked in id order, as every writer does)."""
        if not windows:
            return
        self.session.flush()
        captured = self._captured([window.id for window in windows])
        ready = [
            window
            for window in windows
            if all(r is None or r.status in recordings.SETTLED for _, r in captured[window.id])
        ]
        if not ready:
            return
        customers = {
            customer.id: customer
            for customer in self.session.scalars(
                select(Customer)
                .where(Customer.id.in_({window.customer_id for window in ready}))
                .order_by(Customer.id)
                .with_for_update()
            )
        }
        for window in ready:
            window.settled_at = self.now
            customer = customers.get(window.customer_id)
            if customer is not None:
                self._settle(window, captured[window.id], customer, first=True)

    def _captured(self, window_ids: Sequence[int]) -> dict[int, list[_Captured]]:
        """The windows' captured messages in time order, each with its recording (a voice
        message whose bytes were fetched), in one statement."""
        captured: dict[int, list[_Captured]] = {window_id: [] for window_id in window_ids}
        for row, recording in self.session.execute(
            select(ArchiveMessage, Recording)
            .outerjoin(Recording, Recording.archive_message_id == ArchiveMessage.id)
            .where(
                ArchiveMessage.window_id.in_(window_ids),
                ArchiveMessage.status == ArchiveStatus.CAPTURED,
            )
            .order_by(ArchiveMessage.sent_at, ArchiveMessage.id)
        ):
            captured[row.window_id or 0].append((row, recording))
        return captured

    def _settle_again(self, window: ChatWindow) -> None:
        """Write again what a settled window captured (a recall took a message out)."""
        rows = self._captured([window.id])[window.id]
        customer = self.session.get(Customer, window.customer_id, with_for_update=True)
        if customer is not None:
            self._settle(window, rows, customer, first=False)

    def _settle(
        self, window: ChatWindow, rows: Sequence[_Captured], customer: Customer, *, first: bool
    ) -> None:
        """Write (first) or rewrite (after a recall) what a window's messages captured."""
        rep = self.directory.user(window.user_id)
        if rep is None:
            return
        messages = [_Said(chat_messages.parse(row.payload), recording) for row, recording in rows]
        dictionary = self.dictionary(customer.team_id)
        hits = dictionary.match_many([m.text for m in messages])
        external = customer.external_userid
        window.categories = _union(h.categories for h in hits)
        window.keywords = _union(h.keywords for h in hits)
        window.risks = _union(
            h.risks for m, h in zip(messages, hits, strict=True) if m.message.sender == external
        )
        summary = _summary(messages, hits, rep, external, self.directory)
        files = [f.filename for m in messages for f in m.message.files]
        fetched = [followups.StoredFile(**row.media) for row, _ in rows if row.media]
        transcript = "\n".join(m.transcript for m in messages if m.transcript) or None
        fetched_names = {file.filename for file in fetched}
        captured = {
            "categories": window.categories,
            "keywords": window.keywords,
            "files": files,
            "window_id": window.id,
        }
        if first and window.categories:
            follow_up = followups.add_follow_up(
                self.session,
                actor=Actor.of(rep),
                customer=customer,
                method=ContactMethod.WECOM_CHAT,
                summary=summary,
                happened_at=window.last_at,
                now=self.now,
                source=FollowUpSource.CHAT_ARCHIVE,
                files=fetched,
                named_files=[name for name in files if name not in fetched_names],
                transcript=transcript,
                capture=captured,
            )
            recordings.link_archived(
                self.session,
                follow_up=follow_up,
                recordings=[recording for _, recording in rows if recording is not None],
            )
            window.follow_up_id = follow_up.id
            self.result.follow_ups += 1
        elif first and window.rep_wrote:
            # Contact without a keyword: no record, but the no-follow-up clock starts over.
            _count_as_contact(customer, window.last_at)
        if first and window.risks:
            notify(
                self.session,
                recipients=managers_of(self.session, customer),
                title=RISK_TITLE.format(customer=customer.name),
                text=RISK_TEXT.format(
                    customer=customer.name, risks="、".join(window.risks), snippet=summary
                ),
                now=self.now,
                customer_id=customer.id,
                dedupe_key=f"chat-risk:{window.id}",
            )
        if first or window.follow_up_id is None:
            return
        written = self.session.get(FollowUp, window.follow_up_id)
        if written is None or written.withdrawn_at is not None:
            return
        if window.categories:
            written.summary = summary
            written.transcript = transcript
            written.capture = captured
            return
        written.withdrawn_at = self.now
        window.withdrawn = True
        self.result.withdrawn += 1
        notify(
            self.session,
            recipients=managers_of(self.session, customer),
            title=WITHDRAWN_TITLE.format(customer=customer.name),
            text=WITHDRAWN_TEXT.format(rep=rep.name, customer=customer.name),
            now=self.now,
            customer_id=customer.id,
            dedupe_key=f"chat-withdrawn:{window.id}",
        )


@dataclass(frozen=True)
class _Said:
    """A captured message with what its voice said, when it is a transcribed voice message."""

    message: ChatMessage
    recording: Recording | None

    @property
    def transcript(self) -> str:
        """What the voice said once transcribed ("" before, when it failed, or when silent)."""
        recording = self.recording
        if recording is None or recording.status != RecordingStatus.DONE:
            return ""
        return recording.transcript or ""

    @property
    def text(self) -> str:
        """What the keyword match reads: the typed texts and the voice's transcript."""
        return " ".join(part for part in (*self.message.texts, self.transcript) if part)

    def line(self) -> str:
        """The message as one line of the snippet."""
        if self.recording is None:
            voice = VOICE_NO_AUDIO
        elif self.recording.status != RecordingStatus.DONE:
            voice = VOICE_FAILED
        elif self.transcript:
            voice = VOICE_SAID.format(transcript=self.transcript)
        else:
            voice = VOICE_SILENT
        return self.message.line(voice)


def _count_as_contact(customer: Customer, at: datetime) -> None:
    """Move the no-follow-up clock forward to `at`, never back."""
    if customer.last_follow_up_at is None or at > customer.last_follow_up_at:
        customer.last_follow_up_at = at


def _union(groups: Iterable[Sequence[str]]) -> list[str]:
    return list(dict.fromkeys(word for group in groups for word in group))


def _summary(
    messages: Sequence[_Said],
    hits: Sequence[keywords.Hits],
    rep: User,
    external_userid: str | None,
    directory: _Directory,
) -> str:
    """A readable, bounded snippet: "张伟：…\\n客户：…"; lines with a hit or a file come first
    when not everything fits, the rest in order as room allows."""
    words = _union(h.keywords for h in hits)
    head = f"企微会话（{len(messages)} 条消息）"
    if words:
        head += f"，关键词：{'、'.join(words)}"
    lines = []
    for said, hit in zip(messages, hits, strict=True):
        message = said.message
        if message.sender == rep.wecom_userid:
            speaker = rep.name
        elif chat_messages.is_external(message.sender):
            speaker = CUSTOMER_SPEAKER
        else:
            member = directory.member(message.sender)
            speaker = member.name if member else COLLEAGUE_SPEAKER
        text = said.line()
        if len(text) > LINE_MAX_CHARS:
            text = text[: LINE_MAX_CHARS - 1] + "…"
        lines.append((f"{speaker}：{text}", bool(hit.keywords or message.files)))
    budget = SUMMARY_MAX_CHARS - len(head) - 40  # room for the "not listed" line
    chosen: set[int] = set()
    for wanted_first in (True, False):
        for index, (line, important) in enumerate(lines):
            if important == wanted_first and len(line) + 1 <= budget:
                chosen.add(index)
                budget -= len(line) + 1
    body = [line for index, (line, _) in enumerate(lines) if index in chosen]
    if len(chosen) < len(lines):
        body.append(f"……（另有 {len(lines) - len(chosen)} 条消息未列出）")
    return "\n".join([head, *body])
