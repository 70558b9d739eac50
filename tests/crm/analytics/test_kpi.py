"""The KPI panel and the 数据质量奖 on a small hand-made company, every figure worked out by hand.

The company (tests/factories.py): team 0 (长沙一组) with rep00 and rep01, team 1 (株洲二组) with
rep10 and rep11, all four active. The clock stands at 2 March 2026, 09:30 in Beijing; January
and February are the two periods. `at(m, d)` is 10:00 in Beijing.

    customer  holder  created  completeness  moves
    A         rep00   1-05     80            意向 1-10, 报价 1-15, 成交 1-20
    B         rep00   1-08     60            流失 1-25
    C         rep00   2-03     100           流失 2-10, 成交 2-20
    D         rep01   2-01     40            成交 2-15
    E         rep10   2-02     50            成交 2-11
    F         rep10   1-03     70            流失 2-25
    G         rep11   2025-12-20  90         成交 2025-12-25
    H         pool (team 1)  1-12  30        -

Joined: rep00 2025-12-01, rep10 2026-02-01, rep11 2025-10-01 (all 10:00 Beijing); rep01 unknown.
Follow-ups (Beijing time; → the planned next day):
    A: f1 1-05 10:00 → 1-07; f2 1-07 20:00 → 1-20; f3 1-22 10:00; f4 1-22 15:00
    B: f5 1-08 10:00 → 2-03; f6 2-03 23:30
    D: f11 2-01 01:00 (31 Jan in UTC) → 2-28
    E: f7 2-02 10:00 → 2-05; f8 2-05 10:00 withdrawn; f9 2-06 10:00
    H: f12 1-12 10:00; f13 1-15 10:00
Tasks: rep00 due 1-10 done 1-09, due 1-20 done 1-21, due 2-10 open, due 3-10 open;
rep10 due 2-15 10:00 done 09:00.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from crm import users
from crm.actors import Actor
from crm.analytics import kpi
from crm.analytics.funnel import Period
from crm.errors import Forbidden, NotFound
from models import FollowUp, StageChange, Task
from tests.factories import make_company, make_customer

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
JANUARY = Period.of(date(2026, 1, 1), date(2026, 2, 1))
FEBRUARY = Period.of(date(2026, 2, 1), date(2026, 3, 1))


def at(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> datetime:
    """A Beijing wall-clock time, as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def move(session, customer, stage, moment):
    session.add(
        StageChange(
            customer_id=customer.id,
            from_stage=customer.stage,
            to_stage=stage,
            changed_at=moment,
            actor_id=None,
            cause="测试",
        )
    )
    customer.stage = stage


def follow_up(session, customer, moment, planned=None, withdrawn=False):
    session.add(
        FollowUp(
            customer_id=customer.id,
            author_id=customer.owner_id,
            happened_at=moment,
            method="电话",
            summary="电话沟通",
            next_follow_up_on=planned,
            withdrawn_at=moment if withdrawn else None,
            created_at=moment,
        )
    )


def task(session, assignee, due, done=None):
    session.add(
        Task(
            assignee_id=assignee.id,
            title="回访",
            due_at=due,
            status="done" if done else "open",
            done_at=done,
            created_at=due - timedelta(days=3),
        )
    )


@pytest.fixture
def world(session):
    company = make_company(session)
    (rep00, rep01), (rep10, rep11) = company.reps
    rep00.joined_at = at(12, 1, year=2025)
    rep10.joined_at = at(2, 1)
    rep11.joined_at = at(10, 1, year=2025)

    def customer(owner, created, completeness):
        made = make_customer(session, owner, created)
        made.completeness = completeness
        return made

    a = customer(rep00, at(1, 5), 80)
    b = customer(rep00, at(1, 8), 60)
    c = customer(rep00, at(2, 3), 100)
    d = customer(rep01, at(2, 1), 40)
    e = customer(rep10, at(2, 2), 50)
    f = customer(rep10, at(1, 3), 70)
    g = customer(rep11, at(12, 20, year=2025), 90)
    h = customer(rep11, at(1, 12), 30)
    h.owner_id = None  # in the pool, still team 1's
    for who, stage, moment in (
        (a, "意向", at(1, 10)),
        (a, "报价", at(1, 15)),
        (a, "成交", at(1, 20)),
        (b, "流失", at(1, 25)),
        (c, "流失", at(2, 10)),
        (c, "成交", at(2, 20)),
        (d, "成交", at(2, 15)),
        (e, "成交", at(2, 11)),
        (f, "流失", at(2, 25)),
        (g, "成交", at(12, 25, year=2025)),
    ):
        move(session, who, stage, moment)
    follow_up(session, a, at(1, 5), planned=date(2026, 1, 7))
    follow_up(session, a, at(1, 7, 20), planned=date(2026, 1, 20))
    follow_up(session, a, at(1, 22))
    follow_up(session, a, at(1, 22, 15))
    follow_up(session, b, at(1, 8), planned=date(2026, 2, 3))
    follow_up(session, b, at(2, 3, 23, 30))
    follow_up(session, d, at(2, 1, 1), planned=date(2026, 2, 28))
    follow_up(session, e, at(2, 2), planned=date(2026, 2, 5))
    follow_up(session, e, at(2, 5), withdrawn=True)
    follow_up(session, e, at(2, 6))
    follow_up(session, h, at(1, 12))
    follow_up(session, h, at(1, 15))
    task(session, rep00, at(1, 10), done=at(1, 9))
    task(session, rep00, at(1, 20), done=at(1, 21))
    task(session, rep00, at(2, 10))
    task(session, rep00, at(3, 10))
    task(session, rep10, at(2, 15), done=at(2, 15, 9))
    session.commit()
    return company


def values(kpis):
    return {k.key: (k.value, k.base) for k in kpis}


def panel(session, user, period, team_id=None):
    return kpi.kpi_panel(session, actor=Actor.of(user), period=period, now=NOW, team_id=team_id)


def test_every_kpi_of_two_periods_equals_the_hand_count(world, session):
    january = values(panel(session, world.boss, JANUARY).total)
    assert january == {
        "win_rate": (pytest.approx(1 / 2), 2),  # A won, B lost
        "follow_up_timeliness": (pytest.approx(1 / 2), 2),  # 1-07 kept, 1-20 missed
        "onboarding_days": (pytest.approx(50.0), 1),  # rep00: 12-01 → 1-20
        "profile_completeness": (pytest.approx(0.60), 4),  # A, B, F, H
        "customers_per_rep": (pytest.approx(7 / 4), 4),  # H is in the pool
        "followed_customers_per_rep_day": (pytest.approx(4 / (4 * 31)), 124),
        "tasks_on_time_rate": (pytest.approx(1 / 2), 2),
        "follow_up_interval_rate": (pytest.approx(3 / 4), 4),  # f2, f4, f13 kept; f3 not
    }
    february = values(panel(session, world.boss, FEBRUARY).total)
    assert february == {
        "win_rate": (pytest.approx(3 / 4), 4),  # C lost then won, D, E won; F lost
        "follow_up_timeliness": (pytest.approx(1 / 3), 3),  # 2-03 kept; 2-05, 2-28 missed
        "onboarding_days": (pytest.approx(10.0), 1),  # rep10; rep01's joining is unknown
        "profile_completeness": (pytest.approx(190 / 300), 3),  # C, D, E
        "customers_per_rep": (pytest.approx(7 / 4), 4),
        "followed_customers_per_rep_day": (pytest.approx(4 / (4 * 28)), 112),
        "tasks_on_time_rate": (pytest.approx(1 / 2), 2),
        "follow_up_interval_rate": (pytest.approx(1 / 2), 2),  # f6 after 26 days, f9 after 4
    }


def test_teams_and_reps_add_up_from_their_own_customers(world, session):
    report = panel(session, world.boss, JANUARY)
    teams = {t.name: values(t.kpis) for t in report.teams}
    assert teams["长沙一组"]["profile_completeness"] == (pytest.approx(0.70), 2)
    assert teams["长沙一组"]["customers_per_rep"] == (pytest.approx(2.0), 2)
    assert teams["长沙一组"]["follow_up_interval_rate"] == (pytest.approx(2 / 3), 3)
    assert teams["株洲二组"]["win_rate"] == (None, 0)
    assert teams["株洲二组"]["followed_customers_per_rep_day"] == (0.0, 62)
    assert teams["株洲二组"]["follow_up_interval_rate"] == (1.0, 1)  # the pool's H
    reps = {r.user_id: values(r.kpis) for r in report.reps}
    rep00, rep01 = world.reps[0]
    assert set(reps) == {r.id for team in world.reps for r in team}
    assert reps[rep00.id]["followed_customers_per_rep_day"] == (pytest.approx(4 / 31), 31)
    assert reps[rep00.id]["onboarding_days"] == (pytest.approx(50.0), 1)
    assert reps[rep01.id]["customers_per_rep"] == (1.0, 1)


def test_every_kpi_carries_its_definition(world, session):
    kpis = panel(session, world.boss, JANUARY).total
    assert [k.name for k in kpis] == [
        "成单率",
        "客户跟进及时率",
        "新人上手周期",
        "客户资料完整度",
        "人均管理客户数",
        "日均跟进客户数",
        "任务完成准时率",
        "回访间隔达标率",
    ]
    assert all(len(k.definition) > 10 for k in kpis)


def test_a_period_still_running_judges_only_what_is_due(world, session):
    march = Period.of(date(2026, 3, 1), date(2026, 4, 1))
    figures = values(panel(session, world.boss, march).total)
    assert figures["tasks_on_time_rate"] == (None, 0)  # the task due 3-10 is not late yet
    assert figures["followed_customers_per_rep_day"] == (0.0, 4 * 2)  # 1 and 2 March begun


def test_a_manager_sees_their_team_and_reps_are_refused(world, session):
    manager = world.managers[0]
    report = panel(session, manager, JANUARY)
    assert [t.team_id for t in report.teams] == [world.teams[0].id]
    assert [r.user_id for r in report.reps] == [r.id for r in world.reps[0]]
    team0 = next(
        t for t in panel(session, world.boss, JANUARY).teams if t.team_id == manager.team_id
    )
    assert values(report.total) == values(team0.kpis)
    with pytest.raises(NotFound):
        panel(session, manager, JANUARY, team_id=world.teams[1].id)
    with pytest.raises(Forbidden):
        panel(session, world.reps[0][0], JANUARY)
    with pytest.raises(Forbidden):
        kpi.data_quality(session, actor=Actor.of(world.reps[0][0]), month=date(2026, 2, 1))
    one = panel(session, world.boss, JANUARY, team_id=world.teams[1].id)
    assert [t.team_id for t in one.teams] == [world.teams[1].id]


def test_the_data_quality_winner_has_the_best_average_among_enough_profiles(session):
    company = make_company(session)
    (rep00, rep01), (rep10, rep11) = company.reps
    made = {rep00: [80] * 5, rep01: [100, 90, 90, 80, 80, 100], rep10: [100, 100], rep11: [90] * 5}
    for rep, scores in made.items():
        for day, completeness in enumerate(scores, start=1):
            make_customer(session, rep, at(2, day)).completeness = completeness
    make_customer(session, rep00, at(3, 1)).completeness = 100  # March: not February's
    pooled = make_customer(session, rep10, at(2, 9))
    pooled.owner_id = None
    session.commit()

    report = kpi.data_quality(session, actor=Actor.of(company.boss), month=date(2026, 2, 14))
    assert (report.month, report.start, report.end) == ("2026-02", FEBRUARY.start, FEBRUARY.end)
    ranking = [(r.user_id, r.profiles, r.average, r.is_eligible) for r in report.ranking]
    assert ranking == [
        (rep10.id, 2, 100.0, False),  # best, but two profiles say too little
        (rep01.id, 6, 90.0, True),  # ties with rep11: more profiles first
        (rep11.id, 5, 90.0, True),
        (rep00.id, 5, 80.0, True),
    ]
    assert report.winner is not None and report.winner.user_id == rep01.id

    team = kpi.data_quality(session, actor=Actor.of(company.managers[1]), month=date(2026, 2, 1))
    assert [r.user_id for r in team.ranking] == [rep10.id, rep11.id]
    assert team.winner is not None and team.winner.user_id == rep11.id
    empty = kpi.data_quality(session, actor=Actor.of(company.boss), month=date(2026, 1, 1))
    assert (empty.ranking, empty.winner) == ([], None)


def test_a_person_added_by_the_boss_joins_when_added(session):
    company = make_company(session)
    added = users.create_user(
        session,
        actor=Actor.of(company.boss),
        wecom_userid="newcomer",
        name="新人",
        role="rep",
        team_id=company.teams[0].id,
        now=NOW,
    )
    assert added.joined_at == NOW
