"""Conversations driven the way WeCom drives them: the member's message encrypted with wechatpy,
posted to /wecom/callback, processed by a real RQ worker, and the bot's answers read back from
the fake WeCom server's message log."""

from __future__ import annotations

from sqlalchemy import select

from crm import orders
from crm.actors import Actor
from models import ContactEvent, Customer, FollowUp, InboundMessage, Order, OrderStep
from tests.factories import make_company, make_customer


def _order(session, rep, clock, number="SO-20260302-001"):
    customer = make_customer(session, rep, clock(), name="长沙卫浴城")
    order = orders.create_order(
        session,
        actor=Actor.of(rep),
        number=number,
        customer_id=customer.id,
        amount="86000",
        now=clock(),
    )
    session.commit()
    return order


def _cards_to(fake_wecom, userid):
    return [
        m["template_card"]
        for m in fake_wecom.messages
        if m["msgtype"] == "template_card" and userid in m["touser"]
    ]


def test_a_managers_expedite_skips_the_configured_nodes_and_tells_the_people_downstream(
    wecom_side, fake_wecom, session, clock
):
    company = make_company(session)
    rep, manager, boss = company.reps[0][0], company.managers[0], company.boss
    order = _order(session, rep, clock)

    # A rep may not use the emergency lane: refused, and the order is untouched.
    refused = wecom_side.send_text(rep.wecom_userid, "#加急# SO-20260302-001 客户工地周五开工")
    assert refused == ["「#加急#」只有主管、老板可以使用。发送 #帮助# 查看你可用的命令。"]
    session.rollback()
    assert session.get(Order, order.id).expedited_at is None

    clock.advance(minutes=5)
    replies = wecom_side.send_text(
        manager.wecom_userid, "＃加急＃  so-20260302-001  客户工地周五开工"
    )
    assert replies == [
        "订单 SO-20260302-001 已加急：已跳过「主管审批」「财务审核」；"
        "还需「仓库排期」，已通知王总。"
    ]
    session.rollback()  # a new snapshot: the worker committed since
    order = session.scalar(select(Order).where(Order.id == order.id))
    assert (order.expedite_reason, order.expedited_by) == ("客户工地周五开工", manager.id)
    steps = session.execute(
        select(OrderStep.name, OrderStep.status, OrderStep.comment)
        .where(OrderStep.order_id == order.id)
        .order_by(OrderStep.position)
    ).all()
    assert [tuple(s) for s in steps] == [
        ("主管审批", "skipped", "客户工地周五开工"),
        ("财务审核", "skipped", "客户工地周五开工"),
        ("仓库排期", "pending", None),
    ]
    # The boss (仓库排期's approver) gets the urgent notice and a card to decide on.
    notice = [m for m in wecom_side.inbox(boss.wecom_userid) if m.startswith("【加急】")]
    assert len(notice) == 1 and "原因：客户工地周五开工" in notice[0]
    [card] = [c for c in _cards_to(fake_wecom, boss.wecom_userid) if "仓库排期" in str(c)]

    # The boss taps 同意 on the card: WeCom posts a template_card_event.
    clock.advance(minutes=5)
    click = {
        "Event": "template_card_event",
        "EventKey": "approve",
        "TaskId": card["task_id"],
        "CardType": "button_interaction",
        "ResponseCode": "rc-1",
    }
    assert wecom_side.send_event(boss.wecom_userid, click) == [
        "已同意「仓库排期」，订单 SO-20260302-001 审批通过。"
    ]
    session.rollback()  # a new snapshot: the worker committed since
    assert session.get(Order, order.id).status == "approved"
    # The same click delivered again (a WeCom retry) changes nothing and answers nothing new.
    assert wecom_side.send_event(boss.wecom_userid, click) == []


def test_a_rep_logs_a_follow_up_and_reads_today_from_wecom(wecom_side, session, clock):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), name="株洲陶瓷厂")
    assert wecom_side.send_text(rep.wecom_userid, "#跟进# 株洲陶瓷厂 电话 客户要样品") == [
        "已记录对「株洲陶瓷厂」的跟进（电话）。"
    ]
    follow_up = session.scalar(select(FollowUp).where(FollowUp.customer_id == customer.id))
    assert (follow_up.method, follow_up.summary) == ("电话", "客户要样品")
    assert wecom_side.send_text(rep.wecom_userid, "#今日#") == [
        "今天没有待办，也没有到期的计划跟进。"
    ]
    assert wecom_side.send_text(rep.wecom_userid, "随便聊聊")[0].startswith("可用命令：")


def test_a_wechat_customer_added_by_a_rep_becomes_their_customer(
    wecom_side, fake_wecom, session, clock
):
    company = make_company(session)
    rep = company.reps[0][1]
    fake_wecom.add_external_contact(
        "wmCustomer1", "刘女士", userid=rep.wecom_userid, corp_name="岳阳建材"
    )
    added = {
        "Event": "change_external_contact",
        "ChangeType": "add_external_contact",
        "UserID": rep.wecom_userid,
        "ExternalUserID": "wmCustomer1",
        "WelcomeCode": "welcome-1",
    }
    assert wecom_side.send_event("sys", added) == [
        "已为你新建客户档案「刘女士」（来自企业微信），记得补全资料。"
    ]
    customer = session.scalar(select(Customer).where(Customer.external_userid == "wmCustomer1"))
    assert (customer.name, customer.company, customer.owner_id) == ("刘女士", "岳阳建材", rep.id)

    clock.advance(days=2)
    deleted = {**added, "ChangeType": "del_follow_user"}
    deleted.pop("WelcomeCode")
    assert wecom_side.send_event("sys", deleted) == []
    session.rollback()
    changes = session.scalars(
        select(ContactEvent.change_type).where(ContactEvent.customer_id == customer.id)
    ).all()
    assert sorted(changes) == ["add_external_contact", "del_follow_user"]


def test_messages_from_people_outside_the_directory_are_kept_and_answered_by_nobody(
    wecom_side, session
):
    make_company(session)
    assert wecom_side.send_text("stranger", "#今日#") == []
    [message] = session.scalars(select(InboundMessage)).all()
    assert (message.from_user, message.status) == ("stranger", "done")


def test_a_contact_added_while_wecom_is_down_is_created_once_wecom_is_back(
    wecom_side, fake_wecom, session, clock
):
    rep = make_company(session).reps[0][0]
    fake_wecom.add_external_contact("wmLater", "周先生", userid=rep.wecom_userid)
    added = {
        "Event": "change_external_contact",
        "ChangeType": "add_external_contact",
        "UserID": rep.wecom_userid,
        "ExternalUserID": "wmLater",
    }
    fake_wecom.set_unreachable(True)
    assert wecom_side.send_event("sys", added) == []
    session.rollback()
    [message] = session.scalars(select(InboundMessage)).all()
    assert (message.status, message.attempts) == ("pending", 0)  # waiting, no attempt used up

    fake_wecom.set_unreachable(False)
    clock.advance(minutes=1)
    wecom_side.sweep()
    assert wecom_side.inbox(rep.wecom_userid) == [
        "已为你新建客户档案「周先生」（来自企业微信），记得补全资料。"
    ]
    session.rollback()
    assert session.scalar(select(Customer.name).where(Customer.external_userid == "wmLater")) == (
        "周先生"
    )
