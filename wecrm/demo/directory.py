"""The people wecrm knows, listed as WeCom would: the demo loads its fake WeCom with this, so
whoever was added since the seed can sign in too."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Team, User
from models.users import Role
from synthetic.directory import (
    ROOT_DEPARTMENT_ID,
    root_department,
    team_department,
    wecom_member,
)
from synthetic.plans import POSITIONS
from synthetic.sample import COMPANY_NAME, EMAIL_DOMAIN


def directory_from_db(session: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Departments and members in WeCom's JSON shapes. Teams without a WeCom department id were
    made by hand and have no department to sit in; their people are listed under the root."""
    bosses = session.scalars(
        select(User.wecom_userid).where(User.role == Role.BOSS, User.is_active).order_by(User.id)
    )
    departments = [root_department(COMPANY_NAME, list(bosses))]
    team_departments: dict[int, int] = {}
    for index, team in enumerate(session.scalars(select(Team).order_by(Team.id))):
        if team.wecom_department_id is None or team.wecom_department_id == ROOT_DEPARTMENT_ID:
            continue
        team_departments[team.id] = team.wecom_department_id
        leaders = session.scalars(
            select(User.wecom_userid)
            .where(User.team_id == team.id, User.role == Role.MANAGER, User.is_active)
            .order_by(User.id)
        )
        departments.append(
            team_department(team.wecom_department_id, team.name, index, list(leaders))
        )
    members = []
    for user in session.scalars(select(User).order_by(User.id)):
        department = team_departments.get(user.team_id or 0, ROOT_DEPARTMENT_ID)
        role = Role(user.role)
        members.append(
            wecom_member(
                userid=user.wecom_userid,
                name=user.name,
                mobile=user.mobile or "",
                position=POSITIONS[role],
                email=user.email or f"{user.wecom_userid}@{EMAIL_DOMAIN}",
                is_active=user.is_active,
                department=department,
                # Only the boss leads the root department (that is what makes a boss in sync).
                is_leader=(role is Role.BOSS) == (department == ROOT_DEPARTMENT_ID)
                and role is not Role.REP,
            )
        )
    return departments, members
