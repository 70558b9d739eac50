"""GET /analytics/forecast as each role: a manager's team, the boss's company or one team, reps
refused, and the codes of bad input. The method and its back-test on the demo company are
checked in tests/crm/analytics/test_forecast.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm import customer_changes
from crm.actors import Actor
from tests.factories import make_company, make_customer, sign_in

MISSING = 2_000_000_000


@pytest.fixture
def world(session, clock):
    """Team 0: two leads, one quoted; team 1: one lead, one lost."""
    company = make_company(session)
    (rep00, rep01), (rep10, rep11) = company.reps
    moment = datetime(2026, 2, 10, 2, 0, tzinfo=UTC)
    make_customer(session, rep00, moment, expected_amount=50_000)
    quoted = make_customer(session, rep01, moment, expected_amount=80_000)
    make_customer(session, rep10, moment, expected_amount=30_000)
    lost = make_customer(session, rep11, moment, expected_amount=900_000)
    for customer, owner, stage in (
        (quoted, rep01, "意向"),
        (quoted, rep01, "报价"),
        (lost, rep11, "流失"),
    ):
        customer_changes.move_stage(
            session,
            actor=Actor.of(owner),
            customer_id=customer.id,
            to_stage=stage,
            now=datetime(2026, 2, 20, 2, 0, tzinfo=UTC),
            cause="测试",
        )
        session.commit()
    return company


@pytest.fixture
def get(client, fake_wecom):
    def get(user, query=""):
        return client.get(
            f"/api/v1/analytics/forecast?{query}", headers=sign_in(client, fake_wecom, user)
        )

    return get


def test_a_manager_forecasts_their_team_and_another_teams_id_is_not_found(world, get):
    manager = world.managers[0]
    response = get(manager)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["next_month"]["open_deals"] == 2
    assert body["next_month"]["open_amount"] == 130_000
    revenue = body["next_month"]["revenue"]
    assert 0 <= revenue["p10"] <= revenue["p50"] <= revenue["p90"] <= 130_000
    assert revenue["width"] == pytest.approx(revenue["p90"] - revenue["p10"])
    assert body["backtest"]["months"] == []  # a month of history teaches nothing yet
    assert body["backtest"]["coverage"] is None
    assert get(manager, f"team_id={world.teams[0].id}").json == body

    other = get(manager, f"team_id={world.teams[1].id}")
    missing = get(manager, f"team_id={MISSING}")
    assert other.status_code == missing.status_code == 404
    assert other.json == missing.json


def test_the_boss_sees_the_company_or_one_team_lost_deals_aside_and_reps_are_refused(world, get):
    everyone = get(world.boss).json
    assert everyone["next_month"]["open_deals"] == 3  # the lost customer is no open deal
    assert everyone["next_month"]["revenue"]["p90"] <= 160_000
    one = get(world.boss, f"team_id={world.teams[1].id}").json
    assert one["next_month"]["open_amount"] == 30_000

    refused = get(world.reps[0][0])
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "forbidden"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in refused.json["error"]["message"])


@pytest.mark.parametrize(
    ("query", "status", "code", "field"),
    [
        ("backtest_months=13", 422, "validation_failed", "backtest_months"),
        ("backtest_months=-1", 422, "validation_failed", "backtest_months"),
        ("team_id=0", 422, "validation_failed", "team_id"),
        ("team_id=abc", 422, "validation_failed", "team_id"),
        ("start=2026-03-01", 400, "unknown_parameter", "start"),
    ],
)
def test_bad_input_answers_a_stable_code_in_chinese(world, get, query, status, code, field):
    response = get(world.managers[0], query)
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"])
