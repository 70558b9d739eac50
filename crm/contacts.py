"""WeChat contacts of reps (客户联系): a rep adding a customer on WeChat creates or links that
customer's profile; every change of the contact is kept on the customer's timeline."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import customer_changes, customers
from crm.actors import Actor
from crm.errors import Invalid
from crm.phones import normalise_phone
from crm.text import is_storable
from crm.vocab import ContactMethod, Source
from models import ContactEvent, Customer, User

log = logging.getLogger(__name__)
NAME_MAX_CHARS = 128


class ChangeType(StrEnum):
    """WeCom's ChangeType values of the change_external_contact event."""

    ADD = "add_external_contact"
    ADD_HALF = "add_half_external_contact"  # the customer accepted, the rep has not yet
    EDIT = "edit_external_contact"
    DELETE = "del_external_contact"  # the rep deleted the customer
    DELETED_BY_CUSTOMER = "del_follow_user"  # the customer deleted the rep
    TRANSFER_FAIL = "transfer_fail"


ADDING = (ChangeType.ADD, ChangeType.ADD_HALF)


@dataclass(frozen=True)
class ContactInfo:
    """What WeCom tells about an external contact (externalcontact/get)."""

    name: str
    corp_name: str | None = None
    mobiles: list[str] = field(default_factory=list)  # the rep's remark_mobiles


@dataclass(frozen=True)
class ContactOutcome:
    customer: Customer
    created: bool = False  # a new profile
    linked: bool = False  # an existing profile of the rep got the WeChat link


def on_change(
    session: Session,
    *,
    rep: User,
    change_type: str,
    external_userid: str,
    now: datetime,
    lookup: Callable[[str], ContactInfo],
) -> ContactOutcome | None:
    """Apply one change of a rep's WeChat contact; None when it concerns no customer we keep.

    `lookup` asks WeCom for the contact's details; it is called only when a profile is made."""
    try:
        kind = ChangeType(change_type)
    except ValueError:
        log.info("ignoring external-contact change %r", change_type)
        return None
    customer = session.scalar(
        select(Customer).where(Customer.external_userid == external_userid).with_for_update()
    )
    outcome = None
    if customer is None and kind in ADDING:
        outcome = _create_or_link(session, rep, external_userid, lookup(external_userid), now)
        customer = outcome.customer
    if customer is None:
        return None
    session.add(
        ContactEvent(
            customer_id=customer.id,
            user_id=rep.id,
            change_type=kind.value,
            external_userid=external_userid,
            at=now,
        )
    )
    return outcome or ContactOutcome(customer=customer)


def _create_or_link(
    session: Session, rep: User, external_userid: str, info: ContactInfo, now: datetime
) -> ContactOutcome:
    actor = Actor.of(rep)
    phone = None
    for raw in info.mobiles:
        try:
            phone = normalise_phone(raw)
        except Invalid:
            continue
        if phone:
            break
    if phone:
        known = customers.find_by_phone(session, phone)
        if known is not None:
            if known.owner_id == rep.id and known.external_userid is None:
                known.external_userid = external_userid
                known.updated_at = now
                return ContactOutcome(customer=known, linked=True)
            # Someone else's customer (or already linked): a new profile without the phone,
            # so the rep learns nothing about it and the phone stays unique.
            phone = None
    values: dict[str, object] = {
        "name": _clean_name(info.name),
        "source": Source.WECOM.value,
        "first_contact_method": ContactMethod.WECHAT.value,
    }
    if info.corp_name and is_storable(info.corp_name):
        values["company"] = info.corp_name[:NAME_MAX_CHARS]
    if phone:
        values["phone"] = phone
    customer = customer_changes.create_customer(
        session, actor=actor, values=values, now=now, cause="企业微信添加客户"
    )
    customer.external_userid = external_userid
    return ContactOutcome(customer=customer, created=True)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or not is_storable(name):
        return "微信客户"
    return name[:NAME_MAX_CHARS]
