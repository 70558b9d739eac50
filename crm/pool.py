"""The public pool (客户公海池): releases, claims with caps, assignment and auto-assignment.

A customer is in the pool while it has no owner. It keeps its team, so the team's manager sees
and redistributes it; reps see their team's pool and customers of no team. Ownership changes
are conditional UPDATEs (`... WHERE owner_id IS NULL`), so of two reps claiming one customer at
the same moment exactly one wins. Every move is a PoolEvent (caps and cool-downs read them)
and an audit entry.

The policy (caps, cool-down, auto-assignment) follows the org chart like every rule set: a team
with its own `pool` set uses it, everyone else the company's. Caps and the cool-down limit a rep,
so a claim is judged by the claiming rep's team's policy (a rep claims only from their team's
pool or customers of no team); auto-assignment hands out a team's customers to that team's reps,
so it uses that team's strategy and cool-down.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, true, update
from sqlalchemy.orm import Session

from crm import audit, calendar
from crm.actors import Actor, user_scope
from crm.customers import get_customer
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from crm.rulesets import store
from crm.rulesets.policy import AutoAssign, PoolPolicy
from crm.text import escape_like
from crm.vocab import OPEN_STAGES
from models import Customer, PoolEvent, Team, User
from models.users import Role

MAX_PAGE_SIZE = 100
RECENTLY_TAKEN = timedelta(hours=1)
_STRATEGY_LABELS = {
    AutoAssign.ROUND_ROBIN: "轮流分配",
    AutoAssign.LEAST_LOADED: "分给持有最少的销售",
}


@dataclass
class PoolPage:
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


def pool_policy(session: Session, team_id: int | None) -> PoolPolicy:
    """The pool policy in force for a team (its own `pool` rule set, else the company's)."""
    return PoolPolicy.from_document(store.active(session, "pool", team_id).document)


def pool_scope(actor: Actor) -> ColumnElement[bool]:
    """Unowned customers the actor may see: their team's and those of no team (boss: all)."""
    return Customer.owner_id.is_(None) & _pool_teams(actor)


def _pool_teams(actor: Actor) -> ColumnElement[bool]:
    if actor.role is Role.BOSS:
        return true()
    if actor.team_id is None:
        return Customer.team_id.is_(None)
    return or_(Customer.team_id == actor.team_id, Customer.team_id.is_(None))


def release(
    session: Session, *, customer: Customer, reason: str, now: datetime, actor: Actor | None = None
) -> bool:
    """Put an owned customer in the pool with the reason kept; False if it already was."""
    previous = customer.owner_id
    if previous is None:
        return False
    customer.owner_id = None
    customer.released_at = now
    customer.release_reason = reason[:255]
    customer.updated_at = now
    _record(session, customer, "release", previous, actor, previous, reason, now)
    return True


def release_by_hand(
    session: Session, *, actor: Actor, customer_id: int, reason: str, now: datetime
) -> Customer:
    """A manager (or the boss) puts a customer of their scope in the pool."""
    if not actor.can_manage:
        raise Forbidden("只有主管或老板可以把客户释放到公海")
    customer = get_customer(session, actor=actor, customer_id=customer_id, for_update=True)
    if not release(session, customer=customer, reason=reason, now=now, actor=actor):
        raise Conflict("该客户已在公海中", code="already_in_pool")
    return customer


def list_pool(
    session: Session,
    *,
    actor: Actor,
    now: datetime,
    q: str | None = None,
    page: int = 1,
    page_size: int = 20,
) -> PoolPage:
    """The pool as the actor may see it, longest waiting first; reps see masked phones."""
    conditions: list[Any] = [pool_scope(actor)]
    if q and q.strip():
        like = f"%{escape_like(q.strip())}%"
        conditions.append(
            or_(Customer.name.ilike(like, escape="\\"), Customer.company.ilike(like, escape="\\"))
        )
    total = session.scalar(select(func.count()).select_from(Customer).where(*conditions)) or 0
    page_size = min(max(page_size, 1), MAX_PAGE_SIZE)
    rows = session.scalars(
        select(Customer)
        .where(*conditions)
        .order_by(Customer.released_at.is_(None), Customer.released_at, Customer.id)
        .limit(page_size)
        .offset((max(page, 1) - 1) * page_size)
    )
    items = []
    for customer in rows:
        waited = now - customer.released_at if customer.released_at else None
        items.append(
            {
                "id": customer.id,
                "name": customer.name,
                "company": customer.company,
                "region": customer.region,
                "category": customer.category,
                "stage": customer.stage,
                "grade": customer.grade,
                "team_id": customer.team_id,
                "phone": _masked(customer.phone) if actor.is_rep else customer.phone,
                "released_at": customer.released_at,
                "release_reason": customer.release_reason,
                "days_in_pool": waited.days if waited is not None else None,
            }
        )
    return PoolPage(items=items, total=total, page=page, page_size=page_size)


def claim(session: Session, *, actor: Actor, customer_id: int, now: datetime) -> Customer:
    """A rep takes a customer from the pool, within the policy's caps and cool-down."""
    if not actor.is_rep:
        raise Forbidden("领取是销售的操作；主管请使用分配")
    # One rep's claims queue up here, so two at once cannot both slip under a cap.
    me = session.scalar(select(User).where(User.id == actor.user_id).with_for_update())
    assert me is not None
    customer = _pool_customer(session, actor, customer_id, now)
    policy = pool_policy(session, me.team_id)
    _check_caps(session, actor.user_id, customer.id, policy, now)
    _take(session, customer, me, now)
    _record(session, customer, "claim", me.id, actor, None, "从公海领取", now)
    return customer


def assign(
    session: Session, *, actor: Actor, customer_id: int, owner_id: int, now: datetime, reason: str
) -> Customer:
    """A manager gives a pool customer to a rep of their team (the boss: to anyone)."""
    if not actor.can_manage:
        raise Forbidden("只有主管或老板可以分配公海客户")
    customer = _pool_customer(session, actor, customer_id, now)
    owner = session.scalar(select(User).where(User.id == owner_id, user_scope(actor)))
    if owner is None or owner.role != Role.REP:
        raise NotFound("销售")
    if not owner.is_active:
        raise Invalid("不能分配给已停用的成员", field="owner_id")
    _take(session, customer, owner, now)
    _record(session, customer, "assign", owner.id, actor, None, reason, now)
    return customer


def auto_assign(
    session: Session,
    *,
    customer: Customer,
    now: datetime,
    actor: Actor | None = None,
    strategy: AutoAssign | None = None,
    exclude_user_ids: Collection[int] = (),
) -> User | None:
    """Give a customer (in the pool, or owned and escalated) to a rep of its team, fairly.

    Round-robin picks the active rep whose last auto-assignment is oldest (never: first);
    least-loaded the one holding the fewest open customers. Ties go to the least recently
    assigned, then the lowest id. None when the team has no other active rep.
    """
    if customer.team_id is None:
        return None
    strategy = strategy or pool_policy(session, customer.team_id).auto_assign
    reps = list(
        session.scalars(
            select(User).where(
                *_eligible(customer.team_id),
                User.id.not_in(list(exclude_user_ids)) if exclude_user_ids else true(),
            )
        )
    )
    if not reps:
        return None
    ids = [r.id for r in reps]
    # Event ids order assignments even when several share one timestamp (one batch).
    last = dict(
        session.execute(
            select(PoolEvent.user_id, func.max(PoolEvent.id))
            .where(PoolEvent.kind == "auto_assign", PoolEvent.user_id.in_(ids))
            .group_by(PoolEvent.user_id)
        ).all()
    )
    if strategy is AutoAssign.LEAST_LOADED:
        load = holdings(session, ids)
        chosen = min(reps, key=lambda r: (load.get(r.id, 0), last.get(r.id, 0), r.id))
    else:
        chosen = min(reps, key=lambda r: (last.get(r.id, 0), r.id))
    previous = customer.owner_id
    try:
        _take(session, customer, chosen, now, expected_owner_id=previous)
    except Conflict:
        # Someone claimed or moved it since it was loaded; theirs stands.
        session.refresh(customer)
        return None
    reason = f"自动分配（{_STRATEGY_LABELS[strategy]}）"
    _record(session, customer, "auto_assign", chosen.id, actor, previous, reason, now)
    return chosen


def auto_assign_unowned(
    session: Session,
    *,
    actor: Actor,
    now: datetime,
    team_id: int | None = None,
    strategy: AutoAssign | None = None,
) -> list[tuple[int, int]]:
    """A manager hands out every unowned customer of their team; (customer, rep) pairs."""
    if not actor.can_manage:
        raise Forbidden("只有主管或老板可以自动分配")
    team = team_id if team_id is not None else actor.team_id
    if team is None or (actor.role is Role.MANAGER and team != actor.team_id):
        raise NotFound("团队")
    if session.get(Team, team) is None:
        raise NotFound("团队")
    if not session.scalar(select(func.count()).where(*_eligible(team))):
        raise Conflict("该团队没有在职的销售可以分配", code="no_active_rep")
    policy = pool_policy(session, team)
    # The team's own pool, and customers of no team yet (an import, a WeCom contact).
    customers = list(
        session.scalars(
            select(Customer)
            .where(
                Customer.owner_id.is_(None),
                or_(Customer.team_id == team, Customer.team_id.is_(None)),
            )
            .order_by(Customer.released_at.is_(None), Customer.released_at, Customer.id)
            .with_for_update()
        )
    )
    cooling = _cooling_owners(session, [c.id for c in customers], policy, now)
    assigned = []
    for customer in customers:
        original_team = customer.team_id
        customer.team_id = team
        rep = auto_assign(
            session,
            customer=customer,
            now=now,
            actor=actor,
            strategy=strategy,
            exclude_user_ids=cooling.get(customer.id, ()),
        )
        if rep is None:  # only its previous owner was left: it waits in the pool
            customer.team_id = original_team
            continue
        assigned.append((customer.id, rep.id))
    session.flush()
    return assigned


def _eligible(team_id: int) -> list[ColumnElement[bool]]:
    """Who auto-assignment may pick: active reps of the team (never a manager or the boss)."""
    return [User.team_id == team_id, User.role == Role.REP, User.is_active.is_(True)]


def _cooling_owners(
    session: Session, customer_ids: list[int], policy: PoolPolicy, now: datetime
) -> dict[int, set[int]]:
    """Per customer, the rep it was last released from if still within the cool-down.

    A release is meant to move the customer on; auto-assignment must not hand it straight back.
    """
    if not customer_ids or not policy.cooldown_days:
        return {}
    latest = (
        select(func.max(PoolEvent.id))
        .where(PoolEvent.customer_id.in_(customer_ids), PoolEvent.kind == "release")
        .group_by(PoolEvent.customer_id)
    )
    rows = session.execute(
        select(PoolEvent.customer_id, PoolEvent.user_id).where(
            PoolEvent.id.in_(latest),
            PoolEvent.at > now - timedelta(days=policy.cooldown_days),
        )
    )
    return {customer_id: {user_id} for customer_id, user_id in rows if user_id is not None}


def _pool_customer(session: Session, actor: Actor, customer_id: int, now: datetime) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.id == customer_id, pool_scope(actor)))
    if customer is not None:
        return customer
    # The loser of a race hears why, without learning about customers never in their pool.
    taken = session.scalar(
        select(PoolEvent.id)
        .join(Customer, Customer.id == PoolEvent.customer_id)
        .where(
            PoolEvent.customer_id == customer_id,
            PoolEvent.kind.in_(("claim", "assign", "auto_assign")),
            PoolEvent.at >= now - RECENTLY_TAKEN,
            _pool_teams(actor),
        )
        .limit(1)
    )
    if taken is not None:
        raise Conflict("该客户已被其他同事领取", code="already_claimed")
    raise NotFound("公海客户")


def _check_caps(
    session: Session, rep_id: int, customer_id: int, policy: PoolPolicy, now: datetime
) -> None:
    day_start, _ = calendar.day_bounds(now)
    claimed_today = session.scalar(
        select(func.count()).where(
            PoolEvent.kind == "claim", PoolEvent.user_id == rep_id, PoolEvent.at >= day_start
        )
    )
    if (claimed_today or 0) >= policy.claims_per_day:
        raise Conflict(f"今天已领取 {policy.claims_per_day} 个客户，明天再来", code="claim_limit")
    if holdings(session, [rep_id]).get(rep_id, 0) >= policy.max_holdings:
        raise Conflict(
            f"名下未成交客户已达 {policy.max_holdings} 个上限，请先推进或释放", code="holding_limit"
        )
    if policy.cooldown_days:
        released = session.scalar(
            select(func.max(PoolEvent.at)).where(
                PoolEvent.customer_id == customer_id,
                PoolEvent.kind == "release",
                PoolEvent.user_id == rep_id,
            )
        )
        if released is not None and now < released + timedelta(days=policy.cooldown_days):
            allowed = calendar.local_date(released + timedelta(days=policy.cooldown_days))
            raise Conflict(
                f"该客户从你名下释放未满 {policy.cooldown_days} 天，{allowed:%m月%d日}后才能领回",
                code="cooldown",
            )


def _take(
    session: Session,
    customer: Customer,
    owner: User,
    now: datetime,
    expected_owner_id: int | None = None,
) -> None:
    """The one statement that decides who wins a race for a customer."""
    expected = (
        Customer.owner_id.is_(None)
        if expected_owner_id is None
        else Customer.owner_id == expected_owner_id
    )
    taken = session.execute(
        update(Customer)
        .where(Customer.id == customer.id, expected)
        .values(
            owner_id=owner.id,
            team_id=owner.team_id,
            released_at=None,
            release_reason=None,
            updated_at=now,
        ),
        execution_options={"synchronize_session": False},
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("该客户已被其他同事领取", code="already_claimed")
    session.refresh(customer)


def holdings(session: Session, rep_ids: list[int]) -> dict[int, int]:
    """Open customers each rep holds (what the holdings cap counts)."""
    if not rep_ids:
        return {}
    rows = session.execute(
        select(Customer.owner_id, func.count())
        .where(Customer.owner_id.in_(rep_ids), Customer.stage.in_(OPEN_STAGES))
        .group_by(Customer.owner_id)
    )
    return {owner_id: count for owner_id, count in rows if owner_id is not None}


def _masked(phone: str | None) -> str | None:
    if not phone or len(phone) < 7:
        return phone
    return f"{phone[:3]}****{phone[-4:]}"


def _record(
    session: Session,
    customer: Customer,
    kind: str,
    user_id: int | None,
    actor: Actor | None,
    previous_owner: int | None,
    reason: str,
    now: datetime,
) -> None:
    """A move into or out of the pool: its PoolEvent (what caps and cool-downs read) and the
    customer's audit entry. `user_id` is the owner released from, or the new owner."""
    session.add(
        PoolEvent(
            customer_id=customer.id,
            kind=kind,
            user_id=user_id,
            actor_id=actor.user_id if actor else None,
            reason=reason[:255],
            at=now,
        )
    )
    audit.record(
        session,
        actor=actor,
        entity="customer",
        entity_id=customer.id,
        action=kind,
        before={"owner_id": previous_owner},
        after={"owner_id": customer.owner_id},
        now=now,
        reason=reason,
    )
    session.flush()
