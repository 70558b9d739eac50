"""GET /analytics/funnel as each role: a manager's team, the boss's teams, reps refused; the
filters, two periods side by side, and the codes of bad input. The figures themselves are
checked against plain SQL on the demo company in tests/crm/analytics/test_funnel.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm import customer_changes
from crm.actors import Actor
from tests.factories import make_company, make_customer, sign_in

MISSING = 2_000_000_000
FEBRUARY = "start=2026-02-01&end=2026-03-01"
JANUARY = "start=2026-01-01&end=2026-02-01"


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


@pytest.fixture
def world(session):
    """Team 0: a lead of 10 Jan quoted by 5 Feb (长沙县, project), a lead of 10 Feb interested
    on 15 Feb. Team 1: a lead of 5 Jan interested only on 20 Feb, a lead of 12 Feb."""
    company = make_company(session)
    (rep00, rep01), (rep10, rep11) = company.reps
    quoted = make_customer(session, rep00, at(1, 10), region="长沙县", category="工程客户")
    interested = make_customer(session, rep01, at(2, 10), region="株洲县", category="零售客户")
    slow = make_customer(session, rep10, at(1, 5), region="长沙县", source="展会获取")
    make_customer(session, rep11, at(2, 12), region="株洲县", source="线上广告")
    for customer, owner, stage, moment in (
        (quoted, rep00, "意向", at(1, 20)),
        (quoted, rep00, "报价", at(2, 5)),
        (interested, rep01, "意向", at(2, 15)),
        (slow, rep10, "意向", at(2, 20)),
    ):
        customer_changes.move_stage(
            session,
            actor=Actor.of(owner),
            customer_id=customer.id,
            to_stage=stage,
            now=moment,
            cause="测试",
        )
        session.commit()
    return company


@pytest.fixture
def get(client, fake_wecom):
    def get(user, query):
        return client.get(
            f"/api/v1/analytics/funnel?{query}", headers=sign_in(client, fake_wecom, user)
        )

    return get


def stages(figures, key):
    return {s["stage"]: s[key] for s in figures["stages"] if s[key]}


def steps(figures):
    return {s["from_stage"]: (s["base"], s["converted"]) for s in figures["steps"]}


def dwell(figures):
    return {d["stage"]: (d["stays"], d["average_days"], d["median_days"]) for d in figures["dwell"]}


def test_a_manager_sees_their_team_and_another_teams_id_is_not_found(world, get):
    manager = world.managers[0]
    response = get(manager, FEBRUARY)
    assert response.status_code == 200, response.json
    period = response.json["period"]
    assert stages(period["total"], "now") == {"报价": 1, "意向": 1}
    assert stages(period["total"], "entered") == {"潜在": 1, "意向": 1, "报价": 1}
    assert [t["team_id"] for t in period["teams"]] == [world.teams[0].id]
    assert [r["user_id"] for r in period["reps"]] == [r.id for r in world.reps[0]]
    assert response.json["compare"] is None

    other = get(manager, f"{FEBRUARY}&team_id={world.teams[1].id}")
    missing = get(manager, f"{FEBRUARY}&team_id={MISSING}")
    assert other.status_code == missing.status_code == 404
    assert other.json == missing.json
    assert other.json["error"]["code"] == "not_found"
    assert get(manager, f"{FEBRUARY}&team_id={world.teams[0].id}").json == response.json


def test_the_boss_sees_every_team_or_the_one_asked_for_and_reps_are_refused(world, get):
    everyone = get(world.boss, FEBRUARY).json["period"]
    assert stages(everyone["total"], "now") == {"潜在": 1, "意向": 2, "报价": 1}
    teams = {t["name"]: stages(t["funnel"], "now") for t in everyone["teams"]}
    assert teams == {"长沙一组": {"报价": 1, "意向": 1}, "株洲二组": {"潜在": 1, "意向": 1}}
    assert len(everyone["reps"]) == 4

    one = get(world.boss, f"{FEBRUARY}&team_id={world.teams[1].id}").json["period"]
    assert stages(one["total"], "now") == {"潜在": 1, "意向": 1}
    assert [t["team_id"] for t in one["teams"]] == [world.teams[1].id]

    refused = get(world.reps[0][0], FEBRUARY)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "forbidden"


def test_conversion_counts_moves_before_the_period_ends_and_dwell_counts_ended_stays(world, get):
    february = get(world.boss, FEBRUARY).json["period"]["total"]
    # February's two leads, one interested by the 15th; two entered 意向, one a January lead.
    assert steps(february) == {"潜在": (2, 1), "意向": (2, 0), "报价": (1, 0)}
    assert dwell(february)["潜在"] == (2, 25.5, 25.5)  # 5 Jan → 20 Feb, 10 Feb → 15 Feb
    assert dwell(february)["意向"] == (1, 16.0, 16.0)  # 20 Jan → 5 Feb
    assert dwell(february)["报价"] == (0, None, None)  # still quoting: an open stay
    assert february["weakest_step"] is None  # too few customers to name one

    january = get(world.boss, JANUARY).json["period"]["total"]
    # Of January's two leads one moved on in January; the other only in February.
    assert steps(january)["潜在"] == (2, 1)
    assert next(s for s in january["steps"] if s["from_stage"] == "潜在")["rate"] == 0.5


def test_filters_narrow_to_customers_with_those_values(world, get):
    def now(query):
        response = get(world.boss, f"{FEBRUARY}&{query}")
        assert response.status_code == 200, response.json
        return stages(response.json["period"]["total"], "now")

    assert now("region=长沙县") == {"意向": 1, "报价": 1}
    assert now("region=长沙县&category=工程客户") == {"报价": 1}
    assert now("source=线上广告") == {"潜在": 1}
    assert now("grade=A") == {}
    assert now("region=岳麓区") == {}


def test_two_periods_come_side_by_side(world, get):
    response = get(world.boss, f"{FEBRUARY}&compare_start=2026-01-01&compare_end=2026-02-01")
    assert response.status_code == 200, response.json
    february, january = response.json["period"], response.json["compare"]
    assert (february["start"], february["end"]) == ("2026-02-01", "2026-03-01")
    assert (january["start"], january["end"]) == ("2026-01-01", "2026-02-01")
    assert stages(january["total"], "entered") == {"潜在": 2, "意向": 1}
    assert stages(february["total"], "entered") == {"潜在": 2, "意向": 2, "报价": 1}
    assert january == get(world.boss, JANUARY).json["period"]


@pytest.mark.parametrize(
    ("query", "status", "code", "field"),
    [
        ("start=2026-03-01&end=2026-03-01", 422, "period_reversed", "end"),
        ("start=2026-03-01&end=2026-02-01", 422, "period_reversed", "end"),
        ("start=2025-01-01&end=2026-01-03", 422, "period_too_long", "end"),
        ("start=1999-12-01&end=2000-01-01", 422, "period_out_of_range", "start"),
        (f"{FEBRUARY}&compare_start=2026-01-01", 422, "compare_incomplete", "compare_end"),
        (f"{FEBRUARY}&compare_end=2026-01-01", 422, "compare_incomplete", "compare_start"),
        (
            f"{FEBRUARY}&compare_start=2026-02-01&compare_end=2026-01-01",
            422,
            "period_reversed",
            "compare_end",
        ),
        ("start=2026-02-30&end=2026-03-01", 422, "validation_failed", "start"),
        ("end=2026-03-01", 422, "validation_failed", "start"),
        (f"{FEBRUARY}&grade=E", 422, "validation_failed", "grade"),
        (f"{FEBRUARY}&owner_id=3", 400, "unknown_parameter", "owner_id"),
    ],
)
def test_bad_input_answers_a_stable_code_in_chinese(world, get, query, status, code, field):
    response = get(world.managers[0], query)
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"])
