"""The rep health score on a small hand-made company, every score worked out by hand.

The company (tests/factories.py): team 0 with rep00 and rep01, team 1 with rep10 and rep11. The
month is February 2026 (28 days, all begun: the clock stands at 2 March). `at(m, d)` is 10:00 in
Beijing.

    customer  holder  created     completeness  grade  moves
    A         rep00   2-03        80            A      成交 2-10
    B         rep00   2-05        60            C      -
    D         rep01   2025-12-01  90            B      成交 2-15
    E         rep01   2025-11-05  50            -      流失 2025-12-10

Joined: rep00 2025-12-27 (first deal 45 days later), rep10 2025-12-01 00:00 (no deal: 90 days
by the month's end), rep11 2-20 (too early to tell), rep01 unknown.
Follow-ups: A 2-03, A 2-05 (2 days after: kept), B 2-05 11:00, B 2-20 (15 days: not kept).
Tasks of rep00: due 2-10 done 2-09 (on time), due 2-12 done 2-13 (late).

    rep00  efficiency: held 2/50 → 4.0; followed 4 customer-days / 28 / 5 → 2.9; tasks ½ → 50
                       → (4.0 + 2.9 + 50) / 3 = 19.0
           quality:    completeness (80+60)/2 → 70; intervals ½ → 50; grades (100+50)/2 → 75
                       → 65.0
           growth:     45 days → 100 × (1 − 15/60) = 75; trend: no earlier outcome → 75.0
    rep01  efficiency: held 2 → 4.0; followed 0 → 0; no tasks → 2.0
           quality:    no new profile, no interval; grades B → 75 → 75.0
           growth:     joining unknown; win rate 1 (Feb) against 0 (Nov–Jan): 50 + 100 → 100
    rep10  efficiency 0.0; quality none; growth: 90 days without a deal → 0.0
    rep11  efficiency 0.0; quality none; growth: 9 days in → none
Team 0 medians: efficiency 10.5, quality 70.0, growth 87.5; team 1: 0.0, none, 0.0.
"""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime

import pytest

from crm import contact_stats
from crm.actors import Actor
from crm.analytics import health
from crm.errors import Invalid, NotFound
from models import User
from models.users import Role
from tests.crm.analytics.test_kpi import at, follow_up, move, task
from tests.factories import make_company, make_customer
from wecrm.demo import seeding

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
FEBRUARY = date(2026, 2, 1)


def stat_time(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) - 8 * 3600


@pytest.fixture
def world(session):
    company = make_company(session)
    (rep00, rep01), (rep10, rep11) = company.reps
    rep00.joined_at = at(12, 27, year=2025)
    rep10.joined_at = at(12, 1, hour=0, year=2025)
    rep11.joined_at = at(2, 20)

    def customer(owner, created, completeness, grade):
        made = make_customer(session, owner, created)
        made.completeness, made.grade = completeness, grade
        return made

    a = customer(rep00, at(2, 3), 80, "A")
    b = customer(rep00, at(2, 5), 60, "C")
    d = customer(rep01, at(12, 1, year=2025), 90, "B")
    e = customer(rep01, at(11, 5, year=2025), 50, None)
    move(session, a, "成交", at(2, 10))
    move(session, d, "成交", at(2, 15))
    move(session, e, "流失", at(12, 10, year=2025))
    follow_up(session, a, at(2, 3))
    follow_up(session, a, at(2, 5))
    follow_up(session, b, at(2, 5, 11))
    follow_up(session, b, at(2, 20))
    task(session, rep00, at(2, 10), done=at(2, 9))
    task(session, rep00, at(2, 12), done=at(2, 13))
    contact_stats.store_days(
        session,
        user_id=rep00.id,
        days=[
            {
                "stat_time": stat_time(date(2026, 2, 3)),
                "chat_cnt": 4,
                "message_cnt": 20,
                "reply_percentage": 50,
                "avg_reply_time": 10,
            },
            {"stat_time": stat_time(date(2026, 2, 4)), "chat_cnt": 0, "message_cnt": 0},
            {"stat_time": stat_time(date(2026, 3, 1)), "chat_cnt": 9, "message_cnt": 30},
        ],
        now=NOW,
    )
    session.commit()
    return company


def report(session, user, team_id=None, month=FEBRUARY):
    return health.rep_health(session, actor=Actor.of(user), month=month, now=NOW, team_id=team_id)


def scores(row):
    return {d.key: d.score for d in row.dimensions}


def medians(row):
    return {d.key: d.team_median for d in row.dimensions}


def part(row, key):
    return next(p for d in row.dimensions for p in d.parts if p.key == key)


def test_each_dimension_equals_the_hand_computation(session, world):
    rows = {r.user_id: r for r in report(session, world.boss).reps}
    (rep00, rep01), (rep10, rep11) = world.reps
    assert scores(rows[rep00.id]) == {"efficiency": 19.0, "quality": 65.0, "growth": 75.0}
    assert scores(rows[rep01.id]) == {"efficiency": 2.0, "quality": 75.0, "growth": 100.0}
    assert scores(rows[rep10.id]) == {"efficiency": 0.0, "quality": None, "growth": 0.0}
    assert scores(rows[rep11.id]) == {"efficiency": 0.0, "quality": None, "growth": None}

    first = rows[rep00.id]
    assert (part(first, "customers_held").value, part(first, "customers_held").score) == (2, 4.0)
    assert part(first, "followed_per_day").value == pytest.approx(4 / 28)
    assert part(first, "followed_per_day").score == 2.9
    assert part(first, "tasks_on_time").score == part(first, "follow_up_interval").score == 50.0
    assert part(first, "profile_completeness").score == 70.0
    assert part(first, "grade_mix").score == 75.0
    assert (part(first, "days_to_first_deal").value, part(first, "days_to_first_deal").score) == (
        45.0,
        75.0,
    )
    assert part(first, "conversion_trend").score is None
    assert (part(rows[rep01.id], "conversion_trend").value) == 1.0
    assert part(rows[rep10.id], "days_to_first_deal").value == 90.0


def test_team_medians_stand_beside_each_rep_and_the_radar_carries_them(session, world):
    rows = {r.user_id: r for r in report(session, world.boss).reps}
    (rep00, _), (rep10, _) = world.reps
    assert medians(rows[rep00.id]) == {"efficiency": 10.5, "quality": 70.0, "growth": 87.5}
    assert medians(rows[rep10.id]) == {"efficiency": 0.0, "quality": None, "growth": 0.0}
    assert part(rows[rep00.id], "customers_held").team_median == 4.0
    radar = rows[rep00.id].radar
    assert radar.dimensions == ["效率", "质量", "成长"]
    assert (radar.values, radar.team_medians) == ([19.0, 65.0, 75.0], [10.5, 70.0, 87.5])


def test_wecom_contact_figures_are_the_months_stored_days_or_none(session, world):
    rows = {r.user_id: r for r in report(session, world.boss).reps}
    (rep00, rep01), _ = world.reps
    contact = rows[rep00.id].contact
    assert contact is not None
    assert (contact.days, contact.chat_cnt, contact.message_cnt) == (2, 4, 20)
    assert (contact.reply_percentage, contact.avg_reply_time) == (50.0, 10.0)
    assert rows[rep01.id].contact is None  # nothing stored: the score stands without it


def test_each_role_sees_exactly_its_reps(session, world):
    (rep00, rep01), (rep10, rep11) = world.reps
    boss = report(session, world.boss)
    assert [r.user_id for r in boss.reps] == [rep00.id, rep01.id, rep10.id, rep11.id]
    team = report(session, world.boss, team_id=world.teams[1].id)
    assert [r.user_id for r in team.reps] == [rep10.id, rep11.id]
    manager = report(session, world.managers[0])
    assert [r.user_id for r in manager.reps] == [rep00.id, rep01.id]
    (own,) = report(session, rep00).reps
    assert own.user_id == rep00.id and scores(own)["efficiency"] == 19.0
    # two reps in the team: a median would give the colleague's score away
    assert medians(own) == {"efficiency": None, "quality": None, "growth": None}
    with pytest.raises(NotFound):
        report(session, world.managers[0], team_id=world.teams[1].id)
    with pytest.raises(NotFound):
        report(session, rep00, team_id=world.teams[1].id)


def test_a_rep_in_a_team_of_three_sees_the_team_median(session, world):
    (rep00, rep01), _ = world.reps
    session.add(User(wecom_userid="rep02", name="销售02", role=Role.REP, team_id=rep00.team_id))
    session.commit()
    (own,) = report(session, rep01).reps
    assert own.user_id == rep01.id
    assert medians(own)["quality"] == 70.0  # 65 and 75; the newcomer has no quality score


def test_definitions_are_served_with_the_scores(session, world):
    definitions = report(session, world.boss).definitions
    assert [d.key for d in definitions] == ["efficiency", "quality", "growth"]
    assert all(d.definition and all(p.definition for p in d.parts) for d in definitions)


def test_a_month_out_of_range_is_refused(session, world):
    with pytest.raises(Invalid) as raised:
        report(session, world.boss, month=date(2100, 12, 1))
    assert raised.value.code == "period_out_of_range"


def test_on_the_demo_company_a_manager_sees_their_teams_scores_beside_its_medians(session, clock):
    demo = seeding.seed_company(session, now=clock(), customer_count=1200)
    session.commit()
    manager = demo.managers[1]
    rows = health.rep_health(session, actor=Actor.of(manager), month=FEBRUARY, now=clock()).reps
    assert {r.user_id for r in rows} == {
        r.id for r in demo.reps if r.team_id == manager.team_id and r.is_active
    }
    for row in rows:  # a month of the demo's history gives every rep these two dimensions
        assert all(0 <= v <= 100 for v in row.radar.values[:2] if v is not None)
        assert None not in row.radar.values[:2] and None not in row.radar.team_medians[:2]
    efficiency = sorted(r.radar.values[0] for r in rows)
    assert rows[0].radar.team_medians[0] == pytest.approx(statistics.median(efficiency), abs=0.06)
