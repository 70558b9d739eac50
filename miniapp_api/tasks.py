"""/tasks and /me/today: tasks (待办) and 我的今日任务."""

from __future__ import annotations

from typing import Any

from crm import tasks
from miniapp_api import api
from miniapp_api.context import actor, now, session
from miniapp_api.routing import operation
from miniapp_api.schemas import (
    SnoozeIn,
    TaskIn,
    TaskOut,
    TaskPageOut,
    TaskQuery,
    TaskReassignIn,
    TodayOut,
)


@operation(
    api, "GET", "/me/today", summary="我的今日任务（逾期在前）", tag="tasks", response=TodayOut
)
def my_today() -> Any:
    items = tasks.today(session(), actor=actor(), now=now())
    return {
        "items": [
            {
                "kind": item.kind,
                "title": item.title,
                "due_at": item.due_at,
                "overdue_days": item.overdue_days,
                "customer": item.customer,
                "task_id": item.task.id if item.task else None,
            }
            for item in items
        ]
    }


@operation(
    api,
    "GET",
    "/tasks",
    summary="待办列表（权限范围内）",
    tag="tasks",
    query=TaskQuery,
    response=TaskPageOut,
)
def list_tasks(query: TaskQuery) -> Any:
    return tasks.list_tasks(
        session(),
        actor=actor(),
        status=query.status,
        assignee_id=query.assignee_id,
        page=query.page,
        page_size=query.page_size,
    )


@operation(
    api,
    "POST",
    "/tasks",
    summary="新建待办",
    tag="tasks",
    body=TaskIn,
    response=TaskOut,
    status=201,
)
def add_task(body: TaskIn) -> Any:
    task = tasks.add_task(
        session(),
        actor=actor(),
        assignee_id=body.assignee_id,
        title=body.title,
        customer_id=body.customer_id,
        detail=body.detail,
        due_at=body.due_at,
        now=now(),
    )
    session().refresh(task, ["assignee"])
    return task


@operation(api, "POST", "/tasks/{task_id}/done", summary="完成待办", tag="tasks", response=TaskOut)
def complete_task(task_id: int) -> Any:
    return tasks.complete(session(), actor=actor(), task_id=task_id, now=now())


@operation(
    api,
    "POST",
    "/tasks/{task_id}/snooze",
    summary="推迟待办（到某时，或若干小时后）",
    tag="tasks",
    body=SnoozeIn,
    response=TaskOut,
)
def snooze_task(task_id: int, body: SnoozeIn) -> Any:
    return tasks.snooze(
        session(), actor=actor(), task_id=task_id, until=body.until, hours=body.hours, now=now()
    )


@operation(
    api,
    "POST",
    "/tasks/{task_id}/reassign",
    summary="转派待办（主管）",
    tag="tasks",
    body=TaskReassignIn,
    response=TaskOut,
)
def reassign_task(task_id: int, body: TaskReassignIn) -> Any:
    return tasks.reassign(
        session(),
        actor=actor(),
        task_id=task_id,
        assignee_id=body.assignee_id,
        now=now(),
        reason=body.reason,
    )
