"""What the bot does with one stored inbound message: run a member's command, apply a WeChat
contact change, decide an order from a card's button; the answer goes out as an app message.

Called by the processing job inside the transaction that marks the message done, so the
effects and the reply commit together, once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from bot import commands
from config import Settings
from crm import contacts, orders
from crm.actors import Actor
from crm.errors import DomainError
from crm.notifications import notify
from crm.storage import FileStore
from crm.users import user_by_wecom_id
from models import InboundMessage, User
from wecom.client import WeComClient, WeComError, WeComUnavailable

log = logging.getLogger(__name__)
NOT_TEXT_REPLY = "目前只认识文字命令，发送 #帮助# 查看可用命令。"


def handle(
    session: Session,
    message: InboundMessage,
    *,
    now: datetime,
    store: FileStore,
    settings: Settings,
    wecom: WeComClient,
) -> None:
    fields = message.payload
    if message.msg_type == "event":
        if message.event == "change_external_contact":
            _contact_change(session, message, fields, now, wecom)
        elif message.event == "template_card_event":
            _card_click(session, message, fields, now)
        return  # enter_agent and the like need nothing
    sender = _member(session, message.from_user)
    if sender is None:
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
    session: Session, message: InboundMessage, fields: dict, now: datetime, wecom: WeComClient
) -> None:
    rep = _member(session, str(fields.get("UserID") or ""))
    external_userid = str(fields.get("ExternalUserID") or "")
    if rep is None or not external_userid:
        return

    def lookup(external_userid: str) -> contacts.ContactInfo:
        try:
            answer = wecom.get_external_contact(external_userid)
        except WeComUnavailable:
            raise  # the job retries the message later
        except WeComError as error:
            log.warning("externalcontact/get refused (%s); creating an unnamed profile", error)
            return contacts.ContactInfo(name="")
        contact = answer.get("external_contact") or {}
        mine = [f for f in answer.get("follow_user") or [] if f.get("userid") == rep.wecom_userid]
        return contacts.ContactInfo(
            name=str(contact.get("name") or ""),
            corp_name=str(contact.get("corp_name") or "") or None,
            mobiles=[str(m) for f in mine for m in f.get("remark_mobiles") or []],
        )

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
            text = orders.decide_from_card(
                session,
                actor=Actor.of(member),
                task_id=str(fields.get("TaskId") or ""),
                key=str(fields.get("EventKey") or ""),
                now=now,
            )
    except DomainError as refusal:
        text = refusal.message
    _reply(session, member, message, text, now)
