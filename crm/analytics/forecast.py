"""The revenue forecast (月度业绩预测): this month's remaining and next month's revenue as
P10 / P50 / P90, with its back-test over the past months.

The decisions:

- Revenue: a deal is won when its customer moves into 成交 (a `stage_changes` row), worth the
  customer's `expected_amount`; a customer won in a window counts once, in the window of its
  move, whatever happened to it afterwards. Not orders: orders are optional, arrive in batches
  after the deal and (in the demo) cover two months; every won deal has a dated move. The
  amount is today's `expected_amount` (the book keeps no history of it) and a customer without
  one is worth 0, in the forecast and in the actual figures alike.
- Open deals: customers in 潜在 / 意向 / 报价 at the moment of forecasting. Lost (流失) and won
  customers are never simulated, so a lost deal never counts as won.
- Win rates are learnt from this company's history, not fixed per stage: a deal's cell is its
  stage and its age in the stage (`AGE_BUCKETS_DAYS`). Anchors are the forecast's moment one,
  two, ... months back (same day and time of the month, at most the 28th); an anchor's window
  is the same span of its own calendar (the rest of its month, or the month after), and only
  anchors whose window had ended by the forecast's moment teach — the month starts before it,
  for the back-test. A cell's rate is the share of the deals open in it at its anchors that
  were won within the anchor's window. Thin cells lean on their stage: each rate is a Beta
  posterior with `PRIOR_STRENGTH` pseudo-deals at the stage's rate, and the stage's rate leans
  the same way on the rate of all open deals.
- Deals not open at the moment (new customers, lost ones that return) also win within a
  window: their revenue is drawn from the same anchors' figures (a bootstrap), so the forecast
  does not leave out what a month's new leads bring.
- Uncertainty: each of `SIMULATIONS` runs draws every cell's rate from its posterior (what the
  history leaves unknown), then every deal as won or not with its rate, and adds a draw of the
  revenue of deals not open; P10 / P50 / P90 are that sum's percentiles. A cell of
  `NORMAL_FROM_DEALS` deals or more has its sum drawn at once from its normal (the exact mean
  and variance of its deals' sum at the run's rate) instead of deal by deal: the same answer
  within Monte Carlo noise, and the only way 100,000 customers' deals × 2,000 runs fit in a
  request. The generator is seeded from a digest of the inputs' arrays, so the same data
  gives the same answer.
- Back-test: as of the start of each of the past `BACKTEST_MONTHS` months (Beijing time), the
  same method on the stage history known then — each customer's stage as of that moment is
  rebuilt from `stage_changes` — against the revenue actually won in that month. Months with
  fewer than `MIN_ANCHORS` anchors behind them are left out. Reported: each month's row,
  coverage (share of months inside P10–P90), the P50's mean absolute percentage error and the
  mean width of the interval, also relative to the mean actual revenue.

Two statements whatever the size: the customers in scope with their amounts, then their stage
history (indexed on `customer_id, changed_at`), read once into arrays (`StageHistory`: per move
its customer, moment in microseconds and stage code, sorted by customer then time). Every
moment's stages are rebuilt from them for all customers at once: each move knows until when it
is in force (its customer's next move), so the moves in force at a moment are one comparison
away; cells and wins are tallied with `bincount`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import count

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import calendar
from crm.actors import Actor
from crm.analytics import scopes
from crm.vocab import OPEN_STAGES, Stage
from models import Customer, StageChange, epoch_microseconds

BACKTEST_MONTHS = 12
SIMULATIONS = 2000
MIN_ANCHORS = 3  # fewer past windows say too little to learn a rate from
PRIOR_STRENGTH = 10.0  # pseudo-deals at the stage's rate that a cell's own deals outweigh
AGE_BUCKETS_DAYS = (15, 45)  # days in the stage: under 15, 15–44, 45 and over
QUANTILES = (10, 50, 90)
MAX_DRAWS_PER_BATCH = 1_000_000  # deals × runs simulated at once (about 8 MB of draws)
# From this many open deals in a cell, a run draws the cell's sum from its normal instead of
# each deal: the sum's skew then moves its P10 / P90 by under a tenth of its spread even at a
# 1% rate, and by a few hundredths at the rates seen in practice.
NORMAL_FROM_DEALS = 200


@dataclass(frozen=True)
class Interval:
    p10: float
    p50: float
    p90: float

    @property
    def width(self) -> float:
        return self.p90 - self.p10


@dataclass
class WindowForecast:
    """The revenue of the deals won in [start, end), as forecast from the deals open when
    asked."""

    start: datetime
    end: datetime
    open_deals: int
    open_amount: float
    revenue: Interval


@dataclass
class BacktestMonth:
    month: date
    anchors: int
    open_deals: int
    revenue: Interval
    actual: float

    @property
    def covered(self) -> bool:
        return self.revenue.p10 <= self.actual <= self.revenue.p90


@dataclass
class Backtest:
    months: list[BacktestMonth]

    @property
    def covered(self) -> int:
        return sum(m.covered for m in self.months)

    @property
    def coverage(self) -> float | None:
        return self.covered / len(self.months) if self.months else None

    @property
    def p50_mape(self) -> float | None:
        """The P50's mean absolute percentage error over the months with revenue."""
        errors = [abs(m.revenue.p50 - m.actual) / m.actual for m in self.months if m.actual > 0]
        return sum(errors) / len(errors) if errors else None

    @property
    def mean_width(self) -> float | None:
        widths = [m.revenue.width for m in self.months]
        return sum(widths) / len(widths) if widths else None

    @property
    def mean_relative_width(self) -> float | None:
        """The mean width against the mean actual revenue: how wide the interval is for what
        it holds."""
        actual, width = sum(m.actual for m in self.months), self.mean_width
        return width * len(self.months) / actual if actual and width is not None else None


@dataclass
class Forecast:
    as_of: datetime
    this_month_won: float  # already won this month, before `as_of`
    this_month_remaining: WindowForecast
    next_month: WindowForecast
    backtest: Backtest


# Stages as small integers in `Stage` order, and a deal's cell as stage × age bucket.
STAGES = tuple(Stage)
STAGE_CODES = {stage.value: code for code, stage in enumerate(STAGES)}
IS_OPEN = np.array([stage in OPEN_STAGES for stage in STAGES])
WON_CODE = STAGE_CODES[Stage.WON]
BUCKETS = len(AGE_BUCKETS_DAYS) + 1
CELLS = len(STAGES) * BUCKETS
# Cells in order of their (stage, bucket) pairs: the order the simulation draws them in.
CELL_KEYS = [(stage.value, bucket) for stage in STAGES for bucket in range(BUCKETS)]
CELL_ORDER = sorted(range(CELLS), key=CELL_KEYS.__getitem__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
DAY_MICROSECONDS = 86_400_000_000


@dataclass(frozen=True)
class StageHistory:
    """Every customer's stage history as arrays: the moves sorted by customer, then time."""

    amounts: np.ndarray  # per customer, in the order given
    customers: np.ndarray  # per move: the index of its customer
    micros: np.ndarray  # per move: microseconds since the epoch
    stages: np.ndarray  # per move: the code of the stage it led to

    @classmethod
    def from_rows(
        cls, amounts: dict[int, float], moves: Iterable[tuple[int, str, int]]
    ) -> StageHistory:
        """From customer ids with their amounts and (customer id, stage, microseconds since
        the epoch) moves in order of customer, then time."""
        ids = np.fromiter(amounts, dtype=np.int64, count=len(amounts))
        order = np.argsort(ids, kind="stable")
        rows = list(moves)

        def column(values: Iterable[int]) -> np.ndarray:
            return np.fromiter(values, dtype=np.int64, count=len(rows))

        move_ids = column(row[0] for row in rows)
        return cls(
            amounts=np.fromiter(amounts.values(), dtype=np.float64, count=len(amounts)),
            customers=order[np.searchsorted(ids, move_ids, sorter=order)],
            micros=column(row[2] for row in rows),
            stages=column(STAGE_CODES[row[1]] for row in rows),
        )


@dataclass
class _Lessons:
    """What the anchors before a moment teach: deals and wins per cell, and the revenue of
    deals that were not open at each anchor."""

    anchors: int
    deals: np.ndarray
    wins: np.ndarray
    others: list[float]


def revenue_forecast(
    session: Session,
    *,
    actor: Actor,
    now: datetime,
    team_id: int | None = None,
    backtest_months: int = BACKTEST_MONTHS,
) -> Forecast:
    """This month's remaining and next month's revenue of the actor's scope, with a back-test."""
    conditions = scopes.team_conditions(session, actor=actor, team_id=team_id, view="业绩预测")
    amounts = {
        customer_id: float(amount or 0)
        for customer_id, amount in session.execute(
            select(Customer.id, Customer.expected_amount).where(*conditions).order_by(Customer.id)
        )
    }
    moves = session.execute(
        select(
            StageChange.customer_id,
            StageChange.to_stage,
            epoch_microseconds(StageChange.changed_at),
        )
        .join(Customer, Customer.id == StageChange.customer_id)
        .where(*conditions, StageChange.changed_at <= now)
        .order_by(StageChange.customer_id, StageChange.changed_at, StageChange.id)
    )
    history = StageHistory.from_rows(amounts, moves)
    return forecast_from(history, now=now, backtest_months=backtest_months)


def forecast_from(
    history: StageHistory, *, now: datetime, backtest_months: int = BACKTEST_MONTHS
) -> Forecast:
    """The forecast from customers' histories as of `now` (pure: the tests feed it directly)."""
    method = _Method(history)
    this_month = _month_start(calendar.local_date(now))
    months = []
    for back in range(backtest_months, 0, -1):
        month = _add_months(this_month, -back)
        answer = method.forecast(calendar.day_start(month), months_ahead=0, need=MIN_ANCHORS)
        if answer is not None:
            lessons, window = answer
            months.append(
                BacktestMonth(
                    month=month,
                    anchors=lessons.anchors,
                    open_deals=window.open_deals,
                    revenue=window.revenue,
                    actual=method.won_revenue(window.start, window.end),
                )
            )
    # With too little history the rates are the prior's alone, and the width says so.
    live = [method.forecast(now, months_ahead=ahead, need=0) for ahead in (0, 1)]
    this_month_rest, next_month = (answer[1] for answer in live if answer is not None)
    return Forecast(
        as_of=now,
        this_month_won=method.won_revenue(calendar.day_start(this_month), now),
        this_month_remaining=this_month_rest,
        next_month=next_month,
        backtest=Backtest(months),
    )


@dataclass(frozen=True)
class _Tally:
    """One anchor's open deals and wins per cell, and the revenue of the deals not open."""

    deals: np.ndarray
    wins: np.ndarray
    other: float


class _Method:
    """The method over one stage history, a moment's stages read for all customers at once.
    Each anchor is tallied once, however many forecasts learn from it: every month of the
    back-test learns from the month starts before."""

    def __init__(self, history: StageHistory) -> None:
        self.history = history
        self.first_move = _moment(int(history.micros.min())) if history.micros.size else None
        # Until when each move is in force: its customer's next move, or for ever.
        is_last = np.ones(history.micros.size, dtype=bool)
        is_last[:-1] = history.customers[1:] != history.customers[:-1]
        self.until = np.append(history.micros[1:], 0)
        self.until[is_last] = np.iinfo(np.int64).max
        # The wins alone (few beside all moves).
        won = history.stages == WON_CODE
        self.won_customers = history.customers[won]
        self.won_micros = history.micros[won]
        self.tallies: dict[tuple[datetime, int], _Tally] = {}

    def forecast(
        self, as_of: datetime, *, months_ahead: int, need: int
    ) -> tuple[_Lessons, WindowForecast] | None:
        """The window `months_ahead` of `as_of` from the deals open at `as_of`; None when fewer
        than `need` anchors are behind it."""
        lessons = self.learn(as_of, months_ahead)
        if lessons.anchors < need:
            return None
        customers, cells = self.open_deals(as_of)
        amounts = self.history.amounts[customers]
        start, end = _window(as_of, months_ahead)
        revenue = _simulate(cells, amounts, lessons)
        return lessons, WindowForecast(start, end, customers.size, float(amounts.sum()), revenue)

    def learn(self, as_of: datetime, months_ahead: int) -> _Lessons:
        """The tallies of the anchors before `as_of` whose window had ended by then."""
        lessons = _Lessons(0, np.zeros(CELLS, dtype=np.int64), np.zeros(CELLS, np.int64), [])
        if self.first_move is None:
            return lessons
        for back in count(1):
            anchor = _months_before(as_of, back)
            if anchor < self.first_move:
                return lessons
            if _window(anchor, months_ahead)[1] > as_of:  # its outcome was not known yet
                continue
            tally = self.tally(anchor, months_ahead)
            lessons.anchors += 1
            lessons.deals += tally.deals
            lessons.wins += tally.wins
            lessons.others.append(tally.other)
        raise AssertionError("unreachable: anchors run back past the first move")

    def tally(self, anchor: datetime, months_ahead: int) -> _Tally:
        key = (anchor, months_ahead)
        if key not in self.tallies:
            customers, cells = self.open_deals(anchor)
            won = self.is_won_in(*_window(anchor, months_ahead))
            is_open = np.zeros(won.size, dtype=bool)
            is_open[customers] = True
            self.tallies[key] = _Tally(
                deals=np.bincount(cells, minlength=CELLS),
                wins=np.bincount(cells[won[customers]], minlength=CELLS),
                other=float(self.history.amounts[won & ~is_open].sum()),
            )
        return self.tallies[key]

    def open_deals(self, moment: datetime) -> tuple[np.ndarray, np.ndarray]:
        """The customers whose deal is open at `moment` (in their order) and the deals' cells
        (stage and age in it)."""
        history, at = self.history, to_micros(moment)
        # One move per customer is in force: made by the moment, its next one not yet.
        current = np.flatnonzero((history.micros <= at) & (self.until > at))
        current = current[IS_OPEN[history.stages[current]]]
        ages = (at - history.micros[current]) // DAY_MICROSECONDS
        buckets = np.searchsorted(AGE_BUCKETS_DAYS, ages, side="right")
        return history.customers[current], history.stages[current] * BUCKETS + buckets

    def is_won_in(self, start: datetime, end: datetime) -> np.ndarray:
        """Per customer: whether it was won in [start, end)."""
        inside = (self.won_micros >= to_micros(start)) & (self.won_micros < to_micros(end))
        won = np.zeros(self.history.amounts.size, dtype=bool)
        won[self.won_customers[inside]] = True
        return won

    def won_revenue(self, start: datetime, end: datetime) -> float:
        """The revenue actually won in [start, end): each customer won in it, once."""
        return round(float(self.history.amounts[self.is_won_in(start, end)].sum()), 2)


def _simulate(cells: np.ndarray, amounts: np.ndarray, lessons: _Lessons) -> Interval:
    """P10 / P50 / P90 of the revenue over `SIMULATIONS` seeded runs."""
    rng = np.random.default_rng(_seed(cells, amounts, lessons))
    present = set(cells.tolist())
    used = [cell for cell in CELL_ORDER if cell in present]
    alpha, beta = _posteriors(used, lessons)
    # Each run draws its own rate per cell (the history's uncertainty), then the cell's deals.
    rates = rng.beta(alpha, beta, size=(SIMULATIONS, len(used)))
    position = np.zeros(CELLS, dtype=np.int64)
    position[used] = np.arange(len(used))
    index = position[cells]
    deals = np.bincount(index, minlength=len(used))
    is_large = deals >= NORMAL_FROM_DEALS
    revenue = np.zeros(SIMULATIONS)
    # A small cell's deals one by one, in batches of runs so that memory stays bounded.
    one_by_one = ~is_large[index]
    small, values = index[one_by_one], amounts[one_by_one]
    batch = max(1, MAX_DRAWS_PER_BATCH // max(1, small.size))
    for first in range(0, SIMULATIONS, batch):
        runs = rates[first : first + batch]
        won = rng.random((len(runs), small.size)) < runs[:, small]
        revenue[first : first + batch] += won @ values
    # A large cell's sum at once: its normal, with the sum's exact mean and variance at the
    # run's rate, kept within what the cell can bring.
    total = np.bincount(index, weights=amounts, minlength=len(used))[is_large]
    squares = np.bincount(index, weights=amounts**2, minlength=len(used))[is_large]
    rate = rates[:, is_large]
    spread = np.sqrt(rate * (1 - rate) * squares)
    draws = rate * total + spread * rng.standard_normal(rate.shape)
    revenue += np.clip(draws, 0, total).sum(axis=1)
    if lessons.others:
        revenue += rng.choice(np.array(lessons.others), size=SIMULATIONS)
    p10, p50, p90 = (float(v) for v in np.percentile(revenue, QUANTILES))
    return Interval(round(p10, 2), round(p50, 2), round(p90, 2))


def _posteriors(cells: list[int], lessons: _Lessons) -> tuple[np.ndarray, np.ndarray]:
    """Beta parameters of each cell's win rate: its own deals over a prior at its stage's rate,
    which leans on the rate of all deals (itself with a flat Beta(1, 1) prior)."""
    deals_all, wins_all = int(lessons.deals.sum()), int(lessons.wins.sum())
    overall = (wins_all + 1) / (deals_all + 2)
    by_stage_deals = lessons.deals.reshape(len(STAGES), BUCKETS).sum(axis=1).tolist()
    by_stage_wins = lessons.wins.reshape(len(STAGES), BUCKETS).sum(axis=1).tolist()
    alpha, beta = [], []
    for cell in cells:
        stage = cell // BUCKETS
        stage_rate = (by_stage_wins[stage] + PRIOR_STRENGTH * overall) / (
            by_stage_deals[stage] + PRIOR_STRENGTH
        )
        wins, deals = int(lessons.wins[cell]), int(lessons.deals[cell])
        alpha.append(wins + PRIOR_STRENGTH * stage_rate)
        beta.append(deals - wins + PRIOR_STRENGTH * (1 - stage_rate))
    return np.array(alpha), np.array(beta)


def _seed(cells: np.ndarray, amounts: np.ndarray, lessons: _Lessons) -> int:
    """A seed from the simulation's inputs: the same data, the same draws."""
    digest = hashlib.sha256()
    others = np.array(lessons.others, dtype=np.float64)
    for part in (cells, amounts, lessons.deals, lessons.wins, others):
        digest.update(part.size.to_bytes(8, "big"))
        digest.update(np.ascontiguousarray(part).tobytes())
    return int.from_bytes(digest.digest()[:8], "big")


def to_micros(moment: datetime) -> int:
    """Whole microseconds since the epoch, as the stage history holds its moments."""
    return (moment - EPOCH) // MICROSECOND


def _moment(micros: int) -> datetime:
    return EPOCH + micros * MICROSECOND


def _window(moment: datetime, months_ahead: int) -> tuple[datetime, datetime]:
    """The rest of the month of `moment` (0), or the whole month after it (1)."""
    month = _month_start(calendar.local_date(moment))
    start = moment if months_ahead == 0 else calendar.day_start(_add_months(month, months_ahead))
    return start, calendar.day_start(_add_months(month, months_ahead + 1))


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _months_before(moment: datetime, months: int) -> datetime:
    """The same Beijing time of day and day of the month (at most the 28th), months before."""
    local = moment.astimezone(calendar.BUSINESS_TZ)
    month = _add_months(local.date().replace(day=1), -months)
    return local.replace(year=month.year, month=month.month, day=min(local.day, 28))


def _add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
