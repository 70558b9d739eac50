"""/pool: the public pool (客户公海池) — list, claim, assign, auto-assign; and releasing to it."""

from __future__ import annotations

from typing import Any

from crm import pool
from crm.rulesets.policy import AutoAssign
from miniapp_api import api
from miniapp_api.context import actor, now, session
from miniapp_api.routing import operation
from miniapp_api.schemas import (
    AutoAssignIn,
    AutoAssignOut,
    CustomerOut,
    PoolAssignIn,
    PoolPageOut,
    PoolQuery,
    ReleaseIn,
)


@operation(
    api,
    "GET",
    "/pool",
    summary="公海客户（权限范围内）",
    tag="pool",
    query=PoolQuery,
    response=PoolPageOut,
)
def list_pool(query: PoolQuery) -> Any:
    return pool.list_pool(
        session(), actor=actor(), now=now(), q=query.q, page=query.page, page_size=query.page_size
    )


@operation(
    api,
    "POST",
    "/pool/{customer_id}/claim",
    summary="从公海领取客户（销售，受每日与持有上限约束）",
    tag="pool",
    response=CustomerOut,
)
def claim_from_pool(customer_id: int) -> Any:
    customer = pool.claim(session(), actor=actor(), customer_id=customer_id, now=now())
    session().refresh(customer, ["owner", "tags"])
    return customer


@operation(
    api,
    "POST",
    "/pool/{customer_id}/assign",
    summary="把公海客户分配给销售（主管）",
    tag="pool",
    body=PoolAssignIn,
    response=CustomerOut,
)
def assign_from_pool(customer_id: int, body: PoolAssignIn) -> Any:
    customer = pool.assign(
        session(),
        actor=actor(),
        customer_id=customer_id,
        owner_id=body.owner_id,
        now=now(),
        reason=body.reason,
    )
    session().refresh(customer, ["owner", "tags"])
    return customer


@operation(
    api,
    "POST",
    "/pool/auto-assign",
    summary="把本团队的无主客户自动分配（轮流或最少持有）",
    tag="pool",
    body=AutoAssignIn,
    response=AutoAssignOut,
)
def auto_assign_pool(body: AutoAssignIn) -> Any:
    pairs = pool.auto_assign_unowned(
        session(),
        actor=actor(),
        now=now(),
        team_id=body.team_id,
        strategy=AutoAssign(body.strategy) if body.strategy else None,
    )
    return {"assigned": [{"customer_id": c, "owner_id": u} for c, u in pairs]}


@operation(
    api,
    "POST",
    "/customers/{customer_id}/release",
    summary="把客户释放到公海（主管）",
    tag="pool",
    body=ReleaseIn,
    response=CustomerOut,
)
def release_to_pool(customer_id: int, body: ReleaseIn) -> Any:
    customer = pool.release_by_hand(
        session(), actor=actor(), customer_id=customer_id, reason=body.reason, now=now()
    )
    session().refresh(customer, ["owner", "tags"])
    return customer
