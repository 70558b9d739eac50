"""Tasks (待办) and 我的今日任务: what a person has to do, most urgent first.

A rep sees the tasks assigned or copied to them, a manager their team's, the boss all; a task
outside that answers NotFound, like a customer outside scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, true
from sqlalchemy.orm import Session, joinedload

from crm import audit, calendar
from crm.actors import Actor, customer_scope, user_scope
from crm.customers import get_customer
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from crm.text import check_text
from models import Customer, Task, User
from models.tasks import TaskStatus
from models.users import Role

MAX_PAGE_SIZE = 100
MAX_SNOOZE_DAYS = 90
TODAY_LIMIT = 200
# A customers are called first when two things are equally late.
_GRADE_ORDER = {"A": 0, "B": 1, "C": 2, "D": 3}


@dataclass
class TaskPage:
    items: list[Task]
    total: int
    page: int
    page_size: int


@dataclass
class TodayItem:
    """One thing to do today: an open task, or a planned follow-up that is due."""

    kind: str  # task / follow_up
    title: str
    due_at: datetime | None
    overdue_days: int  # 0: due today (or undated)
    customer: Customer | None
    task: Task | None = None


def create_task(
    session: Session,
    *,
    assignee_id: int,
    title: str,
    now: datetime,
    customer_id: int | None = None,
    detail: str | None = None,
    due_at: datetime | None = None,
    cc_id: int | None = None,
    origin: str = "manual",
    created_by: int | None = None,
) -> Task:
    """Add a task (rules call this directly; people go through `add_task`)."""
    task = Task(
        assignee_id=assignee_id,
        cc_id=cc_id,
        customer_id=customer_id,
        title=title,
        detail=detail,
        due_at=due_at,
        status=TaskStatus.OPEN,
        origin=origin,
        created_by=created_by,
        created_at=now,
    )
    session.add(task)
    session.flush()
    return task


def task_scope(actor: Actor) -> ColumnElement[bool]:
    """The WHERE clause limiting tasks to those the actor may see."""
    if actor.role is Role.BOSS:
        return true()
    if actor.role is Role.MANAGER:
        team = select(User.id).where(user_scope(actor))
        return or_(Task.assignee_id.in_(team), Task.cc_id == actor.user_id)
    return or_(Task.assignee_id == actor.user_id, Task.cc_id == actor.user_id)


def add_task(
    session: Session,
    *,
    actor: Actor,
    assignee_id: int | None,
    title: str,
    now: datetime,
    customer_id: int | None = None,
    detail: str | None = None,
    due_at: datetime | None = None,
) -> Task:
    """A person adds a task: a rep for themselves, a manager for their team, the boss for anyone."""
    assignee = _assignee(session, actor, assignee_id or actor.user_id)
    if customer_id is not None:
        get_customer(session, actor=actor, customer_id=customer_id)
    if due_at is not None and due_at < now - timedelta(days=1):
        raise Invalid("截止时间不能早于昨天", field="due_at")
    return create_task(
        session,
        assignee_id=assignee.id,
        title=_clean_title(title),
        detail=check_text(detail, field="detail").strip() or None if detail else None,
        due_at=due_at,
        customer_id=customer_id,
        origin="manual",
        created_by=actor.user_id,
        now=now,
    )


def list_tasks(
    session: Session,
    *,
    actor: Actor,
    status: str | None = TaskStatus.OPEN,
    assignee_id: int | None = None,
    page: int = 1,
    page_size: int = 20,
) -> TaskPage:
    """Tasks in scope, soonest due first (undated last)."""
    conditions: list[Any] = [task_scope(actor)]
    if status:
        conditions.append(Task.status == status)
    if assignee_id is not None:
        conditions.append(Task.assignee_id == assignee_id)
    total = session.scalar(select(func.count()).select_from(Task).where(*conditions)) or 0
    page_size = min(max(page_size, 1), MAX_PAGE_SIZE)
    rows = session.scalars(
        _with_people(select(Task).where(*conditions))
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id)
        .limit(page_size)
        .offset((max(page, 1) - 1) * page_size)
    )
    return TaskPage(items=list(rows), total=total, page=page, page_size=page_size)


def get_task(session: Session, *, actor: Actor, task_id: int, for_update: bool = False) -> Task:
    """One task in scope, or NotFound."""
    query = select(Task).where(Task.id == task_id, task_scope(actor))
    if for_update:
        query = query.with_for_update()
    task = session.scalar(query)
    if task is None:
        raise NotFound("待办")
    return task


def complete(session: Session, *, actor: Actor, task_id: int, now: datetime) -> Task:
    """Mark an open task done (its assignee, or a manager over it)."""
    task = _open_task_for_change(session, actor, task_id)
    task.status = TaskStatus.DONE
    task.done_at = now
    _audit(
        session,
        actor,
        task,
        "done",
        {"status": TaskStatus.OPEN},
        {"status": TaskStatus.DONE},
        now,
        None,
    )
    return _loaded(session, task)


def snooze(
    session: Session,
    *,
    actor: Actor,
    task_id: int,
    now: datetime,
    until: datetime | None = None,
    hours: float | None = None,
) -> Task:
    """Put an open task off, to `until` or by `hours` (at most MAX_SNOOZE_DAYS ahead)."""
    if (until is None) == (hours is None):
        raise Invalid("请填写 until（推迟到的时间）或 hours（推迟几小时）其中一个", field="until")
    task = _open_task_for_change(session, actor, task_id)
    if until is None:
        # "Later by N hours" counts from the due time when that is still ahead, so a snooze
        # never pulls a task closer.
        base = max(now, task.due_at) if task.due_at else now
        until = base + timedelta(hours=hours or 0)
    if until <= now or (task.due_at is not None and until <= task.due_at):
        raise Invalid("推迟后的时间应晚于现在和原截止时间", field="until")
    if until > now + timedelta(days=MAX_SNOOZE_DAYS):
        raise Invalid(f"最多推迟 {MAX_SNOOZE_DAYS} 天", field="until")
    before = task.due_at
    task.due_at = until
    _audit(session, actor, task, "snooze", {"due_at": before}, {"due_at": until}, now, "推迟待办")
    return _loaded(session, task)


def reassign(
    session: Session, *, actor: Actor, task_id: int, assignee_id: int, now: datetime, reason: str
) -> Task:
    """Give a task to someone else (managers within their team, the boss anywhere)."""
    if not actor.can_manage:
        raise Forbidden("只有主管或老板可以转派待办")
    task = get_task(session, actor=actor, task_id=task_id, for_update=True)
    if not _may_change(session, actor, task):  # copied on another team's task: not theirs to move
        raise Forbidden("只能转派本团队成员的待办")
    if task.status != TaskStatus.OPEN:
        raise Conflict("待办已完成，不能转派", code="task_closed")
    assignee = _assignee(session, actor, assignee_id)
    before = task.assignee_id
    task.assignee_id = assignee.id
    _audit(
        session,
        actor,
        task,
        "reassign",
        {"assignee_id": before},
        {"assignee_id": assignee.id},
        now,
        reason,
    )
    return _loaded(session, task)


def today(session: Session, *, actor: Actor, now: datetime) -> list[TodayItem]:
    """我的今日任务: open tasks due by tonight, due planned follow-ups; most overdue first."""
    # Undated tasks come last among today's: they are the actor's open work with no deadline,
    # and 今日 is the one list a rep reads each morning.
    # Equally late items put A customers first, then go by customer id (stable for the bot).
    local_today = calendar.local_date(now)
    _start, end_of_today = calendar.day_bounds(now)
    tasks = session.scalars(
        _with_people(select(Task))
        .options(joinedload(Task.customer))
        .where(
            Task.assignee_id == actor.user_id,
            Task.status == TaskStatus.OPEN,
            or_(Task.due_at.is_(None), Task.due_at < end_of_today),
        )
        .order_by(Task.due_at, Task.id)
        .limit(TODAY_LIMIT)
    )
    items = [
        TodayItem(
            kind="task",
            title=task.title,
            due_at=task.due_at,
            overdue_days=_days_late(task.due_at, local_today),
            customer=task.customer,
            task=task,
        )
        for task in tasks
    ]
    planned = session.scalars(
        select(Customer)
        .where(
            customer_scope(actor),
            Customer.owner_id == actor.user_id,
            Customer.next_follow_up_on <= local_today,
        )
        .order_by(Customer.next_follow_up_on, Customer.id)
        .limit(TODAY_LIMIT)
    )
    items += [
        TodayItem(
            kind="follow_up",
            title=f"按计划跟进：{customer.name}",
            due_at=calendar.day_start(customer.next_follow_up_on),
            overdue_days=(local_today - customer.next_follow_up_on).days,
            customer=customer,
        )
        for customer in planned
        if customer.next_follow_up_on is not None
    ]
    items.sort(key=_urgency)
    return items


def _urgency(item: TodayItem) -> tuple:
    grade = item.customer.grade if item.customer else None
    return (
        -item.overdue_days,
        item.due_at is None,
        _GRADE_ORDER.get(grade or "", len(_GRADE_ORDER)),
        item.due_at or datetime.max.replace(tzinfo=calendar.BUSINESS_TZ),
        item.customer.id if item.customer else 0,
        item.task.id if item.task else 0,
    )


def _days_late(due_at: datetime | None, local_today: date) -> int:
    if due_at is None:
        return 0
    return max((local_today - calendar.local_date(due_at)).days, 0)


def _open_task_for_change(session: Session, actor: Actor, task_id: int) -> Task:
    task = get_task(session, actor=actor, task_id=task_id, for_update=True)
    if not _may_change(session, actor, task):
        # Someone copied on a task sees it but does not close or move it for its assignee.
        raise Forbidden("只能处理分配给自己或本团队成员的待办")
    if task.status != TaskStatus.OPEN:
        raise Conflict("待办已完成", code="task_closed")
    return task


def _may_change(session: Session, actor: Actor, task: Task) -> bool:
    """The assignee, the manager of the assignee's team, or the boss."""
    if task.assignee_id == actor.user_id or actor.role is Role.BOSS:
        return True
    if actor.role is not Role.MANAGER:
        return False
    in_team = select(User.id).where(User.id == task.assignee_id, user_scope(actor))
    return session.scalar(in_team) is not None


def _assignee(session: Session, actor: Actor, user_id: int) -> User:
    if actor.is_rep and user_id != actor.user_id:
        raise Forbidden("销售只能给自己建待办")
    user = session.scalar(select(User).where(User.id == user_id, user_scope(actor)))
    if user is None:
        raise NotFound("成员")
    if not user.is_active:
        raise Invalid("不能分配给已停用的成员", field="assignee_id")
    return user


def _clean_title(title: str) -> str:
    cleaned = check_text(title, field="title").strip()
    if not cleaned:
        raise Invalid("待办标题不能为空", code="required", field="title")
    if len(cleaned) > 255:
        raise Invalid("待办标题不能超过255字", field="title")
    return cleaned


def _with_people(query: Select[Any]) -> Select[Any]:
    return query.options(joinedload(Task.assignee))


def _loaded(session: Session, task: Task) -> Task:
    session.flush()
    session.refresh(task, ["assignee", "customer"])
    return task


def _audit(
    session: Session,
    actor: Actor,
    task: Task,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    now: datetime,
    reason: str | None,
) -> None:
    audit.record(
        session,
        actor=actor,
        entity="task",
        entity_id=task.id,
        action=action,
        before=before,
        after=after,
        now=now,
        reason=reason,
    )
