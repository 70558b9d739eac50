"""GET /analytics/health as each role, and the codes of bad input. The scores are worked out by
hand in tests/crm/analytics/test_health.py."""

from __future__ import annotations

import pytest

from tests.factories import make_company, sign_in

MISSING = 2_000_000_000


@pytest.fixture
def world(session):
    return make_company(session)


@pytest.fixture
def get(client, fake_wecom):
    def get(user, query):
        headers = sign_in(client, fake_wecom, user)
        return client.get(f"/api/v1/analytics/health?{query}", headers=headers)

    return get


def test_each_role_sees_its_reps_with_the_radars_axes_and_definitions(world, get):
    boss = get(world.boss, "month=2026-02")
    assert boss.status_code == 200, boss.json
    assert {r["user_id"] for r in boss.json["reps"]} == {r.id for t in world.reps for r in t}
    assert [d["name"] for d in boss.json["definitions"]] == ["效率", "质量", "成长"]
    radar = boss.json["reps"][0]["radar"]
    assert radar["dimensions"] == ["效率", "质量", "成长"]
    assert len(radar["values"]) == len(radar["team_medians"]) == 3
    assert boss.json["reps"][0]["contact"] is None  # nothing fetched from WeCom yet

    manager = get(world.managers[0], "month=2026-02").json
    assert [r["user_id"] for r in manager["reps"]] == [r.id for r in world.reps[0]]
    rep = world.reps[1][1]
    own = get(rep, f"month=2026-02&team_id={rep.team_id}").json
    assert [r["user_id"] for r in own["reps"]] == [rep.id]


@pytest.mark.parametrize("who", ["manager", "rep"])
def test_another_teams_id_answers_like_a_missing_one(world, get, who):
    user = world.managers[0] if who == "manager" else world.reps[0][0]
    other = get(user, f"month=2026-02&team_id={world.teams[1].id}")
    missing = get(user, f"month=2026-02&team_id={MISSING}")
    assert other.status_code == missing.status_code == 404
    assert other.json == missing.json


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("month=2026-13", "validation_failed", "month"),
        ("month=2026-3", "validation_failed", "month"),
        ("", "validation_failed", "month"),
        ("month=2101-01", "period_out_of_range", "start"),
    ],
)
def test_a_bad_month_answers_a_stable_code(world, get, query, code, field):
    response = get(world.managers[0], query)
    assert response.status_code == 422, response.json
    assert (response.json["error"]["code"], response.json["error"]["field"]) == (code, field)
