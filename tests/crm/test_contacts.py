"""A rep's WeChat contacts: adding creates or links the customer; changes go on the timeline."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm import contacts, customers
from crm.actors import Actor
from models import ContactEvent, Customer
from tests.factories import make_company, make_customer


@pytest.fixture
def company(session):
    return make_company(session)


def _change(session, rep, change, external_userid, clock, info=None):
    asked = []

    def lookup(external_userid):
        asked.append(external_userid)
        return info or contacts.ContactInfo(name="刘女士", corp_name="岳阳建材")

    outcome = contacts.on_change(
        session,
        rep=rep,
        change_type=change,
        external_userid=external_userid,
        now=clock(),
        lookup=lookup,
    )
    session.commit()
    return outcome, asked


def test_adding_a_wechat_customer_creates_a_profile_owned_by_the_rep(company, session, clock):
    rep = company.reps[0][0]
    outcome, asked = _change(session, rep, "add_external_contact", "wmABC", clock)
    assert outcome.created and asked == ["wmABC"]
    customer = outcome.customer
    assert (customer.name, customer.company, customer.owner_id, customer.team_id) == (
        "刘女士",
        "岳阳建材",
        rep.id,
        rep.team_id,
    )
    assert (customer.external_userid, customer.source, customer.stage) == (
        "wmABC",
        "企业微信",
        "潜在",
    )
    assert customer.grade is not None  # graded by the rules like any new customer
    # WeCom sends the add once more (a retry, or the rep re-adding): no second profile.
    again, asked = _change(session, rep, "add_external_contact", "wmABC", clock)
    assert not again.created and asked == []
    assert session.scalar(select(Customer.id).where(Customer.external_userid == "wmABC")) == (
        customer.id
    )


def test_a_profile_with_the_same_phone_is_linked_not_duplicated(company, session, clock):
    rep = company.reps[0][0]
    known = make_customer(session, rep, clock(), name="老客户", phone="13800138000")
    info = contacts.ContactInfo(name="微信昵称", mobiles=["138 0013 8000"])
    outcome, _ = _change(session, rep, "add_external_contact", "wmLINK", clock, info)
    assert outcome.linked and outcome.customer.id == known.id
    session.refresh(known)
    assert (known.external_userid, known.name) == ("wmLINK", "老客户")


def test_another_reps_phone_is_not_linked_and_not_revealed(company, session, clock):
    other = make_customer(session, company.reps[0][1], clock(), name="别人的", phone="13800138000")
    rep = company.reps[0][0]
    info = contacts.ContactInfo(name="新朋友", mobiles=["13800138000"])
    outcome, _ = _change(session, rep, "add_external_contact", "wmNEW", clock, info)
    assert outcome.created and outcome.customer.id != other.id
    assert (outcome.customer.phone, outcome.customer.owner_id) == (None, rep.id)
    session.refresh(other)
    assert other.external_userid is None


def test_deleting_is_recorded_on_the_timeline(company, session, clock):
    rep = company.reps[0][0]
    created, _ = _change(session, rep, "add_external_contact", "wmDEL", clock)
    clock.advance(days=3)
    _change(session, rep, "del_follow_user", "wmDEL", clock)
    clock.advance(hours=1)
    _change(session, rep, "del_external_contact", "wmDEL", clock)
    detail = customers.customer_detail(
        session, actor=Actor.of(rep), customer_id=created.customer.id
    )
    contact_changes = [e.record.change_type for e in detail.timeline if e.kind == "contact"]
    assert contact_changes == ["del_external_contact", "del_follow_user", "add_external_contact"]
    # The profile stays: losing the WeChat contact does not lose the customer.
    assert session.get(Customer, created.customer.id).owner_id == rep.id


def test_changes_about_unknown_contacts_or_of_unknown_kinds_keep_nothing(company, session, clock):
    rep = company.reps[0][0]
    for change in ("del_external_contact", "edit_external_contact", "something_new"):
        outcome, asked = _change(session, rep, change, "wmNOBODY", clock)
        assert outcome is None and asked == []
    assert session.scalars(select(ContactEvent)).all() == []
    assert session.scalars(select(Customer)).all() == []


def test_an_unusable_name_becomes_a_placeholder(company, session, clock):
    info = contacts.ContactInfo(name="\x00\x01")
    outcome, _ = _change(session, company.reps[0][0], "add_external_contact", "wmX", clock, info)
    assert outcome.customer.name == "微信客户"
