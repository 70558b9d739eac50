"""Notifications to members through WeCom app messages, kept in an outbox until WeCom takes them.

`notify` writes one outbox row per recipient in the caller's transaction, so a message exists
exactly when the decision that caused it was committed. A worker (workers/outbox.py) sends the
rows later with the state changes below; this module never talks to WeCom, Redis or RQ.

An image message stores the key of its picture in the FileStore, not a WeCom media_id: WeCom
keeps uploaded media three days, and a message may wait longer (an outage, a retry by hand), so
the sender uploads the file when it sends. Unsent image messages keep their file from the
orphan purge (`referenced_storage_keys`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm import after_commit, delivery
from crm.actors import Actor, user_scope
from crm.delivery import DeliveryStatus
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from models import OutboxMessage, User

MSGTYPES = ("text", "markdown", "textcard", "template_card", "image")
MAX_PAGE_SIZE = 100
# WeCom's documented limits (https://developer.work.weixin.qq.com/document/path/90236); longer
# content is refused with 45002, so it is cut here rather than failing at send time.
TEXTCARD_TITLE_MAX_CHARS = 128
TEXTCARD_DESCRIPTION_MAX_CHARS = 512
TEXT_CONTENT_MAX_BYTES = 2048
TEXTCARD_BUTTON = "详情"
# Button cards (template_card of card_type button_interaction), same page: WeCom shows about
# this much of each part.
CARD_TITLE_MAX_CHARS = 36
CARD_SUB_TITLE_MAX_CHARS = 160
CARD_FIELD_NAME_MAX_CHARS = 5
CARD_FIELD_VALUE_MAX_CHARS = 30
CARD_MAX_FIELDS = 6
CARD_MAX_BUTTONS = 6
# A card's subject is a few named ids, short enough for the sender to turn into WeCom's task id
# (wecom/task_ids.py) with the recipient's id added.
SUBJECT_MAX_IDS = 3
SUBJECT_KEY = re.compile(r"[a-z]{1,16}_id")
# An image message's stored content: where its picture is in the FileStore.
IMAGE_KEY_FIELD = "file_key"


OutboxStatus = DeliveryStatus


@dataclass(frozen=True)
class CardButton:
    """A button that calls back: WeCom posts a template_card_event with `key` as EventKey."""

    key: str
    text: str
    style: int = 1  # WeCom's 1-4


@dataclass(frozen=True)
class ButtonCard:
    """What makes a message a button card: what a click decides, buttons, key-value lines.

    `subject` names the thing by ids, e.g. {"order_id": 7, "step_id": 9}; a click comes back
    to the edge with it and the button's key."""

    subject: Mapping[str, int]
    buttons: tuple[CardButton, ...]
    fields: tuple[tuple[str, str], ...] = ()


@dataclass
class MessagePage:
    items: list[OutboxMessage]
    total: int
    page: int
    page_size: int


def notify(
    session: Session,
    *,
    recipients: Sequence[User],
    title: str,
    text: str,
    now: datetime,
    customer_id: int | None = None,
    dedupe_key: str | None = None,
    msgtype: str = "textcard",
    card: ButtonCard | None = None,
    image_key: str | None = None,
) -> list[OutboxMessage]:
    """Queue one message per active recipient; a dedupe key already queued adds nothing.

    A `card` makes the message a template card with buttons (msgtype "template_card"); an
    `image_key` (a FileStore key of a PNG or JPG) an image message, with no title or text."""
    if card is not None:
        msgtype = "template_card"
    if image_key is not None:
        msgtype = "image"
    if msgtype not in MSGTYPES:
        raise Invalid(f"不支持的消息类型「{msgtype}」", field="msgtype")
    if card is not None:
        content = _card_content(card, title, text)
    elif msgtype == "image":
        if image_key is None:  # a bug of the caller: there is nothing to send
            raise ValueError("an image message needs an image_key")
        content = {IMAGE_KEY_FIELD: image_key}
    else:
        content = _content(msgtype, title, text)
    # Keyed by id, which also drops a recipient named twice.
    wanted = {user.id: user for user in recipients if user.is_active and user.wecom_userid}
    keys = {uid: f"{dedupe_key}:{uid}" for uid in wanted} if dedupe_key else {}
    if keys:
        taken = set(
            session.scalars(
                select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys.values()))
            )
        )
        wanted = {uid: u for uid, u in wanted.items() if keys[uid] not in taken}
    added = []
    for uid, user in wanted.items():
        message = OutboxMessage(
            recipient_id=uid,
            touser=user.wecom_userid,
            msgtype=msgtype,
            content=dict(content),
            customer_id=customer_id,
            dedupe_key=keys.get(uid),
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        if message.dedupe_key is None:
            session.add(message)
            session.flush()
        else:
            # A concurrent transaction may have queued the same key since the look-up above; the
            # savepoint lets the unique index refuse it without undoing the caller's work.
            try:
                with session.begin_nested():
                    session.add(message)
            except IntegrityError:
                continue
        added.append(message)
    if added:
        after_commit.start(session, after_commit.OUTBOX)
    return added


def _content(msgtype: str, title: str, text: str) -> dict[str, Any]:
    """The stored message body; a textcard's url is added at send time (see `payload`)."""
    if msgtype == "textcard":
        return {
            "title": title[:TEXTCARD_TITLE_MAX_CHARS],
            "description": text[:TEXTCARD_DESCRIPTION_MAX_CHARS],
        }
    heading = (f"**{title}**" if msgtype == "markdown" else title) if title else ""
    body = f"{heading}\n{text}" if heading else text
    return {"content": _cut_bytes(body, TEXT_CONTENT_MAX_BYTES)}


def _card_content(card: ButtonCard, title: str, text: str) -> dict[str, Any]:
    """A button_interaction template card with its subject, from which the sender makes each
    recipient's task id."""
    # A bad subject or too many buttons is a bug of the caller; WeCom would refuse every copy.
    subject = dict(card.subject)
    if not 1 <= len(subject) <= SUBJECT_MAX_IDS or not all(
        SUBJECT_KEY.fullmatch(key) and isinstance(value, int) and 0 <= value < 2**31
        for key, value in subject.items()
    ):
        raise ValueError(f"a card subject names 1 to {SUBJECT_MAX_IDS} ids: {subject!r}")
    if not 1 <= len(card.buttons) <= CARD_MAX_BUTTONS:
        raise ValueError(f"a button card has 1 to {CARD_MAX_BUTTONS} buttons")
    content: dict[str, Any] = {
        "subject": subject,
        "card_type": "button_interaction",
        "main_title": {"title": title[:CARD_TITLE_MAX_CHARS]},
        "sub_title_text": text[:CARD_SUB_TITLE_MAX_CHARS],
        "button_list": [
            {"type": 0, "text": b.text, "style": b.style, "key": b.key} for b in card.buttons
        ],
    }
    if card.fields:
        content["horizontal_content_list"] = [
            {
                "keyname": name[:CARD_FIELD_NAME_MAX_CHARS],
                "value": value[:CARD_FIELD_VALUE_MAX_CHARS],
            }
            for name, value in card.fields[:CARD_MAX_FIELDS]
        ]
    return content


def _cut_bytes(value: str, limit: int) -> str:
    """`value` shortened to at most `limit` UTF-8 bytes without splitting a character."""
    return value.encode()[:limit].decode(errors="ignore")


def payload(message: OutboxMessage, *, public_url: str) -> dict[str, Any]:
    """What goes to WeCom for `message`: textcards link to the customer (or to wecrm's home);
    a button card still carries its subject, which the sender turns into the task id."""
    content = dict(message.content)
    if message.msgtype == "textcard":
        base = public_url.rstrip("/")
        content["url"] = (
            f"{base}/customers/{message.customer_id}" if message.customer_id else f"{base}/"
        )
        content["btntxt"] = TEXTCARD_BUTTON
    return content


def referenced_storage_keys(session: Session) -> set[str]:
    """FileStore keys of image messages not yet sent (a failed one may be sent again)."""
    contents = session.scalars(
        select(OutboxMessage.content).where(
            OutboxMessage.msgtype == "image", OutboxMessage.status != OutboxStatus.SENT
        )
    )
    return {content[IMAGE_KEY_FIELD] for content in contents}


# --- sending: the state changes the worker makes, each in its own short transaction ----------


def claim_due(
    session: Session, *, now: datetime, limit: int, lease_until: datetime
) -> list[OutboxMessage]:
    """Lease up to `limit` due messages, oldest first, so that no other worker takes them."""
    return delivery.claim_due(session, OutboxMessage, now=now, limit=limit, lease_until=lease_until)


def mark_sent(session: Session, *, message_id: int, now: datetime) -> None:
    """WeCom took the message."""
    message = _get(session, message_id)
    message.status = OutboxStatus.SENT
    message.sent_at = now
    session.flush()


def defer(session: Session, *, message_id: int, until: datetime) -> None:
    """Put a claimed message back, untried, until `until` (rate limit, or WeCom is down)."""
    delivery.defer(_get(session, message_id), until=until)
    session.flush()


def record_unavailable(session: Session, *, message_id: int, now: datetime, error: str) -> datetime:
    """WeCom could not be reached: try again after a back-off, however often; returns when."""
    message = _get(session, message_id)
    message.attempts += 1
    message.last_error = delivery.short_error(error)
    message.status = OutboxStatus.PENDING
    message.next_attempt_at = now + timedelta(seconds=delivery.backoff_seconds(message.attempts))
    session.flush()
    return message.next_attempt_at


def record_error(
    session: Session, *, message_id: int, now: datetime, error: str, permanent: bool = False
) -> None:
    """WeCom refused the message: retry with back-off, and fail after MAX_ATTEMPTS tries."""
    delivery.record_error(_get(session, message_id), now=now, error=error, permanent=permanent)
    session.flush()


def _get(session: Session, message_id: int) -> OutboxMessage:
    message = session.get(OutboxMessage, message_id)
    if message is None:  # outbox rows are never deleted, so this is a programming error
        raise LookupError(f"outbox message {message_id} does not exist")
    return message


# --- visibility ---------------------------------------------------------------------------------


def list_messages(
    session: Session,
    *,
    actor: Actor,
    status: str | None = None,
    page: int = 1,
    page_size: int = 20,
) -> MessagePage:
    """Messages to people in scope, newest first (rep: own; manager: the team; boss: all)."""
    conditions = [user_scope(actor)]
    if status is not None:
        conditions.append(OutboxMessage.status == status)
    scoped = select(OutboxMessage).join(User, User.id == OutboxMessage.recipient_id)
    total = session.scalar(select(func.count()).select_from(scoped.where(*conditions).subquery()))
    page_size = min(max(page_size, 1), MAX_PAGE_SIZE)
    page = max(page, 1)
    rows = session.scalars(
        scoped.where(*conditions)
        .order_by(OutboxMessage.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    return MessagePage(items=list(rows), total=total or 0, page=page, page_size=page_size)


def retry(session: Session, *, actor: Actor, message_id: int, now: datetime) -> OutboxMessage:
    """Send a failed message again with a fresh set of attempts (managers and the boss)."""
    if not actor.can_manage:
        raise Forbidden("只有主管和老板可以重发通知")
    message = session.scalar(
        select(OutboxMessage)
        .join(User, User.id == OutboxMessage.recipient_id)
        .where(OutboxMessage.id == message_id, user_scope(actor))
    )
    if message is None:
        raise NotFound("通知")
    if message.status != OutboxStatus.FAILED:
        raise Conflict("只有发送失败的通知可以重发", code="not_failed")
    delivery.retry(message, now=now)
    session.flush()
    after_commit.start(session, after_commit.OUTBOX)
    return message
