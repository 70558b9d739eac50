"""The team funnel on the demo company equals what plain SQL over stage history gives.

The SQL below is written out on purpose and shares nothing with crm/analytics/funnel.py: the
first entries are joined to the last move into the next stage (not an EXISTS), and stays are
found with LAG over each customer's history (not a correlated MAX).
"""

from __future__ import annotations

import statistics
from datetime import date

import pytest
from sqlalchemy import Integer, TextClause, bindparam, text

from crm import calendar
from crm.actors import Actor
from crm.analytics import funnel
from crm.errors import Forbidden, Invalid, NotFound
from crm.vocab import Stage
from models.base import UTCDateTime
from wecrm.demo import seeding

# The demo's clock stands at 2026-03-02; its history reaches back sixteen months.
PERIOD = funnel.Period.of(date(2025, 12, 1), date(2026, 3, 1))
STEPS = ((Stage.LEAD, Stage.INTEREST), (Stage.INTEREST, Stage.QUOTE), (Stage.QUOTE, Stage.WON))

TEAM = "(:team_id IS NULL OR c.team_id = :team_id)"

NOW_SQL = f"""
    SELECT c.stage, count(*) FROM customers c WHERE {TEAM} GROUP BY c.stage
"""
ENTERED_SQL = f"""
    SELECT sc.to_stage, count(DISTINCT sc.customer_id)
    FROM stage_changes sc JOIN customers c ON c.id = sc.customer_id
    WHERE sc.changed_at >= :start AND sc.changed_at < :end AND {TEAM}
    GROUP BY sc.to_stage
"""
STEP_SQL = f"""
    SELECT count(*), count(nxt.customer_id)
    FROM (
        SELECT sc.customer_id, min(sc.changed_at) AS first_at
        FROM stage_changes sc JOIN customers c ON c.id = sc.customer_id
        WHERE sc.to_stage = :stage AND sc.changed_at >= :start AND sc.changed_at < :end
          AND {TEAM}
        GROUP BY sc.customer_id
    ) e
    LEFT JOIN (
        SELECT customer_id, max(changed_at) AS last_at
        FROM stage_changes
        WHERE to_stage = :next_stage AND changed_at < :end
        GROUP BY customer_id
    ) nxt ON nxt.customer_id = e.customer_id AND nxt.last_at > e.first_at
"""
STAYS_SQL = f"""
    SELECT t.from_stage, t.began, t.changed_at
    FROM (
        SELECT customer_id, from_stage, changed_at,
               LAG(changed_at) OVER (PARTITION BY customer_id ORDER BY changed_at) AS began
        FROM stage_changes
    ) t JOIN customers c ON c.id = t.customer_id
    WHERE t.changed_at >= :start AND t.changed_at < :end AND t.from_stage IS NOT NULL
      AND {TEAM}
"""


PARAMETER_TYPES = {"start": UTCDateTime(), "end": UTCDateTime(), "team_id": Integer()}


def _sql(statement: str) -> TextClause:
    clause = text(statement)
    return clause.bindparams(
        *(
            bindparam(name, type_=kind)
            for name, kind in PARAMETER_TYPES.items()
            if f":{name}" in statement
        )
    )


def _expected(session, period: funnel.Period, team_id: int | None) -> dict:
    params = {
        "start": calendar.day_start(period.start),
        "end": calendar.day_start(period.end),
        "team_id": team_id,
    }
    now = dict(session.execute(_sql(NOW_SQL), params).all())
    entered = dict(session.execute(_sql(ENTERED_SQL), params).all())
    steps = {
        stage: tuple(
            session.execute(
                _sql(STEP_SQL), {**params, "stage": stage, "next_stage": next_stage}
            ).one()
        )
        for stage, next_stage in STEPS
    }
    stays: dict[str, list[float]] = {}
    rows = session.execute(
        _sql(STAYS_SQL).columns(began=UTCDateTime(), changed_at=UTCDateTime()), params
    )
    for stage, began, ended in rows:
        stays.setdefault(stage, []).append((ended - began).total_seconds() / 86400)
    return {"now": now, "entered": entered, "steps": steps, "stays": stays}


def _assert_equal(figures: funnel.Figures, expected: dict) -> None:
    assert [(s.stage, s.now, s.entered) for s in figures.stages] == [
        (stage, expected["now"].get(stage, 0), expected["entered"].get(stage, 0)) for stage in Stage
    ]
    assert [(s.from_stage, s.to_stage, s.base, s.converted) for s in figures.steps] == [
        (stage, next_stage, *expected["steps"][stage]) for stage, next_stage in STEPS
    ]
    for dwell in figures.dwell:
        days = expected["stays"].get(dwell.stage, [])
        assert dwell.stays == len(days), dwell.stage
        if days:
            assert dwell.average_days == pytest.approx(statistics.fmean(days))
            assert dwell.median_days == pytest.approx(statistics.median(days))
        else:
            assert dwell.average_days is dwell.median_days is None


@pytest.fixture
def demo(session, clock):
    company = seeding.seed_company(session, now=clock(), customer_count=1200)
    session.commit()
    return company


def test_the_company_funnel_equals_plain_sql_over_stage_history(session, demo):
    report = funnel.team_funnel(session, actor=Actor.of(demo.boss), period=PERIOD)
    expected = _expected(session, PERIOD, None)

    _assert_equal(report.total, expected)
    # The demo's history is rich enough for every figure to mean something.
    assert all(base >= funnel.MIN_STEP_BASE for base, _ in expected["steps"].values())
    assert all(0 < converted < base for base, converted in expected["steps"].values())
    assert all(len(expected["stays"].get(stage, [])) > 10 for stage, _ in STEPS)
    rates = {stage: converted / base for stage, (base, converted) in expected["steps"].items()}
    weakest = report.total.weakest_step
    assert weakest is not None and weakest.from_stage == min(rates, key=rates.__getitem__)
    # By team: each team's figures are its own, and they add up to the company's.
    assert [t.team_id for t in report.teams] == [t.id for t in demo.teams]
    for team in report.teams:
        _assert_equal(team.funnel, _expected(session, PERIOD, team.team_id))
    for index, stage in enumerate(Stage):
        counts = [t.funnel.stages[index] for t in report.teams]
        assert sum(c.now for c in counts) == report.total.stages[index].now, stage
        assert sum(c.entered for c in counts) == report.total.stages[index].entered, stage


def test_a_managers_funnel_is_their_teams_and_another_team_is_not_found(session, demo):
    manager = demo.managers[1]
    report = funnel.team_funnel(session, actor=Actor.of(manager), period=PERIOD)

    _assert_equal(report.total, _expected(session, PERIOD, manager.team_id))
    assert [t.team_id for t in report.teams] == [manager.team_id]
    team_reps = {r.id for r in demo.reps if r.team_id == manager.team_id}
    assert {r.user_id for r in report.reps} == team_reps
    assert sum(r.funnel.stages[0].entered for r in report.reps) <= (
        report.total.stages[0].entered  # pool customers count for the team, for no rep
    )
    other = next(t for t in demo.teams if t.id != manager.team_id)
    with pytest.raises(NotFound):
        funnel.team_funnel(session, actor=Actor.of(manager), period=PERIOD, team_id=other.id)
    own = funnel.team_funnel(
        session, actor=Actor.of(manager), period=PERIOD, team_id=manager.team_id
    )
    assert own.total == report.total


def test_reps_are_refused_the_funnel(session, demo):
    with pytest.raises(Forbidden):
        funnel.team_funnel(session, actor=Actor.of(demo.reps[0]), period=PERIOD)


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        (date(2026, 3, 1), date(2026, 3, 1), "period_reversed"),
        (date(2026, 3, 2), date(2026, 3, 1), "period_reversed"),
        (date(2025, 1, 1), date(2026, 1, 3), "period_too_long"),
        (date(1999, 12, 1), date(2000, 1, 1), "period_out_of_range"),
    ],
)
def test_an_empty_reversed_too_long_or_far_off_period_is_refused(start, end, code):
    with pytest.raises(Invalid) as refused:
        funnel.Period.of(start, end)
    assert refused.value.code == code


def test_a_leap_year_fits_in_one_period():
    assert funnel.Period.of(date(2024, 1, 1), date(2025, 1, 1)).end == date(2025, 1, 1)


def test_the_weakest_step_needs_a_base_large_enough_to_mean_something():
    small = funnel.Step(Stage.QUOTE, Stage.WON, funnel.MIN_STEP_BASE - 1, 0)
    weak = funnel.Step(Stage.LEAD, Stage.INTEREST, funnel.MIN_STEP_BASE, 5)
    strong = funnel.Step(Stage.INTEREST, Stage.QUOTE, 100, 80)
    assert funnel._weakest([small, weak, strong]) is weak
    assert funnel._weakest([small]) is None
