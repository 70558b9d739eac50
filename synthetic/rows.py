"""A planned company as table rows, for bulk inserts (the demo's Core executemany, the
benchmarks' COPY). Plans name people by userid and teams by index; `Ids` maps them to the
database's ids. Everything a row derives from its plan (the customer's timestamps, a follow-up's
source, completeness) is derived here, once, the way the services would have set it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from crm import completeness
from crm.vocab import ContactMethod, FollowUpSource
from models.tasks import TaskStatus
from models.users import Role
from synthetic.plans import Org, PlannedCustomer

# The tables `history_rows` fills, in an order that satisfies their foreign keys.
HISTORY_TABLES = (
    "customer_tags",
    "follow_ups",
    "attachments",
    "stage_changes",
    "tasks",
    "pool_events",
    "audit_entries",
)
FOLLOW_UP_SOURCES = {
    ContactMethod.WECOM_CHAT: FollowUpSource.CHAT_ARCHIVE,
    ContactMethod.VOICE: FollowUpSource.VOICE,
    ContactMethod.EMAIL: FollowUpSource.EMAIL,
}
RECORDED_AFTER = timedelta(minutes=2)  # a follow-up is written down just after it happened


@dataclass(frozen=True)
class Ids:
    """Database ids of the planned people (by userid) and teams (by index)."""

    users: dict[str, int]
    teams: list[int]


def customer_row(plan: PlannedCustomer, *, ids: Ids, required_keys: list[str]) -> dict[str, Any]:
    """The customer's row, without its id."""
    last = plan.follow_ups[-1] if plan.follow_ups else None
    last_moved = plan.moves[-1].at
    row = {
        **plan.values,
        "owner_id": ids.users[plan.owner] if plan.owner else None,
        "team_id": ids.teams[plan.team] if plan.team is not None else None,
        "custom_values": plan.custom_values,
        "last_follow_up_at": last.at if last else None,
        "next_follow_up_on": last.next_follow_up_on if last else None,
        "released_at": plan.released_at,
        "release_reason": plan.release_reason if plan.released_at else None,
        "stage_entered_at": last_moved,
        "created_at": plan.created_at,
        "updated_at": max(
            m for m in (plan.created_at, last_moved, last and last.at, plan.released_at) if m
        ),
    }
    # The app's own scoring; it only reads attributes, so the row stands in for a Customer.
    row["completeness"] = completeness.score(SimpleNamespace(**row), required_keys)  # type: ignore[arg-type]
    return row


def history_rows(
    plan: PlannedCustomer,
    customer_id: int,
    *,
    ids: Ids,
    now: datetime,
    counters: Mapping[str, Iterator[int]] | None = None,
    audit_note: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Rows of every HISTORY_TABLES table for one customer.

    With `counters` (a next-id iterator per table) rows carry explicit ids, as COPY needs;
    without, the database numbers them, and a plan may hold no attachments. With an
    `audit_note` the customer's audit trail is written too, each reason ending in the note.
    """
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in HISTORY_TABLES}

    def add(table: str, row: dict[str, Any]) -> dict[str, Any]:
        if counters is not None and table in counters:
            row = {"id": next(counters[table]), **row}
        rows[table].append(row)
        return row

    def user(userid: str | None) -> int | None:
        return ids.users[userid] if userid else None

    def audit(at: datetime, actor: int | None, action: str, before: Any, after: Any, why: str):
        if audit_note is not None:
            add(
                "audit_entries",
                {
                    "at": at,
                    "actor_id": actor,
                    "entity": "customer",
                    "entity_id": customer_id,
                    "action": action,
                    "before": before,
                    "after": after,
                    "reason": f"{why}（{audit_note}）",
                },
            )

    for tag in plan.tags:
        add("customer_tags", {"customer_id": customer_id, "tag": tag})
    for f in plan.follow_ups:
        follow_up = add(
            "follow_ups",
            {
                "customer_id": customer_id,
                "author_id": user(f.author),
                "happened_at": f.at,
                "method": f.method.value,
                "summary": f.summary,
                "next_plan": f.next_plan,
                "next_follow_up_on": f.next_follow_up_on,
                "source": FOLLOW_UP_SOURCES.get(f.method, FollowUpSource.MANUAL).value,
                "transcript": f.summary if f.method is ContactMethod.VOICE else None,
                "created_at": min(f.at + RECORDED_AFTER, now),
            },
        )
        if f.attachments and "id" not in follow_up:
            raise ValueError("attachments need explicit follow-up ids (pass counters)")
        for a in f.attachments:
            add(
                "attachments",
                {
                    "follow_up_id": follow_up["id"],
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size_bytes": a.size_bytes,
                    "sha256": a.sha256,
                    "storage_key": a.storage_key,
                },
            )
    for m in plan.moves:
        add(
            "stage_changes",
            {
                "customer_id": customer_id,
                "from_stage": m.from_stage.value if m.from_stage else None,
                "to_stage": m.to_stage.value,
                "changed_at": m.at,
                "actor_id": user(m.actor),
                "cause": m.cause,
            },
        )
        if m.from_stage is None:
            audit(m.at, user(m.actor), "create", {}, {"stage": m.to_stage.value}, m.cause)
        else:
            before, after = {"stage": m.from_stage.value}, {"stage": m.to_stage.value}
            audit(m.at, user(m.actor), "stage", before, after, m.cause)
    for t in plan.tasks:
        add(
            "tasks",
            {
                "customer_id": customer_id,
                "assignee_id": user(t.assignee),
                "cc_id": user(t.cc),
                "title": t.title,
                "detail": None,
                "due_at": t.due_at,
                "status": TaskStatus.DONE if t.is_done else TaskStatus.OPEN,
                "origin": t.origin,
                "created_at": t.created_at,
                "done_at": t.due_at if t.is_done else None,
            },
        )
    if plan.released_at is not None:
        reason = plan.release_reason or ""
        released_by = user(plan.released_by)
        add(
            "pool_events",
            {
                "customer_id": customer_id,
                "kind": "release",
                "user_id": released_by,
                "actor_id": None,  # the timers (or the seed) released it, nobody by hand
                "reason": reason,
                "at": plan.released_at,
            },
        )
        audit(
            plan.released_at, None, "release", {"owner_id": released_by}, {"owner_id": None}, reason
        )
    return rows


def people_rows(org: Org) -> dict[str, list[dict[str, Any]]]:
    """Teams and users with explicit ids (teams 1.., people 1.. in plan order), custom fields
    left to the caller; the boss manages the managers, a manager the team's reps."""
    teams = [
        {"id": index, "name": team.name, "wecom_department_id": team.department_id}
        for index, team in enumerate(org.teams, start=1)
    ]
    ids = plan_ids(org)
    users = []
    for person in org.people:
        if person.team is None:
            manager = None
        elif person.role is Role.REP:
            manager = ids.users[org.manager_of(person.team).userid]
        else:
            manager = ids.users[org.boss.userid]
        users.append(
            {
                "id": ids.users[person.userid],
                "wecom_userid": person.userid,
                "name": person.name,
                "role": person.role.value,
                "team_id": ids.teams[person.team] if person.team is not None else None,
                "manager_id": manager,
                "mobile": person.mobile,
                "email": person.email,
                "is_active": True,
            }
        )
    return {"teams": teams, "users": users}


def plan_ids(org: Org) -> Ids:
    """The ids `people_rows` gives."""
    return Ids(
        users={p.userid: n for n, p in enumerate(org.people, start=1)},
        teams=list(range(1, len(org.teams) + 1)),
    )
