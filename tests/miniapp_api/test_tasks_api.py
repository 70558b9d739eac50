"""Tasks and 我的今日任务 through the API: urgency order, done, snooze, reassign, scope."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from crm import followups, tasks
from crm.actors import Actor
from models import AuditEntry, Task
from tests.factories import make_company, make_customer, sign_in

MISSING_TASK = 2_000_000_000


@pytest.fixture
def company(session):
    return make_company(session)


def test_today_lists_overdue_first_then_a_customers_then_the_rest(
    company, client, session, fake_wecom, clock, runtime
):
    rep = company.reps[0][0]
    now = clock()
    hot = make_customer(session, rep, now, name="甲", inquiry_count=3, has_budget=True)
    cold = make_customer(session, rep, now, name="乙")
    tomorrow = make_customer(session, rep, now, name="丙")
    for customer, days in ((hot, 0), (cold, 0), (tomorrow, 1)):
        followups.log_follow_up(
            session,
            actor=Actor.of(rep),
            customer_id=customer.id,
            method="电话",
            summary="约好回访",
            now=now,
            store=runtime.store,
            max_attachment_bytes=10**6,
            next_follow_up_on=(now + timedelta(hours=8) + timedelta(days=days)).date(),
        )
    late = tasks.create_task(
        session,
        assignee_id=rep.id,
        title="补资料",
        due_at=now - timedelta(days=2),
        now=now,
        customer_id=cold.id,
    )
    tasks.create_task(
        session, assignee_id=rep.id, title="下周的事", due_at=now + timedelta(days=7), now=now
    )
    tasks.create_task(
        session, assignee_id=company.reps[0][1].id, title="别人的", due_at=now, now=now
    )
    session.commit()

    headers = sign_in(client, fake_wecom, rep)
    items = client.get("/api/v1/me/today", headers=headers).json["items"]
    assert [(i["kind"], i["title"], i["overdue_days"]) for i in items] == [
        ("task", "补资料", 2),
        ("follow_up", "按计划跟进：甲", 0),
        ("follow_up", "按计划跟进：乙", 0),
    ]
    assert items[0]["task_id"] == late.id and items[1]["customer"]["grade"] == "A"


def test_a_rep_completes_and_snoozes_own_tasks_and_a_manager_reassigns(
    company, client, session, fake_wecom, clock
):
    rep, colleague = company.reps[0]
    headers = sign_in(client, fake_wecom, rep)
    created = client.post(
        "/api/v1/tasks",
        headers=headers,
        json={"title": "给张总送样品", "due_at": clock().isoformat()},
    )
    assert created.status_code == 201 and created.json["assignee"]["id"] == rep.id
    task_id = created.json["id"]

    snoozed = client.post(f"/api/v1/tasks/{task_id}/snooze", headers=headers, json={"hours": 24})
    assert datetime.fromisoformat(snoozed.json["due_at"]) == clock() + timedelta(hours=24)
    assert (
        client.post(f"/api/v1/tasks/{task_id}/snooze", headers=headers, json={}).json["error"][
            "field"
        ]
        == "until"
    )

    manager_headers = sign_in(client, fake_wecom, company.managers[0])
    moved = client.post(
        f"/api/v1/tasks/{task_id}/reassign",
        headers=manager_headers,
        json={"assignee_id": colleague.id, "reason": "张总由他对接"},
    )
    assert moved.json["assignee"]["id"] == colleague.id
    assert client.post(f"/api/v1/tasks/{task_id}/done", headers=headers).status_code == 404

    colleague_headers = sign_in(client, fake_wecom, colleague)
    done = client.post(f"/api/v1/tasks/{task_id}/done", headers=colleague_headers)
    assert done.json["status"] == "done"
    again = client.post(f"/api/v1/tasks/{task_id}/done", headers=colleague_headers)
    assert (again.status_code, again.json["error"]["code"]) == (409, "task_closed")
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.entity == "task").order_by(AuditEntry.id)
    ).all()
    assert actions == ["snooze", "reassign", "done"]


def test_a_task_outside_scope_answers_like_a_missing_one(
    company, client, session, fake_wecom, clock
):
    other_team_rep = company.reps[1][0]
    hidden = tasks.create_task(
        session, assignee_id=other_team_rep.id, title="他组的事", now=clock()
    )
    session.commit()
    for user in (company.reps[0][0], company.managers[0]):
        headers = sign_in(client, fake_wecom, user)
        for verb, body in (
            ("done", None),
            ("snooze", {"hours": 1}),
            ("reassign", {"assignee_id": user.id, "reason": "x"}),
        ):
            seen = client.post(f"/api/v1/tasks/{hidden.id}/{verb}", headers=headers, json=body)
            missing = client.post(
                f"/api/v1/tasks/{MISSING_TASK}/{verb}", headers=headers, json=body
            )
            assert (seen.status_code, seen.json) == (missing.status_code, missing.json), verb
            assert seen.status_code in (403, 404)
        listed = client.get("/api/v1/tasks", headers=headers).json["items"]
        assert hidden.id not in {t["id"] for t in listed}
    session.expire_all()
    assert session.get(Task, hidden.id).status == "open"
    boss = sign_in(client, fake_wecom, company.boss)
    assert hidden.id in {t["id"] for t in client.get("/api/v1/tasks", headers=boss).json["items"]}


def test_reps_add_tasks_only_for_themselves_and_about_their_customers(
    company, client, session, fake_wecom, clock
):
    rep, colleague = company.reps[0]
    theirs = make_customer(session, colleague, clock())
    headers = sign_in(client, fake_wecom, rep)
    for_colleague = client.post(
        "/api/v1/tasks", headers=headers, json={"title": "帮忙", "assignee_id": colleague.id}
    )
    assert for_colleague.status_code == 403
    about_theirs = client.post(
        "/api/v1/tasks", headers=headers, json={"title": "看看", "customer_id": theirs.id}
    )
    assert about_theirs.status_code == 404
