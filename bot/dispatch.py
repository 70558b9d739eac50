"""What the bot does with one stored inbound message: run a member's command, apply a WeChat
contact change, decide an order from a card's button; the answer goes out as an app message.

Called by the processing job inside the transaction that marks the message done, so the
effects and the reply commit together, once. What a message needs from WeCom's API is asked
before that transaction (`ask_wecom`): on SQLite it holds the database's one write lock, which
the callback needs to store the next message. A voice message's audio is fetched there too
(bot/voice.py reads it as a `#跟进#` command once transcribed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot import cards, commands, voice
from config import Settings
from crm import after_commit, contacts
from crm.actors import Actor
from crm.errors import DomainError
from crm.notifications import notify
from crm.storage import FileStore
from crm.users import user_by_wecom_id
from models import InboundMessage, User
from wecom.client import WeComClient, WeComError, WeComUnavailable

log = logging.getLogger(__name__)
NOT_TEXT_REPLY = "目前只认识文字和语音命令，发送 #帮助# 查看可用命令。"
ANSWERED_TYPES = ("text", "voice")  # what members send that the bot answers (and tell_failed)
FAILED_REPLY = "抱歉，这条消息没能处理好，请稍后再发一次，或到小程序里操作。"


@dataclass(frozen=True)
class WeComAnswers:
    """What `ask_wecom` fetched for one message."""

    contacts: Mapping[str, contacts.ContactInfo] = field(default_factory=dict)
    voice: bytes | None = None  # a voice message's audio; None when WeCom refused it


def ask_wecom(fields: Mapping[str, Any], wecom: WeComClient) -> WeComAnswers:
    """What handling the message will need from WeCom: the profile of a WeChat contact a rep
    just added, or a voice message's audio. Raises WeComUnavailable when WeCom cannot be
    reached (the job tries later)."""
    if fields.get("MsgType") == "voice" and fields.get("MediaId"):
        try:
            return WeComAnswers(voice=wecom.download_media(str(fields["MediaId"])))
        except WeComUnavailable:
            raise
        except WeComError as error:  # an expired or unknown MediaId: asking again won't help
            log.warning("media/get refused (%s); the member is asked to send it again", error)
            return WeComAnswers()
    return WeComAnswers(contacts=_contacts(fields, wecom))


def _contacts(fields: Mapping[str, Any], wecom: WeComClient) -> dict[str, contacts.ContactInfo]:
    if (
        fields.get("Event") != "change_external_contact"
        or fields.get("ChangeType") not in contacts.ADDING
        or not fields.get("ExternalUserID")
    ):
        return {}
    external_userid = str(fields["ExternalUserID"])
    try:
        info = contact_info(wecom, external_userid, str(fields.get("UserID") or ""))
    except WeComUnavailable:
        raise
    except WeComError as error:
        log.warning("externalcontact/get refused (%s); the profile starts unnamed", error)
        return {external_userid: contacts.ContactInfo(name="")}
    return {external_userid: info}


def contact_info(wecom: WeComClient, external_userid: str, rep: str) -> contacts.ContactInfo:
    """A WeChat contact's profile as the rep `rep` (a WeCom userid) keeps it
    (externalcontact/get); raises WeComError."""
    answer = wecom.get_external_contact(external_userid)
    contact = answer.get("external_contact") or {}
    mine = [f for f in answer.get("follow_user") or [] if f.get("userid") == rep]
    return contacts.ContactInfo(
        name=str(contact.get("name") or ""),
        corp_name=str(contact.get("corp_name") or "") or None,
        mobiles=[str(m) for f in mine for m in f.get("remark_mobiles") or []],
    )


def handle(
    session: Session,
    message: InboundMessage,
    *,
    now: datetime,
    store: FileStore,
    settings: Settings,
    wecom_answers: WeComAnswers,
) -> None:
    """Act on one message; `wecom_answers` is what `ask_wecom` returned for it."""
    fields = message.payload
    if message.msg_type == "event":
        if message.event == "change_external_contact":
            _contact_change(session, message, fields, now, wecom_answers.contacts)
        elif message.event == "template_card_event":
            _card_click(session, message, fields, now)
        elif message.event == "msgaudit_notify":
            after_commit.start(session, after_commit.PULL_ARCHIVE)  # new archived messages
        return  # enter_agent and the like need nothing
    sender = _member(session, message.from_user)
    if sender is None:
        return
    if message.msg_type == "voice":
        text = voice.receive(session, sender, wecom_answers.voice, store=store, now=now)
        _reply(session, sender, message, text, now)
        return
    if message.msg_type != "text":
        _reply(session, sender, message, NOT_TEXT_REPLY, now)
        return
    context = commands.Context(
        session=session,
        actor=Actor.of(sender),
        now=now,
        store=store,
        max_attachment_bytes=settings.max_attachment_bytes,
    )
    _reply(session, sender, message, commands.run(context, str(fields.get("Content") or "")), now)


def tell_failed(session: Session, message: InboundMessage, *, now: datetime) -> None:
    """The member's message failed for good: say so rather than stay silent (events, which
    nobody typed, fail quietly)."""
    if message.msg_type in ANSWERED_TYPES:
        sender = _member(session, message.from_user)
        if sender is not None:
            _reply(session, sender, message, FAILED_REPLY, now)


def _member(session: Session, wecom_userid: str) -> User | None:
    user = user_by_wecom_id(session, wecom_userid) if wecom_userid else None
    if user is None or not user.is_active:
        # Not in our directory (yet): a directory sync brings them in; nothing to answer.
        log.info("inbound message from a member who is not an active user; ignored")
        return None
    return user


def _reply(session: Session, to: User, message: InboundMessage, text: str, now: datetime) -> None:
    notify(
        session,
        recipients=[to],
        title="",
        text=text,
        now=now,
        msgtype="text",
        dedupe_key=f"bot-reply:{message.id}",
    )


def _contact_change(
    session: Session,
    message: InboundMessage,
    fields: dict,
    now: datetime,
    wecom_answers: Mapping[str, contacts.ContactInfo],
) -> None:
    rep = _member(session, str(fields.get("UserID") or ""))
    external_userid = str(fields.get("ExternalUserID") or "")
    if rep is None or not external_userid:
        return

    def lookup(external_userid: str) -> contacts.ContactInfo:
        return wecom_answers.get(external_userid) or contacts.ContactInfo(name="")

    outcome = contacts.on_change(
        session,
        rep=rep,
        change_type=str(fields.get("ChangeType") or ""),
        external_userid=external_userid,
        now=now,
        lookup=lookup,
    )
    if outcome is not None and outcome.created:
        text = f"已为你新建客户档案「{outcome.customer.name}」（来自企业微信），记得补全资料。"
        _reply(session, rep, message, text, now)
    elif outcome is not None and outcome.linked:
        text = f"已把这位微信客户关联到你的客户档案「{outcome.customer.name}」。"
        _reply(session, rep, message, text, now)


def _card_click(session: Session, message: InboundMessage, fields: dict, now: datetime) -> None:
    member = _member(session, message.from_user)
    if member is None:
        return
    try:
        with session.begin_nested():
            text = cards.decide(
                session,
                actor=Actor.of(member),
                task_id=str(fields.get("TaskId") or ""),
                key=str(fields.get("EventKey") or ""),
                now=now,
            )
    except DomainError as refusal:
        text = refusal.message
    _reply(session, member, message, text, now)
