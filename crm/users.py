"""People and teams: created by the boss, or loaded from WeCom's directory; who may sign whom
out. A person's API tokens die when their `token_generation` moves (miniapp_api/auth.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from crm import audit
from crm.actors import Actor, user_scope
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from models import Team, User
from models.users import Role

# WeCom member status: 1 active, 2 disabled, 4 not yet activated, 5 left the company.
ACTIVE_WECOM_STATUSES = {1, 4}


@dataclass
class SyncReport:
    teams_created: int = 0
    users_created: int = 0
    users_updated: int = 0
    users_deactivated: int = 0


def list_users(session: Session, *, actor: Actor) -> list[User]:
    """The people the actor may see (a rep sees only themself)."""
    return list(session.scalars(select(User).where(user_scope(actor)).order_by(User.id)))


def list_teams(session: Session) -> list[Team]:
    return list(session.scalars(select(Team).order_by(Team.id)))


def user_by_wecom_id(session: Session, wecom_userid: str) -> User | None:
    return session.scalar(select(User).where(User.wecom_userid == wecom_userid))


def create_user(
    session: Session,
    *,
    actor: Actor,
    wecom_userid: str,
    name: str,
    role: str,
    team_id: int | None,
    now: datetime,
    mobile: str | None = None,
    email: str | None = None,
) -> User:
    """The boss adds a person by hand (before or instead of a directory sync)."""
    if actor.role is not Role.BOSS:
        raise Forbidden("只有老板可以添加成员")
    if user_by_wecom_id(session, wecom_userid) is not None:
        raise Conflict(f"企业微信账号「{wecom_userid}」已存在", code="duplicate_user")
    try:
        role = Role(role)
    except ValueError:
        raise Invalid("角色只能是 rep、manager 或 boss", field="role") from None
    if role is not Role.BOSS and team_id is None:
        raise Invalid("销售和主管必须属于一个团队", field="team_id")
    if team_id is not None and session.get(Team, team_id) is None:
        raise NotFound("团队")
    user = User(
        wecom_userid=wecom_userid,
        name=name,
        role=role,
        team_id=team_id,
        mobile=mobile,
        email=email,
        is_active=True,
        joined_at=now,
    )
    if role is Role.REP and team_id is not None:
        user.manager_id = session.scalar(
            select(User.id).where(User.team_id == team_id, User.role == Role.MANAGER).limit(1)
        )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        entity="user",
        entity_id=user.id,
        action="create",
        before={},
        after={"wecom_userid": wecom_userid, "role": role.value, "team_id": team_id},
        now=now,
    )
    return user


def can_revoke_sessions(actor: Actor, user: User) -> bool:
    """Anyone may sign themself out everywhere; the boss anyone, a manager their team's reps."""
    if actor.user_id == user.id or actor.role is Role.BOSS:
        return True
    return actor.role is Role.MANAGER and user.role == Role.REP and user.team_id == actor.team_id


def revoke_sessions(session: Session, *, actor: Actor, user_id: int, now: datetime) -> User:
    """Sign a person out on every device: every token issued to them so far stops working."""
    visible = or_(user_scope(actor), User.id == actor.user_id)  # a manager without a team too
    user = session.scalar(select(User).where(User.id == user_id, visible))
    if user is None:
        raise NotFound("成员")
    if not can_revoke_sessions(actor, user):
        raise Forbidden("主管只能让本团队的销售退出登录")
    generation = user.token_generation
    _end_sessions(user)
    audit.record(
        session,
        actor=actor,
        entity="user",
        entity_id=user.id,
        action="revoke_sessions",
        before={"token_generation": generation},
        after={"token_generation": user.token_generation},
        now=now,
    )
    return user


def deactivate_user(session: Session, *, actor: Actor, user_id: int, now: datetime) -> User:
    """The boss marks a member as gone (离职): every session ends at once and sign-in stops."""
    if actor.role is not Role.BOSS:
        raise Forbidden("只有老板可以停用成员")
    user = session.scalar(select(User).where(User.id == user_id, user_scope(actor)))
    if user is None:
        raise NotFound("成员")
    if user.id == actor.user_id:
        raise Conflict("不能停用自己", code="cannot_deactivate_self")
    if not user.is_active:
        return user
    before = {"is_active": True, "token_generation": user.token_generation}
    _set_active(user, False)
    audit.record(
        session,
        actor=actor,
        entity="user",
        entity_id=user.id,
        action="deactivate",
        before=before,
        after={"is_active": False, "token_generation": user.token_generation},
        now=now,
    )
    return user


def _end_sessions(user: User) -> None:
    user.token_generation += 1


def _set_active(user: User, active: bool) -> None:
    """Deactivating someone also ends their sessions, so reactivating them revives no token."""
    if user.is_active and not active:
        _end_sessions(user)
    user.is_active = active


def create_team(session: Session, *, actor: Actor, name: str, now: datetime) -> Team:
    """The boss adds a sales team."""
    if actor.role is not Role.BOSS:
        raise Forbidden("只有老板可以添加团队")
    team = Team(name=name.strip())
    session.add(team)
    session.flush()
    audit.record(
        session,
        actor=actor,
        entity="team",
        entity_id=team.id,
        action="create",
        before={},
        after={"name": team.name},
        now=now,
    )
    return team


def sync_directory(
    session: Session,
    *,
    departments: list[dict[str, Any]],
    members: list[dict[str, Any]],
    now: datetime,
) -> SyncReport:
    """Mirror WeCom's directory: departments under the root become teams, their leaders
    managers, the root's leader the boss, everyone else a rep. Roles set later by the boss
    are kept; people who left are deactivated, never deleted (their history stays)."""
    report = SyncReport()
    root_ids = {d["id"] for d in departments if not d.get("parentid")}
    teams: dict[int, Team] = {
        t.wecom_department_id: t
        for t in session.scalars(select(Team))
        if t.wecom_department_id is not None
    }
    for department in departments:
        if department["id"] in root_ids:
            continue
        team = teams.get(department["id"])
        if team is None:
            team = Team(name=department["name"], wecom_department_id=department["id"])
            session.add(team)
            teams[department["id"]] = team
            report.teams_created += 1
        else:
            team.name = department["name"]
    session.flush()

    existing = {u.wecom_userid: u for u in session.scalars(select(User))}
    seen: set[str] = set()
    leaders: dict[int, User] = {}
    for member in members:
        userid = member["userid"]
        if userid in seen:  # a member of several departments is listed once per department
            continue
        seen.add(userid)
        dept_ids = member.get("department") or []
        leader_flags = member.get("is_leader_in_dept") or [0] * len(dept_ids)
        team_dept = next((d for d in dept_ids if d in teams), None)
        led = {d for d, flag in zip(dept_ids, leader_flags, strict=False) if flag}
        role = Role.BOSS if led & root_ids else Role.MANAGER if team_dept in led else Role.REP
        user = existing.get(userid)
        if user is None:
            user = User(
                wecom_userid=userid, name=member.get("name") or userid, role=role, joined_at=now
            )
            session.add(user)
            report.users_created += 1
        else:
            report.users_updated += 1
        user.name = member.get("name") or user.name
        user.team_id = teams[team_dept].id if team_dept is not None else None
        user.mobile = member.get("mobile") or user.mobile
        user.email = member.get("email") or user.email
        _set_active(user, member.get("status", 1) in ACTIVE_WECOM_STATUSES)
        if team_dept is not None and team_dept in led:
            leaders[teams[team_dept].id] = user
    for userid, user in existing.items():
        if userid not in seen and user.is_active:
            _set_active(user, False)
            report.users_deactivated += 1
    session.flush()
    for user in session.scalars(select(User).where(User.role == Role.REP)):
        leader = leaders.get(user.team_id) if user.team_id is not None else None
        if leader is not None:
            user.manager_id = leader.id
    session.flush()
    return report
