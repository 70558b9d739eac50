"""/users, /teams and /completeness: the people in scope, signing them out everywhere or for good
(deactivation), and how complete their books are."""

from __future__ import annotations

from typing import Any

from crm import completeness, users
from miniapp_api import api
from miniapp_api.context import actor, now, session
from miniapp_api.routing import operation
from miniapp_api.schemas import (
    CompletenessOut,
    TeamIn,
    TeamList,
    TeamOut,
    UserIn,
    UserList,
    UserOut,
)


@operation(api, "GET", "/users", summary="成员列表（权限范围内）", tag="people", response=UserList)
def list_users() -> Any:
    return {"items": users.list_users(session(), actor=actor())}


@operation(
    api,
    "POST",
    "/users",
    summary="添加成员（老板）",
    tag="people",
    body=UserIn,
    response=UserOut,
    status=201,
)
def create_user(body: UserIn) -> Any:
    return users.create_user(session(), actor=actor(), now=now(), **body.model_dump())


@operation(
    api,
    "POST",
    "/users/{user_id}/sessions/revoke",
    summary="让成员在所有设备上退出登录（老板：任何人；主管：本团队销售；所有人：自己）",
    tag="people",
    status=204,
)
def revoke_sessions(user_id: int) -> None:
    users.revoke_sessions(session(), actor=actor(), user_id=user_id, now=now())


@operation(
    api,
    "POST",
    "/users/{user_id}/deactivate",
    summary="停用成员（离职，老板）：立即结束其全部登录，之后不能再登录",
    tag="people",
    response=UserOut,
)
def deactivate_user(user_id: int) -> Any:
    return users.deactivate_user(session(), actor=actor(), user_id=user_id, now=now())


@operation(api, "GET", "/teams", summary="团队列表", tag="people", response=TeamList)
def list_teams() -> Any:
    return {"items": users.list_teams(session())}


@operation(
    api,
    "POST",
    "/teams",
    summary="添加团队（老板）",
    tag="people",
    body=TeamIn,
    response=TeamOut,
    status=201,
)
def create_team(body: TeamIn) -> Any:
    return users.create_team(session(), actor=actor(), name=body.name, now=now())


@operation(
    api,
    "GET",
    "/completeness",
    summary="资料完整度（按销售、按团队）",
    tag="people",
    response=CompletenessOut,
)
def completeness_summary() -> Any:
    return completeness.summary(session(), actor=actor())
