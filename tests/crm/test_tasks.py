"""Tasks (待办) and 我的今日任务: Beijing business days, urgency order, scope, snooze, reassign."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from crm import calendar, tasks
from crm.actors import Actor
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from models import AuditEntry
from tests.factories import make_company, make_customer

# The session clock starts at 2026-03-02 01:30 UTC, which is 09:30 on Monday in Beijing;
# that business day ends at 16:00 UTC.
END_OF_TODAY = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


@pytest.fixture
def company(session):
    return make_company(session)


def _task(session, assignee, now, **values):
    task = tasks.create_task(session, assignee_id=assignee.id, now=now, **values)
    session.commit()
    return task


def _planned(session, owner, now, on: date, grade: str | None = None, **values):
    customer = make_customer(session, owner, now, **values)
    customer.next_follow_up_on = on
    customer.grade = grade
    session.commit()
    return customer


def test_the_business_day_is_beijings(clock):
    start, end = calendar.day_bounds(clock())
    assert (start, end) == (END_OF_TODAY - timedelta(days=1), END_OF_TODAY)
    assert calendar.local_date(datetime(2026, 3, 1, 17, 0, tzinfo=UTC)) == date(2026, 3, 2)


def test_today_counts_due_and_overdue_by_the_local_day(company, session, clock):
    rep = company.reps[0][0]
    now = clock()
    _task(session, rep, now, title="今晚截止", due_at=END_OF_TODAY - timedelta(minutes=1))
    _task(session, rep, now, title="明天凌晨", due_at=END_OF_TODAY)
    _task(session, rep, now, title="北京时间今天一点", due_at=datetime(2026, 3, 1, 17, tzinfo=UTC))
    _task(session, rep, now, title="昨晚十一点", due_at=datetime(2026, 3, 1, 15, tzinfo=UTC))
    _planned(session, rep, now, date(2026, 2, 27), name="上周五该回访")
    _planned(session, rep, now, date(2026, 3, 3), name="明天回访")

    items = tasks.today(session, actor=Actor.of(rep), now=now)
    assert [(i.title, i.overdue_days) for i in items] == [
        ("按计划跟进：上周五该回访", 3),
        ("昨晚十一点", 1),
        ("北京时间今天一点", 0),
        ("今晚截止", 0),
    ]


def test_today_puts_a_customers_first_when_equally_late_then_lower_ids(company, session, clock):
    rep = company.reps[0][0]
    now = clock()
    today = calendar.local_date(now)
    c_grade = _planned(session, rep, now, today, grade="C", name="丙级")
    first_a = _planned(session, rep, now, today, grade="A", name="甲级一")
    ungraded = _planned(session, rep, now, today, grade=None, name="未评级")
    second_a = _planned(session, rep, now, today, grade="A", name="甲级二")
    overdue_d = _planned(session, rep, now, today - timedelta(days=1), grade="D", name="丁级")

    items = tasks.today(session, actor=Actor.of(rep), now=now)
    assert [i.customer.id for i in items] == [
        overdue_d.id,  # late beats grade
        first_a.id,
        second_a.id,
        c_grade.id,
        ungraded.id,
    ]
    assert {i.kind for i in items} == {"follow_up"}


def test_today_holds_only_the_actors_open_work(company, session, clock):
    rep, colleague = company.reps[0]
    now = clock()
    done = _task(session, rep, now, title="已完成", due_at=now)
    tasks.complete(session, actor=Actor.of(rep), task_id=done.id, now=now)
    _task(session, colleague, now, title="同事的", due_at=now)
    _planned(session, colleague, now, calendar.local_date(now), name="同事的客户")
    mine = _task(session, rep, now, title="我的", due_at=now)
    session.commit()
    items = tasks.today(session, actor=Actor.of(rep), now=now)
    assert [(i.kind, i.task.id) for i in items] == [("task", mine.id)]


def test_each_role_lists_the_tasks_it_may_see(company, session, clock):
    (rep, colleague), (other_rep, _) = company.reps
    now = clock()
    mine = _task(session, rep, now, title="我的")
    copied = _task(session, colleague, now, title="抄送我", cc_id=rep.id)
    colleagues = _task(session, colleague, now, title="同事的")
    other_team = _task(session, other_rep, now, title="二组的")

    def seen(user):
        return {t.id for t in tasks.list_tasks(session, actor=Actor.of(user)).items}

    assert seen(rep) == {mine.id, copied.id}
    assert seen(company.managers[0]) == {mine.id, copied.id, colleagues.id}
    assert seen(company.boss) == {mine.id, copied.id, colleagues.id, other_team.id}
    with pytest.raises(NotFound):
        tasks.complete(session, actor=Actor.of(rep), task_id=other_team.id, now=now)
    with pytest.raises(NotFound):
        tasks.get_task(session, actor=Actor.of(company.managers[0]), task_id=other_team.id)


def test_a_copied_rep_sees_a_task_but_leaves_closing_it_to_the_assignee(company, session, clock):
    rep, colleague = company.reps[0]
    copied = _task(session, colleague, clock(), title="抄送我", cc_id=rep.id)
    with pytest.raises(Forbidden):
        tasks.complete(session, actor=Actor.of(rep), task_id=copied.id, now=clock())
    with pytest.raises(Forbidden):
        tasks.snooze(session, actor=Actor.of(rep), task_id=copied.id, hours=2, now=clock())
    done = tasks.complete(session, actor=Actor.of(colleague), task_id=copied.id, now=clock())
    assert (done.status, done.done_at) == ("done", clock())


def test_snooze_only_moves_a_task_later_and_is_kept_in_the_audit_trail(company, session, clock):
    rep = company.reps[0][0]
    due = clock() + timedelta(days=2)
    task = _task(session, rep, clock(), title="回访", due_at=due)
    me = Actor.of(rep)
    with pytest.raises(Invalid):  # a snooze that would pull the task closer is no snooze
        tasks.snooze(session, actor=me, task_id=task.id, until=due - timedelta(days=1), now=clock())
    with pytest.raises(Invalid):
        tasks.snooze(session, actor=me, task_id=task.id, until=due, hours=1, now=clock())
    with pytest.raises(Invalid):
        tasks.snooze(session, actor=me, task_id=task.id, hours=24 * 100, now=clock())
    snoozed = tasks.snooze(session, actor=me, task_id=task.id, hours=24, now=clock())
    assert snoozed.due_at == due + timedelta(hours=24)  # from the due time, not from now
    manager = Actor.of(company.managers[0])
    later = due + timedelta(days=5)
    assert tasks.snooze(session, actor=manager, task_id=task.id, until=later, now=clock()).due_at
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.entity == "task").order_by(AuditEntry.id)
    ).all()
    assert [(e.action, e.actor_id) for e in entries] == [
        ("snooze", rep.id),
        ("snooze", company.managers[0].id),
    ]
    assert datetime.fromisoformat(entries[0].before["due_at"]) == due
    tasks.complete(session, actor=me, task_id=task.id, now=clock())
    with pytest.raises(Conflict) as refused:
        tasks.snooze(session, actor=me, task_id=task.id, hours=1, now=clock())
    assert refused.value.code == "task_closed"


def test_an_overdue_task_snoozed_by_hours_counts_from_now(company, session, clock):
    rep = company.reps[0][0]
    task = _task(session, rep, clock(), title="逾期", due_at=clock() - timedelta(days=3))
    snoozed = tasks.snooze(session, actor=Actor.of(rep), task_id=task.id, hours=4, now=clock())
    assert snoozed.due_at == clock() + timedelta(hours=4)


def test_managers_reassign_within_their_team_and_never_to_an_inactive_user(company, session, clock):
    (rep, colleague), (other_rep, _) = company.reps
    task = _task(session, rep, clock(), title="送样品")
    manager = Actor.of(company.managers[0])
    with pytest.raises(Forbidden):
        tasks.reassign(
            session,
            actor=Actor.of(rep),
            task_id=task.id,
            assignee_id=colleague.id,
            now=clock(),
            reason="x",
        )
    with pytest.raises(NotFound):
        tasks.reassign(
            session,
            actor=manager,
            task_id=task.id,
            assignee_id=other_rep.id,
            now=clock(),
            reason="x",
        )
    colleague.is_active = False
    session.commit()
    with pytest.raises(Invalid):
        tasks.reassign(
            session,
            actor=manager,
            task_id=task.id,
            assignee_id=colleague.id,
            now=clock(),
            reason="x",
        )
    colleague.is_active = True
    session.commit()
    moved = tasks.reassign(
        session,
        actor=manager,
        task_id=task.id,
        assignee_id=colleague.id,
        now=clock(),
        reason="对接人变了",
    )
    assert moved.assignee.id == colleague.id
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "reassign")).one()
    assert (entry.before, entry.after, entry.reason) == (
        {"assignee_id": rep.id},
        {"assignee_id": colleague.id},
        "对接人变了",
    )
    boss = Actor.of(company.boss)
    across = tasks.reassign(
        session, actor=boss, task_id=task.id, assignee_id=other_rep.id, now=clock(), reason="调岗"
    )
    assert across.assignee_id == other_rep.id


def test_who_may_add_a_task_for_whom_and_about_which_customer(company, session, clock):
    (rep, colleague), (other_rep, _) = company.reps
    theirs = make_customer(session, colleague, clock())
    mine = make_customer(session, rep, clock())
    me = Actor.of(rep)
    with pytest.raises(Forbidden):
        tasks.add_task(session, actor=me, assignee_id=colleague.id, title="帮忙", now=clock())
    with pytest.raises(NotFound):  # a customer out of scope is not there at all
        tasks.add_task(
            session, actor=me, assignee_id=None, title="看看", customer_id=theirs.id, now=clock()
        )
    with pytest.raises(Invalid):
        tasks.add_task(session, actor=me, assignee_id=None, title="   ", now=clock())
    own = tasks.add_task(
        session, actor=me, assignee_id=None, title="报价", customer_id=mine.id, now=clock()
    )
    assert (own.assignee_id, own.created_by, own.origin) == (rep.id, rep.id, "manual")

    manager = Actor.of(company.managers[0])
    given = tasks.add_task(
        session, actor=manager, assignee_id=colleague.id, title="跟", now=clock()
    )
    assert (given.assignee_id, given.created_by) == (colleague.id, company.managers[0].id)
    with pytest.raises(NotFound):
        tasks.add_task(session, actor=manager, assignee_id=other_rep.id, title="跟", now=clock())
    boss = Actor.of(company.boss)
    assert tasks.add_task(session, actor=boss, assignee_id=other_rep.id, title="跟", now=clock())


def test_rules_create_tasks_with_their_origin_and_no_author(company, session, clock):
    rep = company.reps[0][0]
    task = tasks.create_task(
        session,
        assignee_id=rep.id,
        title="报价7天未跟进",
        now=clock(),
        due_at=clock() + timedelta(hours=24),
        cc_id=company.managers[0].id,
        origin="rule:报价跟进提醒",
    )
    assert (task.status, task.origin, task.created_by, task.created_at) == (
        "open",
        "rule:报价跟进提醒",
        None,
        clock(),
    )


def test_a_manager_copied_on_another_teams_task_may_not_move_it(company, session, clock):
    other_rep = company.reps[1][0]
    copied = _task(session, other_rep, clock(), title="二组的事", cc_id=company.managers[0].id)
    manager = Actor.of(company.managers[0])
    assert tasks.get_task(session, actor=manager, task_id=copied.id).id == copied.id
    with pytest.raises(Forbidden):
        tasks.complete(session, actor=manager, task_id=copied.id, now=clock())
    with pytest.raises(Forbidden):
        tasks.reassign(
            session,
            actor=manager,
            task_id=copied.id,
            assignee_id=company.reps[0][0].id,
            now=clock(),
            reason="x",
        )
    done = tasks.complete(
        session, actor=Actor.of(company.managers[1]), task_id=copied.id, now=clock()
    )
    assert done.status == "done"
