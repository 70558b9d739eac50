"""GET /analytics/kpi and /analytics/data-quality as each role, two periods side by side, and
the codes of bad input. The figures are worked out by hand in tests/crm/analytics/test_kpi.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.factories import make_company, make_customer, sign_in

MISSING = 2_000_000_000
FEBRUARY = "start=2026-02-01&end=2026-03-01"


@pytest.fixture
def world(session):
    """Per team: one customer created on 10 Feb, completeness 60 in team 0 and 90 in team 1."""
    company = make_company(session)
    for team, completeness in zip(company.reps, (60, 90), strict=True):
        made = make_customer(session, team[0], datetime(2026, 2, 10, 2, tzinfo=UTC))
        made.completeness = completeness
    session.commit()
    return company


@pytest.fixture
def get(client, fake_wecom):
    def get(user, path):
        return client.get(f"/api/v1/analytics/{path}", headers=sign_in(client, fake_wecom, user))

    return get


def kpi(figures, key):
    return next(k for k in figures if k["key"] == key)


def test_a_manager_sees_their_team_with_definitions_and_the_boss_compares_two_periods(world, get):
    manager = world.managers[0]
    response = get(manager, f"kpi?{FEBRUARY}")
    assert response.status_code == 200, response.json
    period = response.json["period"]
    completeness = kpi(period["total"], "profile_completeness")
    assert (completeness["name"], completeness["value"], completeness["base"]) == (
        "客户资料完整度",
        0.6,
        1,
    )
    assert "必填字段" in completeness["definition"]
    assert [t["team_id"] for t in period["teams"]] == [world.teams[0].id]
    assert [r["user_id"] for r in period["reps"]] == [r.id for r in world.reps[0]]
    assert response.json["compare"] is None
    other = get(manager, f"kpi?{FEBRUARY}&team_id={world.teams[1].id}")
    missing = get(manager, f"kpi?{FEBRUARY}&team_id={MISSING}")
    assert other.status_code == missing.status_code == 404
    assert other.json == missing.json

    both = get(world.boss, f"kpi?{FEBRUARY}&compare_start=2026-01-01&compare_end=2026-02-01")
    assert both.status_code == 200, both.json
    february, january = both.json["period"], both.json["compare"]
    assert kpi(february["total"], "profile_completeness")["value"] == pytest.approx(0.75)
    assert kpi(january["total"], "profile_completeness")["value"] is None
    assert len(february["teams"]) == 2


def test_the_data_quality_ranking_follows_scope_and_reps_are_refused(world, get):
    boss = get(world.boss, "data-quality?month=2026-02")
    assert boss.status_code == 200, boss.json
    assert [(r["user_id"], r["average"]) for r in boss.json["ranking"]] == [
        (world.reps[1][0].id, 90.0),
        (world.reps[0][0].id, 60.0),
    ]
    assert boss.json["winner"] is None  # one new profile each is too few for the award
    manager = get(world.managers[0], "data-quality?month=2026-02").json
    assert [r["user_id"] for r in manager["ranking"]] == [world.reps[0][0].id]
    for path in (f"kpi?{FEBRUARY}", "data-quality?month=2026-02"):
        refused = get(world.reps[0][0], path)
        assert refused.status_code == 403
        assert refused.json["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("path", "code", "field"),
    [
        ("kpi?start=2026-03-01&end=2026-03-01", "period_reversed", "end"),
        ("kpi?start=2025-01-01&end=2026-01-03", "period_too_long", "end"),
        (f"kpi?{FEBRUARY}&compare_start=2026-01-01", "compare_incomplete", "compare_end"),
        ("kpi?start=2026-02-30&end=2026-03-01", "validation_failed", "start"),
        ("data-quality?month=2026-13", "validation_failed", "month"),
        ("data-quality?month=2026-3", "validation_failed", "month"),
        ("data-quality", "validation_failed", "month"),
        ("data-quality?month=2101-01", "period_out_of_range", "start"),
    ],
)
def test_bad_input_answers_a_stable_code_in_chinese(world, get, path, code, field):
    response = get(world.managers[0], path)
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"])
