"""A planned org chart as WeCom lists it (department/list and user/list JSON), for the fake WeCom
and for `crm.users.sync_directory`, which brings the demo's people in as WeCom would."""

from __future__ import annotations

from typing import Any

from models.users import Role
from synthetic.plans import Org

ROOT_DEPARTMENT_ID = 1


def root_department(org_name: str, leaders: list[str]) -> dict[str, Any]:
    """The company's root department, led by the boss."""
    return {
        "id": ROOT_DEPARTMENT_ID,
        "name": org_name,
        "parentid": 0,
        "order": 100000000,
        "department_leader": leaders,
    }


def team_department(
    department_id: int, name: str, index: int, leaders: list[str]
) -> dict[str, Any]:
    """A team's department under the root, ordered as planned."""
    return {
        "id": department_id,
        "name": name,
        "parentid": ROOT_DEPARTMENT_ID,
        "order": 99999000 - index * 1000,
        "department_leader": leaders,
    }


def wecom_directory(org: Org) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The org in WeCom's department/list and user/list JSON shapes."""
    departments = [root_department(org.name, [org.boss.userid])]
    for index, team in enumerate(org.teams):
        leader = org.manager_of(index).userid
        departments.append(team_department(team.department_id, team.name, index, [leader]))
    members = [
        wecom_member(
            userid=p.userid,
            name=p.name,
            mobile=p.mobile,
            position=p.position,
            email=p.email,
            is_active=True,
            department=ROOT_DEPARTMENT_ID if p.team is None else org.teams[p.team].department_id,
            is_leader=p.role is not Role.REP,
        )
        for p in org.people
    ]
    return departments, members


def wecom_member(
    *,
    userid: str,
    name: str,
    mobile: str,
    position: str,
    email: str,
    is_active: bool,
    department: int,
    is_leader: bool,
) -> dict[str, Any]:
    """One member as user/list gives it."""
    # https://developer.work.weixin.qq.com/document/path/90201 (user/list); status 1 is
    # active, 5 has left the company.
    return {
        "userid": userid,
        "name": name,
        "department": [department],
        "main_department": department,
        "is_leader_in_dept": [1 if is_leader else 0],
        "position": position,
        "mobile": mobile,
        "email": email,
        "status": 1 if is_active else 5,
    }
