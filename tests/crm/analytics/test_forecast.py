"""The revenue forecast: its back-test on the demo company, determinism, lost deals, won deals
counted in their month, and who may ask."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from crm.actors import Actor
from crm.analytics import forecast
from crm.errors import Forbidden, NotFound
from crm.vocab import Stage
from wecrm.demo import seeding

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)  # the demo's clock


@pytest.fixture
def demo(session, clock):
    company = seeding.seed_company(session, now=clock(), customer_count=1200)
    session.commit()
    return company


def test_the_demo_backtest_holds_the_actual_revenue_in_eight_of_ten_months(session, demo, clock):
    report = forecast.revenue_forecast(session, actor=Actor.of(demo.boss), now=clock())
    backtest = report.backtest
    last_ten = backtest.months[-10:]
    assert len(last_ten) == 10
    assert [m.month for m in last_ten][-1] == date(2026, 2, 1)
    assert all(m.actual > 0 and m.open_deals > 0 for m in last_ten)
    assert sum(m.covered for m in last_ten) >= 8, [
        (m.month, m.revenue, m.actual) for m in backtest.months
    ]
    # The width is reported beside the coverage, and the interval says something: narrower
    # than the revenue it forecasts, the P50 nearer the truth than a guess of nothing.
    assert backtest.mean_width is not None and backtest.mean_relative_width is not None
    assert backtest.mean_relative_width < 1.5
    assert backtest.p50_mape is not None and backtest.p50_mape < 0.6
    live = report.next_month.revenue
    assert 0 < live.p10 < live.p50 < live.p90


def test_the_demo_forecast_is_pinned(session, demo, clock):
    """Today's figures on the demo company, so that a faster method is seen to give the same
    answers (re-pin only with the reason the draws had to change)."""
    report = forecast.revenue_forecast(session, actor=Actor.of(demo.boss), now=clock())
    assert report.this_month_remaining.revenue == forecast.Interval(5560790.0, 7230900.0, 9209160.0)
    assert report.next_month.revenue == forecast.Interval(4161770.0, 6108750.0, 8252500.0)
    assert (report.next_month.open_deals, report.next_month.open_amount) == (252, 45749400.0)
    assert [(m.anchors, m.open_deals, m.actual) for m in report.backtest.months] == [
        (4, 100, 1472000.0),
        (5, 107, 2338900.0),
        (6, 120, 2925500.0),
        (7, 144, 3828200.0),
        (8, 145, 2673500.0),
        (9, 155, 2586400.0),
        (10, 173, 3787400.0),
        (11, 192, 5034000.0),
        (12, 192, 6474200.0),
        (13, 206, 6267600.0),
        (14, 220, 6047700.0),
        (15, 219, 3723600.0),
    ]
    assert [m.revenue for m in report.backtest.months] == [
        forecast.Interval(1022230.0, 2111850.0, 3423920.0),
        forecast.Interval(1793090.0, 2944350.0, 4211200.0),
        forecast.Interval(2192400.0, 3493150.0, 4881950.0),
        forecast.Interval(2236400.0, 3510650.0, 4985170.0),
        forecast.Interval(1504470.0, 2627400.0, 3939370.0),
        forecast.Interval(3135440.0, 4718800.0, 6391460.0),
        forecast.Interval(4205290.0, 5890200.0, 7617220.0),
        forecast.Interval(3530050.0, 5044100.0, 6727590.0),
        forecast.Interval(5003560.0, 6857000.0, 8617300.0),
        forecast.Interval(4125570.0, 5769950.0, 7661940.0),
        forecast.Interval(4116710.0, 5758250.0, 7506670.0),
        forecast.Interval(3372190.0, 4899900.0, 6621600.0),
    ]
    assert report.backtest.covered == 10


def test_the_same_data_gives_the_same_forecast(session, demo, clock):
    first = forecast.revenue_forecast(session, actor=Actor.of(demo.boss), now=clock())
    again = forecast.revenue_forecast(session, actor=Actor.of(demo.boss), now=clock())
    assert first == again


def test_a_manager_forecasts_their_team_and_reps_are_refused(session, demo, clock):
    manager = demo.managers[0]
    team = forecast.revenue_forecast(session, actor=Actor.of(manager), now=clock())
    everyone = forecast.revenue_forecast(session, actor=Actor.of(demo.boss), now=clock())
    asked = forecast.revenue_forecast(
        session, actor=Actor.of(demo.boss), now=clock(), team_id=manager.team_id
    )
    assert team == asked
    assert 0 < team.next_month.open_deals < everyone.next_month.open_deals
    other = next(t for t in demo.teams if t.id != manager.team_id)
    with pytest.raises(NotFound):
        forecast.revenue_forecast(session, actor=Actor.of(manager), now=clock(), team_id=other.id)
    with pytest.raises(Forbidden):
        forecast.revenue_forecast(session, actor=Actor.of(demo.reps[0]), now=clock())


# --- the method on hand-made histories -------------------------------------------------------


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


Deal = tuple[float, list[tuple[datetime, Stage]]]


def deal(amount: float, *moves: tuple[datetime, Stage]) -> Deal:
    return amount, list(moves)


def book(deals: list[Deal]) -> forecast.StageHistory:
    """The deals as a stage history, each a customer with its index as its id."""
    return forecast.StageHistory.from_rows(
        {index: amount for index, (amount, _) in enumerate(deals)},
        [
            (index, stage.value, moment)
            for index, (_, moves) in enumerate(deals)
            for moment, stage in moves
        ],
    )


def steady_history(months: int) -> list[Deal]:
    """Each month from Jan 2025: four quotes of 100 on the 2nd, two won on the 20th and two
    lost."""
    histories = []
    for index in range(months):
        month = date(2025 + index // 12, index % 12 + 1, 2)
        start = at(month.year, month.month, 2)
        for won in (True, True, False, False):
            end = start + timedelta(days=18)
            histories.append(
                deal(
                    100,
                    (start, Stage.QUOTE),
                    (end, Stage.WON if won else Stage.LOST),
                )
            )
    return histories


def test_lost_deals_never_count_as_won():
    histories = steady_history(14)
    lost_rich = [*histories, *(deal(10_000, (at(2025, 1, 5), Stage.LOST)) for _ in range(20))]
    plain = forecast.forecast_from(book(histories), now=at(2026, 3, 1))
    with_lost = forecast.forecast_from(book(lost_rich), now=at(2026, 3, 1))
    assert with_lost.next_month == plain.next_month
    assert with_lost.backtest == plain.backtest


def test_a_won_deal_counts_in_the_month_it_was_won():
    histories = steady_history(14)
    report = forecast.forecast_from(book(histories), now=at(2026, 3, 10))
    # Two of four quotes won on the 20th of each month, 100 each.
    months = report.backtest.months
    assert len(months) >= 9 and [m.actual for m in months] == [200.0] * len(months)
    assert report.this_month_won == 0  # March's wins come on the 20th
    later = forecast.forecast_from(book(histories), now=at(2026, 2, 25))
    assert later.this_month_won == 200.0
    # A deal won on 31 Jan at 23:30 Beijing time is January's, not February's.
    late = deal(
        1_000, (at(2026, 1, 5), Stage.QUOTE), (datetime(2026, 1, 31, 15, 30, tzinfo=UTC), Stage.WON)
    )
    moved = forecast.forecast_from(book([*histories, late]), now=at(2026, 3, 10))
    actual = {m.month: m.actual for m in moved.backtest.months}
    assert actual[date(2026, 1, 1)] == 1_200.0
    assert actual[date(2026, 2, 1)] == 200.0


def test_a_steady_history_is_forecast_inside_its_interval():
    report = forecast.forecast_from(book(steady_history(14)), now=at(2026, 3, 10))
    assert report.backtest.covered == len(report.backtest.months)
    # Open quotes at each month start are none (quotes come on the 2nd); the month's own new
    # deals bring its revenue, learnt from the anchors.
    assert all(m.revenue.p50 == 200.0 for m in report.backtest.months[3:])


def test_too_little_history_leaves_the_month_out_of_the_backtest():
    report = forecast.forecast_from(book(steady_history(2)), now=at(2025, 3, 10))
    assert report.backtest.months == []
    assert report.backtest.coverage is None and report.backtest.mean_width is None
