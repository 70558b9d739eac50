"""The demo's sample company as planned, without a database: deterministic, moving only as the
customer book allows, released and dated by the product's rules."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from crm.calendar import BUSINESS_TZ
from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from crm.vocab import ALLOWED_STAGE_MOVES, OPEN_STAGES
from synthetic import sample
from synthetic.rules import default_pool_release


def _fingerprint(plans):
    return [
        (
            p.values,
            p.owner,
            [(m.at, m.from_stage, m.to_stage, m.cause) for m in p.moves],
            [(f.at, f.method, f.summary, f.next_follow_up_on) for f in p.follow_ups],
            p.tags,
            p.custom_values,
        )
        for p in plans
    ]


def test_the_same_seed_plans_the_same_company(clock):
    first = sample.plan_customers(now=clock(), customer_count=200, rng_seed=7)
    again = sample.plan_customers(now=clock(), customer_count=200, rng_seed=7)
    other = sample.plan_customers(now=clock(), customer_count=200, rng_seed=8)
    assert _fingerprint(first) == _fingerprint(again)
    assert _fingerprint(first) != _fingerprint(other)


def test_planned_moves_are_moves_the_customer_book_allows():
    for stage, moves in sample.STAGE_MOVES.items():
        for target, _weight in moves:
            assert target in ALLOWED_STAGE_MOVES[stage], (stage, target)


def test_planning_refuses_a_naive_now():
    with pytest.raises(ValueError):
        sample.plan_customers(now=datetime(2026, 3, 2), customer_count=1, rng_seed=7)


def test_quiet_open_customers_are_released_as_the_default_timer_rule_says(clock):
    release = default_pool_release()
    plans = sample.plan_customers(now=clock(), customer_count=1200, rng_seed=7)
    by_timer = [p for p in plans if p.released_at and p.stage in OPEN_STAGES]
    assert by_timer
    for plan in by_timer:
        quiet_for = plan.released_at - plan.follow_ups[-1].at
        assert quiet_for == timedelta(days=release.after_days, hours=1)
        assert plan.release_reason == release.reason
        assert plan.owner is None and plan.released_by is not None


def test_the_pool_release_is_read_from_the_default_timers(monkeypatch):
    timers = {
        "rules": [
            {
                "name": "45天未跟进释放公海",
                "clock": "last_follow_up",
                "steps": [
                    {"after_days": 45, "do": [{"action": "release_to_pool", "reason": "久未跟进"}]}
                ],
            }
        ]
    }
    monkeypatch.setitem(DEFAULT_DOCUMENTS, "timers", timers)
    release = default_pool_release()
    assert (release.after_days, release.reason) == (45, "久未跟进")


def test_planned_work_happens_in_beijing_working_hours(clock):
    plans = sample.plan_customers(now=clock(), customer_count=300, rng_seed=7)
    moments = [f.at for p in plans for f in p.follow_ups] + [m.at for p in plans for m in p.moves]
    local = [m.astimezone(BUSINESS_TZ).time() for m in moments]
    assert all(time(8, 30) <= t <= time(19, 31) for t in local)
    # In UTC the same moments spread from 00:30 to 11:31: a UTC day would be the wrong one.
    assert max(m.hour for m in moments) <= 11
