"""Event triggers: the seed's quote rule, edits and stage moves, and chains that stop."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm import customer_changes, followups
from crm.actors import Actor
from crm.rules import publisher
from models import AuditEntry, Customer, CustomerTag, OutboxMessage, StageChange, Task
from tests.factories import make_company, make_customer

PDF = b"%PDF-1.4 quote"


@pytest.fixture
def company(session):
    return make_company(session)


def _log(session, runtime, clock, rep, customer, summary, files=()):
    follow_up = followups.log_follow_up(
        session,
        actor=Actor.of(rep),
        customer_id=customer.id,
        method="微信",
        summary=summary,
        now=clock(),
        store=runtime.store,
        max_attachment_bytes=10**6,
        uploads=[followups.Upload(name, data) for name, data in files],
    )
    session.commit()
    return follow_up


def _publish(session, boss, kind, document, clock):
    draft = publisher.create_draft(
        session, actor=Actor.of(boss), kind=kind, document=document, note=None, now=clock()
    )
    publisher.publish(session, actor=Actor.of(boss), draft_id=draft.id, reason="测试", now=clock())
    session.commit()


def test_a_quote_sent_with_a_pdf_moves_to_quote_and_tasks_and_messages_the_manager(
    company, session, runtime, clock
):
    rep, manager = company.reps[0][0], company.managers[0]
    customer = make_customer(session, rep, clock(), stage="意向", name="长沙卫浴城")

    _log(
        session, runtime, clock, rep, customer, "今天已发送正式报价单，等回复", [("报价.PDF", PDF)]
    )

    session.expire_all()
    assert session.get(Customer, customer.id).stage == "报价"
    change = session.scalars(
        select(StageChange).where(StageChange.customer_id == customer.id).order_by(StageChange.id)
    ).all()[-1]
    assert (change.from_stage, change.to_stage, change.actor_id) == ("意向", "报价", None)
    assert change.cause == "规则「正式报价单已发送」"
    task = session.scalars(select(Task)).one()
    assert (task.assignee_id, task.customer_id) == (manager.id, customer.id)
    assert task.title == "审核报价：长沙卫浴城" and task.origin == "rule:正式报价单已发送"
    assert task.due_at == clock() + timedelta(hours=24)
    message = session.scalars(select(OutboxMessage)).one()
    assert (message.recipient_id, message.touser) == (manager.id, manager.wecom_userid)
    assert rep.name in message.content["description"]
    assert "长沙卫浴城" in message.content["description"]


@pytest.mark.parametrize(
    ("stage", "summary", "files"),
    [
        ("意向", "已发送正式报价单", []),  # no PDF
        ("意向", "已发送正式报价单", [("现场.jpg", b"\xff\xd8\xff photo")]),  # not a PDF
        ("意向", "发了报价", [("报价.pdf", PDF)]),  # the text does not say it
        ("潜在", "已发送正式报价单", [("报价.pdf", PDF)]),  # not yet 意向
    ],
)
def test_the_quote_rule_needs_every_part_of_its_condition(
    stage, summary, files, company, session, runtime, clock
):
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), stage=stage)
    _log(session, runtime, clock, rep, customer, summary, files)
    session.expire_all()
    assert session.get(Customer, customer.id).stage == stage
    assert session.scalars(select(Task)).all() == []
    assert session.scalars(select(OutboxMessage)).all() == []


def test_an_edit_triggers_on_the_fields_it_changed_and_regrades(company, session, clock):
    rep = company.reps[0][0]
    _publish(
        session,
        company.boss,
        "triggers",
        {
            "rules": [
                {
                    "name": "预算明确打标签",
                    "on": "customer_updated",
                    "when": {"fact": "changed_fields", "op": "has", "value": "has_budget"},
                    "do": [{"action": "add_tag", "tag": "有预算"}],
                }
            ]
        },
        clock,
    )
    customer = make_customer(session, rep, clock(), inquiry_count=3)
    assert customer.grade == "C"
    customer_changes.update_customer(
        session,
        actor=Actor.of(rep),
        customer_id=customer.id,
        values={"region": "长沙"},
        now=clock(),
    )
    assert session.scalars(select(CustomerTag)).all() == []
    customer_changes.update_customer(
        session,
        actor=Actor.of(rep),
        customer_id=customer.id,
        values={"has_budget": True},
        now=clock(),
    )
    session.commit()
    session.expire_all()
    assert [t.tag for t in session.scalars(select(CustomerTag))] == ["有预算"]
    assert session.get(Customer, customer.id).grade == "A"  # 询价≥3 且有预算, at once
    grade_entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "grade", AuditEntry.entity_id == customer.id)
    ).one()
    assert (grade_entry.before, grade_entry.after) == ({"grade": "C"}, {"grade": "A"})
    assert grade_entry.reason == "默认分级规则「询价≥3且有明确预算」"


def test_rules_that_trigger_each_other_stop(company, session, clock):
    rep = company.reps[0][0]
    _publish(
        session,
        company.boss,
        "triggers",
        {
            "rules": [
                {
                    "name": "退回意向",
                    "on": "stage_changed",
                    "when": {"fact": "stage", "op": "==", "value": "报价"},
                    "do": [{"action": "set_stage", "stage": "意向"}],
                },
                {
                    "name": "再进报价",
                    "on": "stage_changed",
                    "when": {"fact": "stage", "op": "==", "value": "意向"},
                    "do": [{"action": "set_stage", "stage": "报价"}],
                },
            ]
        },
        clock,
    )
    customer = make_customer(session, rep, clock(), stage="意向")
    customer_changes.move_stage(
        session,
        actor=Actor.of(rep),
        customer_id=customer.id,
        to_stage="报价",
        now=clock(),
        cause="",
    )
    session.commit()
    moves = session.scalars(
        select(StageChange.to_stage)
        .where(StageChange.customer_id == customer.id)
        .order_by(StageChange.id)
    ).all()
    # The rep's move, then each rule once: the loop is cut, not run forever.
    assert moves == ["意向", "报价", "意向", "报价"]


def test_a_manager_set_grade_stands_until_the_next_event(company, session, clock):
    rep, manager = company.reps[0][0], company.managers[0]
    customer = make_customer(session, rep, clock())
    customer_changes.update_customer(
        session, actor=Actor.of(manager), customer_id=customer.id, values={}, grade="B", now=clock()
    )
    session.commit()
    assert session.get(Customer, customer.id).grade == "B"
    customer_changes.update_customer(
        session,
        actor=Actor.of(rep),
        customer_id=customer.id,
        values={"region": "株洲"},
        now=clock(),
    )
    assert session.get(Customer, customer.id).grade == "C"


def test_rules_about_tags_and_custom_fields_see_them_on_an_event(company, session, clock):
    from crm import custom_fields

    boss = Actor.of(company.boss)
    custom_fields.define_field(
        session,
        actor=boss,
        key="area",
        label="厂房面积",
        kind="number",
        options=[],
        is_required=False,
        is_tag_dimension=False,
        now=clock(),
    )
    _publish(
        session,
        company.boss,
        "grading",
        {
            "rules": [
                {
                    "name": "老客户",
                    "when": {"fact": "tags", "op": "has", "value": "老客户"},
                    "grade": "B",
                },
                {
                    "name": "大厂房",
                    "when": {"fact": "custom.area", "op": ">=", "value": 5000},
                    "grade": "A",
                },
            ],
            "default": "D",
        },
        clock,
    )
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock())
    assert customer.grade == "D"
    customer_changes.update_customer(
        session,
        actor=Actor.of(rep),
        customer_id=customer.id,
        values={},
        tags=["老客户"],
        now=clock(),
    )
    assert session.get(Customer, customer.id).grade == "B"
    customer_changes.update_customer(
        session,
        actor=Actor.of(rep),
        customer_id=customer.id,
        values={},
        tags=[],
        custom_values={"area": 6000},
        now=clock(),
    )
    assert session.get(Customer, customer.id).grade == "A"


def test_a_teams_own_triggers_and_grading_apply_to_its_customers_only(
    company, session, runtime, clock
):
    manager = Actor.of(company.managers[1])
    for kind, document in (
        ("triggers", {"rules": []}),  # team 1 turns the quote trigger off
        ("grading", {"rules": [], "default": "D"}),
    ):
        draft = publisher.create_draft(
            session, actor=manager, kind=kind, document=document, note=None, now=clock()
        )
        publisher.publish(session, actor=manager, draft_id=draft.id, reason="二组", now=clock())
    session.commit()
    ours, theirs = company.reps[0][0], company.reps[1][0]
    customers = {
        rep.id: make_customer(session, rep, clock(), stage="意向", inquiry_count=3, has_budget=True)
        for rep in (ours, theirs)
    }
    for rep in (ours, theirs):
        _log(
            session, runtime, clock, rep, customers[rep.id], "已发送正式报价单", [("报价.pdf", PDF)]
        )

    session.expire_all()
    mine, other = (session.get(Customer, customers[rep.id].id) for rep in (ours, theirs))
    assert (mine.stage, mine.grade) == ("报价", "A")  # the company's rules
    assert (other.stage, other.grade) == ("意向", "D")  # team 1's own
