"""Every hashtag command for every role, in and out of scope, well-formed and malformed.

The commands run on the real database through `commands.run`, the function the callback's
job calls; tests/bot/test_conversation.py drives the same commands through the wire."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot import commands
from crm import orders, pool, tasks
from crm.actors import Actor
from models import FollowUp, PoolEvent
from tests.factories import make_company, make_customer


@pytest.fixture
def company(session):
    return make_company(session)


@pytest.fixture
def say(session, runtime, clock):
    """Send `text` as `user`; the reply, with the command's effects committed like the job."""

    def send(user, text):
        context = commands.Context(
            session=session,
            actor=Actor.of(user),
            now=clock(),
            store=runtime.store,
            max_attachment_bytes=runtime.settings.max_attachment_bytes,
        )
        reply = commands.run(context, text)
        session.commit()
        return reply

    return send


def _follow_ups(session, customer):
    return session.scalar(
        select(func.count()).select_from(FollowUp).where(FollowUp.customer_id == customer.id)
    )


# -- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["#帮助#", "＃帮助＃", "  # 帮助 #  ", "\u3000＃帮助#\u3000", "#帮助# 多余的字"],
)
def test_full_width_marks_and_extra_spaces_are_tolerated(company, say, text):
    assert say(company.reps[0][0], text).startswith("可用命令：")


@pytest.mark.parametrize("text", ["你好", "", "#", "#今日", "今日#", "##"])
def test_text_that_is_no_command_gets_help(company, say, text):
    reply = say(company.reps[0][0], text)
    assert reply.startswith("可用命令：") and "#今日#" in reply


def test_an_unknown_command_is_named_in_the_help(company, say):
    reply = say(company.reps[0][0], "#开会# 明天")
    assert reply.startswith("没有「#开会#」这个命令。\n可用命令：")


def test_help_lists_what_each_role_may_use(company, say):
    rep_help = say(company.reps[0][0], "#帮助#")
    manager_help = say(company.managers[0], "#帮助#")
    boss_help = say(company.boss, "#帮助#")
    assert "#领取#" in rep_help and "#分配#" not in rep_help and "#加急#" not in rep_help
    assert "#领取#" not in manager_help and "#分配#" in manager_help and "#加急#" in manager_help
    assert "#分配#" in boss_help and "#加急#" in boss_help


# -- #今日# ---------------------------------------------------------------------------------------


def test_today_lists_overdue_first(company, session, say, clock):
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), name="长沙卫浴")
    actor = Actor.of(rep)
    tasks.add_task(session, actor=actor, assignee_id=None, title="寄样品", now=clock())
    tasks.create_task(  # as a timer rule does, two days ago
        session,
        assignee_id=rep.id,
        title="回访报价",
        customer_id=customer.id,
        due_at=clock() - timedelta(days=2),
        now=clock() - timedelta(days=2),
    )
    session.commit()
    reply = say(rep, "#今日#")
    assert reply.splitlines() == [
        "今日待办 2 项（逾期在前）：",
        "1. 【逾期2天】回访报价（长沙卫浴）",
        "2. 寄样品",
    ]
    assert say(company.reps[0][1], "#今日#") == "今天没有待办，也没有到期的计划跟进。"


# -- #客户# ---------------------------------------------------------------------------------------


def test_customer_search_stays_in_scope(company, session, say, clock):
    rep, teammate = company.reps[0]
    mine = make_customer(session, rep, clock(), name="株洲陶瓷甲", company="株洲陶瓷厂")
    make_customer(session, teammate, clock(), name="株洲陶瓷乙")
    make_customer(session, company.reps[1][0], clock(), name="株洲陶瓷丙")
    reply = say(rep, "#客户# 株洲陶瓷")
    assert reply.splitlines()[0] == "找到 1 个客户："
    assert f"{mine.name}（株洲陶瓷厂）" in reply and "乙" not in reply and "丙" not in reply
    assert say(company.managers[0], "#客户# 株洲陶瓷").startswith("找到 2 个客户：")
    assert say(company.boss, "#客户# 株洲陶瓷").startswith("找到 3 个客户：")
    assert say(company.reps[1][1], "#客户# 株洲陶瓷") == "没有找到与「株洲陶瓷」相关的客户。"
    assert say(rep, "#客户#") == "格式：#客户# <关键词>"


# -- #跟进# ---------------------------------------------------------------------------------------


def test_follow_up_is_logged_on_the_customer(company, session, say, clock):
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), name="湘潭建材")
    assert say(rep, "#跟进# 湘潭建材 约了周五看样品") == "已记录对「湘潭建材」的跟进（企微会话）。"
    assert say(rep, "＃跟进＃　湘潭建材　电话　已报价") == "已记录对「湘潭建材」的跟进（电话）。"
    rows = session.scalars(
        select(FollowUp).where(FollowUp.customer_id == customer.id).order_by(FollowUp.id)
    ).all()
    assert [(f.method, f.summary, f.author_id) for f in rows] == [
        ("企微会话", "约了周五看样品", rep.id),
        ("电话", "已报价", rep.id),
    ]


def test_follow_up_outside_scope_reads_like_a_missing_customer(company, session, say, clock):
    theirs = make_customer(session, company.reps[1][0], clock(), name="衡阳水泥")
    rep, manager = company.reps[0][0], company.managers[0]
    for user in (rep, manager):
        for name in ("衡阳水泥", str(theirs.id), "不存在的客户"):
            reply = say(user, f"#跟进# {name} 打过电话")
            assert reply == f"没有找到客户「{name}」，或不在你的权限范围内。"
    assert _follow_ups(session, theirs) == 0
    assert say(company.managers[1], "#跟进# 衡阳水泥 主管回访").startswith("已记录")
    assert say(company.boss, f"#跟进# {theirs.id} 老板回访").startswith("已记录")
    assert _follow_ups(session, theirs) == 2


def test_an_ambiguous_name_lists_the_candidates_in_scope(company, session, say, clock):
    rep = company.reps[0][0]
    first = make_customer(session, rep, clock(), name="张三", company="长沙店")
    second = make_customer(session, rep, clock(), name="张三", company="株洲店")
    make_customer(session, company.reps[0][1], clock(), name="张三", company="别人的")
    reply = say(rep, "#跟进# 张三 回访")
    assert reply.splitlines()[0] == "「张三」对应多个客户，请用编号指定："
    assert f"{first.id}　张三（长沙店）" in reply and f"{second.id}　张三（株洲店）" in reply
    assert "别人的" not in reply
    assert reply.splitlines()[-1] == f"例如：#跟进# {first.id} …"
    assert _follow_ups(session, first) + _follow_ups(session, second) == 0
    assert say(rep, f"#跟进# {second.id} 回访") == "已记录对「张三」的跟进（企微会话）。"
    assert _follow_ups(session, second) == 1
    # A part of a name or company that only one customer in scope has is enough.
    assert say(rep, "#跟进# 株洲店 再次回访") == "已记录对「张三」的跟进（企微会话）。"
    assert _follow_ups(session, second) == 2


def test_a_customer_is_named_by_phone(company, session, say, clock):
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), name="张三", phone="13800138000")
    make_customer(session, rep, clock(), name="张三", phone="13900139000")
    assert say(rep, "#跟进# 13800138000 电话 已报价") == "已记录对「张三」的跟进（电话）。"
    assert _follow_ups(session, customer) == 1
    assert say(company.reps[0][1], "#跟进# 13800138000 回访").startswith("没有找到客户")


@pytest.mark.parametrize("text", ["#跟进#", "#跟进# 张三", "#跟进#   张三   "])
def test_follow_up_needs_a_customer_and_content(company, say, text):
    assert say(company.reps[0][0], text) == "格式：#跟进# <客户> <内容>"


def test_a_follow_up_refused_by_the_rules_writes_nothing(company, session, say, clock):
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), name="岳阳瓷砖")
    reply = say(rep, "#跟进# 岳阳瓷砖 " + "长" * 5001)
    assert reply == "跟进内容不能超过5000字"
    assert _follow_ups(session, customer) == 0


# -- #领取# ---------------------------------------------------------------------------------------


def _released(session, owner, clock, name):
    customer = make_customer(session, owner, clock(), name=name)
    pool.release(session, customer=customer, reason="测试释放", now=clock())
    session.commit()
    return customer


def test_a_rep_claims_from_their_teams_pool(company, session, say, clock):
    rep = company.reps[0][0]
    ours = _released(session, company.reps[0][1], clock, "公海客户甲")
    theirs = _released(session, company.reps[1][0], clock, "公海客户乙")
    owned = make_customer(session, company.reps[0][1], clock(), name="有主客户")
    assert say(rep, "#领取# 公海客户甲") == "已从公海领取「公海客户甲」，请尽快跟进。"
    session.refresh(ours)
    assert ours.owner_id == rep.id
    for name in ("公海客户乙", "有主客户", "公海客户甲"):
        assert say(rep, f"#领取# {name}") == f"没有找到客户「{name}」，或不在你的权限范围内。"
    session.refresh(theirs)
    session.refresh(owned)
    assert theirs.owner_id is None and owned.owner_id == company.reps[0][1].id
    assert say(rep, "#领取#") == "格式：#领取# <客户>"


def test_managers_do_not_claim(company, session, say, clock):
    customer = _released(session, company.reps[0][0], clock, "公海客户")
    for user in (company.managers[0], company.boss):
        assert say(user, "#领取# 公海客户") == (
            "「#领取#」只有销售可以使用。发送 #帮助# 查看你可用的命令。"
        )
    session.refresh(customer)
    assert customer.owner_id is None


def test_the_pools_refusals_answer_through_the_bot(company, session, say, clock):
    rep = company.reps[0][0]
    customer = _released(session, company.reps[0][1], clock, "公海客户")
    assert say(rep, "#领取# 公海客户").startswith("已从公海领取")
    pool.release(session, customer=customer, reason="放回公海", now=clock())
    session.commit()
    reply = say(rep, "#领取# 公海客户")
    assert reply.startswith("该客户从你名下释放未满") and reply.endswith("后才能领回")
    session.refresh(customer)
    assert customer.owner_id is None
    claims = session.scalar(
        select(func.count()).select_from(PoolEvent).where(PoolEvent.kind == "claim")
    )
    assert claims == 1


# -- #分配# ---------------------------------------------------------------------------------------


def test_a_manager_assigns_within_the_team(company, session, say, clock):
    manager = company.managers[0]
    rep, teammate = company.reps[0]
    owned = make_customer(session, rep, clock(), name="益阳门窗")
    pooled = _released(session, rep, clock, "常德石材")
    assert say(manager, f"#分配# 益阳门窗 {teammate.name}") == (
        f"已把「益阳门窗」分配给{teammate.name}。"
    )
    assert say(manager, f"#分配# 常德石材 {teammate.wecom_userid}") == (
        f"已把「常德石材」分配给{teammate.name}。"
    )
    session.refresh(owned)
    session.refresh(pooled)
    assert owned.owner_id == teammate.id and pooled.owner_id == teammate.id
    assert (
        say(manager, f"#分配# 益阳门窗 {teammate.name}")
        == f"「益阳门窗」已经由{teammate.name}负责。"
    )


def test_assigning_outside_the_managers_team_is_refused(company, session, say, clock):
    manager = company.managers[0]
    other_rep = company.reps[1][0]
    ours = make_customer(session, company.reps[0][0], clock(), name="本组客户")
    theirs = make_customer(session, other_rep, clock(), name="外组客户")
    assert say(manager, f"#分配# 本组客户 {other_rep.name}") == (
        f"你管理的销售中没有「{other_rep.name}」。"
    )
    assert say(manager, f"#分配# 外组客户 {company.reps[0][1].name}") == (
        "没有找到客户「外组客户」，或不在你的权限范围内。"
    )
    assert say(manager, "#分配# 本组客户") == "格式：#分配# <客户> <成员>"
    session.refresh(ours)
    session.refresh(theirs)
    assert ours.owner_id == company.reps[0][0].id and theirs.owner_id == other_rep.id
    # The boss reaches every team.
    assert say(company.boss, f"#分配# 外组客户 {company.reps[1][1].name}").startswith("已把")


def test_reps_cannot_assign(company, session, say, clock):
    rep, teammate = company.reps[0]
    customer = make_customer(session, rep, clock(), name="我的客户")
    assert say(rep, f"#分配# 我的客户 {teammate.name}") == (
        "「#分配#」只有主管、老板可以使用。发送 #帮助# 查看你可用的命令。"
    )
    session.refresh(customer)
    assert customer.owner_id == rep.id


# -- #加急# ---------------------------------------------------------------------------------------


def _order(session, owner, clock, number):
    customer = make_customer(session, owner, clock(), name=f"{number}的客户")
    order = orders.create_order(
        session,
        actor=Actor.of(owner),
        number=number,
        customer_id=customer.id,
        amount=1000,
        now=clock(),
    )
    session.commit()
    return order


def test_expedite_by_role_and_scope(company, session, say, clock):
    ours = _order(session, company.reps[0][0], clock, "SO-1")
    theirs = _order(session, company.reps[1][0], clock, "SO-2")
    rep_reply = say(company.reps[0][0], "#加急# SO-1 客户工地周五开工")
    assert rep_reply == "「#加急#」只有主管、老板可以使用。发送 #帮助# 查看你可用的命令。"
    # Another team's order reads like a missing one.
    assert say(company.managers[0], "#加急# SO-2 客户催") == "订单不存在或无权访问"
    assert say(company.managers[0], "#加急# SO-404 客户催") == "订单不存在或无权访问"
    for order in (ours, theirs):
        session.refresh(order)
        assert order.expedited_at is None
    assert say(company.managers[0], "#加急# so-1 客户工地周五开工") == (
        "订单 SO-1 已加急：已跳过「主管审批」「财务审核」；还需「仓库排期」，已通知王总。"
    )
    assert say(company.managers[0], "#加急# SO-1 再催一次").startswith("订单 SO-1 已于")
    # The boss expediting is the one left to decide: nobody else to tell.
    assert say(company.boss, "#加急# SO-2 老板要求").endswith("还需「仓库排期」，无需通知他人。")


def test_expedite_that_leaves_no_step_says_the_order_is_approved(company, session, say, clock):
    orders.set_flow(
        session,
        actor=Actor.of(company.boss),
        nodes=[orders.NodeSpec("主管审批", "manager", skippable=True)],
        now=clock(),
    )
    _order(session, company.reps[0][0], clock, "SO-1")
    assert say(company.managers[0], "#加急# SO-1 老客户加单") == (
        "订单 SO-1 已加急：已跳过「主管审批」，订单已审批通过。"
    )


@pytest.mark.parametrize("text", ["#加急#", "#加急# SO-1", "#加急#   SO-1   "])
def test_expedite_needs_an_order_and_a_reason(company, session, say, clock, text):
    order = _order(session, company.reps[0][0], clock, "SO-1")
    assert say(company.managers[0], text) == "格式：#加急# <订单号> <原因>"
    session.refresh(order)
    assert order.expedited_at is None


def test_today_is_each_persons_own_list(company, session, say, clock):
    for user in (company.managers[0], company.boss):
        tasks.add_task(session, actor=Actor.of(user), assignee_id=None, title="看周报", now=clock())
        session.commit()
        assert say(user, "#今日#").splitlines() == ["今日待办 1 项（逾期在前）：", "1. 看周报"]
