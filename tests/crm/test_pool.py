"""The public pool: caps, cool-down, races, fair auto-assignment."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, update

from crm import customer_changes, pool
from crm.actors import Actor
from crm.errors import Conflict, Forbidden, NotFound
from crm.rules import publisher
from crm.rulesets.policy import AutoAssign
from models import AuditEntry, Customer, PoolEvent, User
from tests.factories import make_company, make_customer


@pytest.fixture
def company(session):
    return make_company(session)


def _pooled(session, owner, clock, count=1, **values):
    """Customers released from `owner` (so they keep its team)."""
    released = []
    for _ in range(count):
        customer = make_customer(session, owner, clock(), **values)
        pool.release(session, customer=customer, reason="测试释放", now=clock())
        released.append(customer)
    session.commit()
    return released


def _policy(session, boss, clock, **values):
    draft = publisher.create_draft(
        session, actor=Actor.of(boss), kind="pool", document=values, note=None, now=clock()
    )
    publisher.publish(session, actor=Actor.of(boss), draft_id=draft.id, reason="测试", now=clock())
    session.commit()


def test_a_teams_own_policy_caps_its_reps_claims_and_no_one_elses(company, session, clock):
    manager = Actor.of(company.managers[0])
    draft = publisher.create_draft(
        session, actor=manager, kind="pool", document={"claims_per_day": 1}, note=None, now=clock()
    )
    publisher.publish(session, actor=manager, draft_id=draft.id, reason="一组", now=clock())
    session.commit()
    assert pool.pool_policy(session, company.teams[0].id).claims_per_day == 1
    assert pool.pool_policy(session, company.teams[1].id).claims_per_day == 5  # the company's
    for team in (0, 1):
        leaver, rep = company.reps[team]
        pooled = _pooled(session, leaver, clock, count=2)
        pool.claim(session, actor=Actor.of(rep), customer_id=pooled[0].id, now=clock())
        if team == 0:
            with pytest.raises(Conflict) as refused:
                pool.claim(session, actor=Actor.of(rep), customer_id=pooled[1].id, now=clock())
            assert refused.value.code == "claim_limit"
        else:
            claimed = pool.claim(
                session, actor=Actor.of(rep), customer_id=pooled[1].id, now=clock()
            )
            assert claimed.owner_id == rep.id


def test_a_release_keeps_the_reason_and_the_team(company, session, clock):
    rep = company.reps[0][0]
    [customer] = _pooled(session, rep, clock)
    assert (customer.owner_id, customer.team_id) == (None, rep.team_id)
    assert customer.release_reason == "测试释放" and customer.released_at == clock()
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "release")).one()
    assert (entry.before, entry.after) == ({"owner_id": rep.id}, {"owner_id": None})
    assert pool.release(session, customer=customer, reason="再次", now=clock()) is False


def test_reps_see_their_teams_pool_and_masked_phones(company, session, clock):
    [ours] = _pooled(session, company.reps[0][0], clock, phone="13800138000")
    [theirs] = _pooled(session, company.reps[1][0], clock)
    rep_view = pool.list_pool(session, actor=Actor.of(company.reps[0][1]), now=clock())
    assert [(c["id"], c["phone"]) for c in rep_view.items] == [(ours.id, "138****8000")]
    manager_view = pool.list_pool(session, actor=Actor.of(company.managers[1]), now=clock())
    assert [c["id"] for c in manager_view.items] == [theirs.id]
    boss_view = pool.list_pool(session, actor=Actor.of(company.boss), now=clock())
    assert {c["id"] for c in boss_view.items} == {ours.id, theirs.id}
    assert boss_view.items[0]["phone"] == "13800138000"
    with pytest.raises(NotFound):  # another team's pool is not there for this rep
        pool.claim(session, actor=Actor.of(company.reps[0][1]), customer_id=theirs.id, now=clock())


def test_claims_per_day_are_capped_and_the_cap_resets_the_next_day(company, session, clock):
    _policy(session, company.boss, clock, claims_per_day=2)
    leaver, rep = company.reps[0]
    pooled = _pooled(session, leaver, clock, count=3)
    me = Actor.of(rep)
    for customer in pooled[:2]:
        pool.claim(session, actor=me, customer_id=customer.id, now=clock())
    with pytest.raises(Conflict) as refused:
        pool.claim(session, actor=me, customer_id=pooled[2].id, now=clock())
    assert refused.value.code == "claim_limit"
    clock.advance(days=1)
    assert pool.claim(session, actor=me, customer_id=pooled[2].id, now=clock()).owner_id == rep.id


def test_holdings_are_capped_on_open_customers_only(company, session, clock):
    _policy(session, company.boss, clock, max_holdings=2)
    leaver, rep = company.reps[0]
    make_customer(session, rep, clock())
    make_customer(session, rep, clock(), stage="成交")  # won deals do not count
    [first, second] = _pooled(session, leaver, clock, count=2)
    pool.claim(session, actor=Actor.of(rep), customer_id=first.id, now=clock())
    with pytest.raises(Conflict) as refused:
        pool.claim(session, actor=Actor.of(rep), customer_id=second.id, now=clock())
    assert refused.value.code == "holding_limit"


def test_the_previous_owner_waits_out_the_cool_down(company, session, clock):
    rep, colleague = company.reps[0]
    [customer] = _pooled(session, rep, clock)
    with pytest.raises(Conflict) as refused:
        pool.claim(session, actor=Actor.of(rep), customer_id=customer.id, now=clock())
    assert refused.value.code == "cooldown" and "7 天" in refused.value.message
    clock.advance(days=7)
    assert pool.claim(session, actor=Actor.of(rep), customer_id=customer.id, now=clock())
    assert colleague  # a colleague could have claimed it at once (next test covers races)


def test_only_reps_claim_and_managers_assign_within_their_team(company, session, clock):
    rep = company.reps[0][0]
    [customer] = _pooled(session, rep, clock)
    with pytest.raises(Forbidden):
        pool.claim(
            session, actor=Actor.of(company.managers[0]), customer_id=customer.id, now=clock()
        )
    with pytest.raises(NotFound):  # a rep of another team is not the manager's to give to
        pool.assign(
            session,
            actor=Actor.of(company.managers[0]),
            customer_id=customer.id,
            owner_id=company.reps[1][0].id,
            now=clock(),
            reason="x",
        )
    assigned = pool.assign(
        session,
        actor=Actor.of(company.managers[0]),
        customer_id=customer.id,
        owner_id=company.reps[0][1].id,
        now=clock(),
        reason="熟悉该区域",
    )
    assert assigned.owner_id == company.reps[0][1].id and assigned.release_reason is None
    kinds = session.scalars(select(PoolEvent.kind).order_by(PoolEvent.id)).all()
    assert kinds == ["release", "assign"]


def test_two_reps_claiming_at_once_exactly_one_wins(company, runtime, session, clock):
    leaver = company.reps[0][0]
    rivals = [company.reps[0][1], _another_rep(session, company)]
    [customer] = _pooled(session, leaver, clock)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def claim_as(rep):
        try:
            with runtime.db.session(lock_for_write=True) as own:
                barrier.wait()
                claimed = pool.claim(own, actor=Actor.of(rep), customer_id=customer.id, now=clock())
                own.commit()
                outcomes.append(claimed.owner_id)
        except Conflict as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=claim_as, args=(rep,)) for rep in rivals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if isinstance(o, int)]
    assert len(winners) == 1 and outcomes.count("already_claimed") == 1
    session.expire_all()
    assert session.get(Customer, customer.id).owner_id == winners[0]
    claims = session.scalar(select(func.count()).where(PoolEvent.kind == "claim"))
    assert claims == 1


def _another_rep(session, company):
    rep = User(
        wecom_userid="rep02",
        name="销售02",
        role="rep",
        team_id=company.teams[0].id,
        manager_id=company.managers[0].id,
        is_active=True,
    )
    session.add(rep)
    session.commit()
    return rep


def test_round_robin_takes_turns_and_skips_inactive_reps(company, session, clock):
    first, second = company.reps[0]
    third = _another_rep(session, company)
    pooled = _pooled(session, second, clock, count=4)
    second.is_active = False  # left the company: their released customers go round the others
    session.commit()
    manager = Actor.of(company.managers[0])
    pairs = pool.auto_assign_unowned(
        session, actor=manager, now=clock(), strategy=AutoAssign.ROUND_ROBIN
    )
    assert [c for c, _ in pairs] == [c.id for c in pooled]
    assert [r for _, r in pairs] == [first.id, third.id, first.id, third.id]


def test_least_loaded_evens_out_holdings(company, session, clock):
    busy, idle = company.reps[0]
    for _ in range(3):
        make_customer(session, busy, clock())
    pooled = _pooled(session, busy, clock, count=4)  # busy holds 3 open customers now
    clock.advance(days=8)  # past the cool-down, busy may get their old customers again
    pairs = pool.auto_assign_unowned(
        session, actor=Actor.of(company.managers[0]), now=clock(), strategy=AutoAssign.LEAST_LOADED
    )
    owners = [r for _, r in pairs]
    assert owners == [idle.id, idle.id, idle.id, busy.id]  # 0,1,2 < 3; then 3 vs 3: idle was last
    assert len(pooled) == len(pairs)


def test_a_manager_cannot_auto_assign_another_teams_customers(company, session, clock):
    with pytest.raises(NotFound):
        pool.auto_assign_unowned(
            session, actor=Actor.of(company.managers[0]), now=clock(), team_id=company.teams[1].id
        )


def test_reassigning_a_customer_to_the_pool_by_hand_needs_a_manager(company, session, clock):
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock())
    with pytest.raises(Forbidden):
        pool.release_by_hand(
            session, actor=Actor.of(rep), customer_id=customer.id, reason="不想跟了", now=clock()
        )
    released = pool.release_by_hand(
        session,
        actor=Actor.of(company.managers[0]),
        customer_id=customer.id,
        reason="重新分配",
        now=clock(),
    )
    assert released.owner_id is None


def test_customers_of_no_team_are_handed_out_with_the_team(company, session, clock):
    imported = customer_changes.create_customer(
        session, actor=Actor.of(company.boss), values={"name": "导入的客户"}, now=clock()
    )
    session.commit()
    assert (imported.owner_id, imported.team_id) == (None, None)
    pairs = pool.auto_assign_unowned(
        session, actor=Actor.of(company.boss), now=clock(), team_id=company.teams[1].id
    )
    assert pairs == [(imported.id, company.reps[1][0].id)]
    assert session.get(Customer, imported.id).team_id == company.teams[1].id


def test_one_reps_simultaneous_claims_stay_within_the_daily_cap(company, runtime, session, clock):
    _policy(session, company.boss, clock, claims_per_day=1)
    leaver, rep = company.reps[0]
    pooled = _pooled(session, leaver, clock, count=2)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def claim(customer_id):
        try:
            with runtime.db.session(lock_for_write=True) as own:
                barrier.wait()
                pool.claim(own, actor=Actor.of(rep), customer_id=customer_id, now=clock())
                own.commit()
                outcomes.append("claimed")
        except Conflict as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=claim, args=(c.id,)) for c in pooled]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["claim_limit", "claimed"]
    owned = session.scalar(select(func.count()).where(Customer.owner_id == rep.id))
    assert owned == 1


def test_a_claim_is_a_pool_event_and_an_audit_entry(company, session, clock):
    leaver, rep = company.reps[0]
    [customer] = _pooled(session, leaver, clock)
    pool.claim(session, actor=Actor.of(rep), customer_id=customer.id, now=clock())
    event = session.scalars(select(PoolEvent).where(PoolEvent.kind == "claim")).one()
    assert (event.customer_id, event.user_id, event.actor_id) == (customer.id, rep.id, rep.id)
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "claim")).one()
    assert (entry.before, entry.after) == ({"owner_id": None}, {"owner_id": rep.id})
    assert (customer.released_at, customer.release_reason) == (None, None)


def test_the_pool_shows_days_waited_and_searches_wildcards_literally(company, session, clock):
    leaver = company.reps[0][0]
    [plain] = _pooled(session, leaver, clock, name="华美陶瓷")
    [odd] = _pooled(session, leaver, clock, name="100%卫浴")
    clock.advance(days=3, hours=2)
    boss = Actor.of(company.boss)
    page = pool.list_pool(session, actor=boss, now=clock())
    assert [item["days_in_pool"] for item in page.items] == [3, 3]
    assert [i["id"] for i in pool.list_pool(session, actor=boss, now=clock(), q="%").items] == [
        odd.id
    ]
    assert pool.list_pool(session, actor=boss, now=clock(), q="陶瓷").items[0]["id"] == plain.id


def test_auto_assignment_does_not_hand_a_release_straight_back(company, session, clock):
    neglecter, colleague = company.reps[0]
    _policy(session, company.boss, clock, cooldown_days=7)
    [first] = _pooled(session, neglecter, clock)
    manager = Actor.of(company.managers[0])
    colleague.is_active = False
    session.commit()
    assert pool.auto_assign_unowned(session, actor=manager, now=clock()) == []
    assert session.get(Customer, first.id).owner_id is None  # it waits rather than go back
    clock.advance(days=8)
    pairs = pool.auto_assign_unowned(session, actor=manager, now=clock())
    assert pairs == [(first.id, neglecter.id)]


def test_auto_assignment_needs_an_active_rep_and_touches_nothing_without_one(
    company, session, clock
):
    imported = customer_changes.create_customer(
        session, actor=Actor.of(company.boss), values={"name": "无主客户"}, now=clock()
    )
    for rep in company.reps[1]:
        rep.is_active = False  # only the manager is left, and managers are never picked
    session.commit()
    with pytest.raises(Conflict) as refused:
        pool.auto_assign_unowned(
            session, actor=Actor.of(company.boss), now=clock(), team_id=company.teams[1].id
        )
    assert refused.value.code == "no_active_rep"
    with pytest.raises(NotFound):
        pool.auto_assign_unowned(session, actor=Actor.of(company.boss), now=clock(), team_id=999)
    session.rollback()
    fresh = session.get(Customer, imported.id)
    assert (fresh.owner_id, fresh.team_id) == (None, None)
    assert session.scalar(select(func.count()).select_from(PoolEvent)) == 0


def test_auto_assign_leaves_a_customer_claimed_since_it_was_loaded(company, session, clock):
    leaver, rep = company.reps[0]
    [customer] = _pooled(session, leaver, clock)
    # Another session's claim lands after this one loaded the customer (still unowned here).
    session.execute(
        update(Customer).where(Customer.id == customer.id).values(owner_id=rep.id),
        execution_options={"synchronize_session": False},
    )
    assert customer.owner_id is None
    assert pool.auto_assign(session, customer=customer, now=clock()) is None
    assert customer.owner_id == rep.id
    kinds = session.scalars(select(PoolEvent.kind)).all()
    assert "auto_assign" not in kinds
