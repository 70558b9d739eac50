"""The team funnel (团队漏斗): where customers stand, how they move, and where they stall.

Read from the customers and their stage history (`stage_changes`) for a period of Beijing days.
The decisions, so that every figure can be checked by hand (tests/crm/test_funnel.py does so
with plain SQL):

- Who: a manager sees their team, the boss everyone, broken down by team (or one team, by
  `team_id`). Reps are refused: PRODUCT.md makes the funnel the manager's view. Another team's
  id answers NotFound, like any record outside scope.
- Attribution: a customer counts for the team and the rep holding it now, and the filters
  (region, source, category, grade) read its current values: stage history keeps no owner.
  Customers in the public pool count for their team and the total, for no rep.
- Period: [start, end) of Beijing days, at most `MAX_PERIOD_DAYS` long.
- `now`: customers in each stage at the time of asking, whatever the period.
- `entered`: distinct customers with a move into the stage during the period. A new customer's
  first record is a move into its first stage, so `entered` of 潜在 counts new leads.
- Conversion S → next along 潜在 → 意向 → 报价 → 成交: of the customers who entered S during the
  period, the share who then entered the next stage — after their first entry into S in the
  period and before the period's end. By the period's end, not by now, so that a closed
  period's figures never change afterwards and two periods of equal length compare fairly; the
  price is that entries late in a period have had little time to convert.
- Weakest step: the lowest conversion among steps with at least `MIN_STEP_BASE` customers
  entering; none when no step has that many.
- Dwell time: a stay in a stage runs from the move into it to the move out of it. Stays that
  ended during the period count, however long ago they began; open stays (customers still in
  the stage) do not, as their length is not known yet — `now` says how many there are. Average
  and median in days, over the durations of the period's moves out of each stage: Python takes
  the median, over at most as many values as the period has stage changes.

Four aggregate statements per period — customers by stage, then three joins of the period's
`stage_changes` (indexed on `changed_at`, and on `customer_id, changed_at` for each customer's
next or previous move) with `customers` — grouped by holder; the same SQL on SQLite and
PostgreSQL. Totals, teams and reps are sums of those groups.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise

from sqlalchemy import ColumnElement, case, distinct, exists, func, select
from sqlalchemy.orm import Session, aliased

from crm import calendar
from crm.actors import Actor, customer_scope
from crm.errors import Forbidden, Invalid, NotFound
from crm.vocab import Stage
from models import Customer, StageChange, Team, User
from models.users import Role

MAX_PERIOD_DAYS = 366
FIRST_YEAR, LAST_YEAR = 2000, 2100
MIN_STEP_BASE = 20  # fewer customers entering a step say too little to call it the weakest
SECONDS_PER_DAY = 86400

FUNNEL = (Stage.LEAD, Stage.INTEREST, Stage.QUOTE, Stage.WON)
NEXT_STAGE: dict[str, str] = {a.value: b.value for a, b in pairwise(FUNNEL)}

# A customer key: the team and the rep (None: the pool) that hold it now.
Holder = tuple[int | None, int | None]


@dataclass(frozen=True)
class Period:
    """[start, end) in Beijing days; `of` refuses reversed, empty and over-long periods."""

    start: date
    end: date

    @classmethod
    def of(cls, start: date, end: date, *, field_prefix: str = "") -> Period:
        if end <= start:
            raise Invalid(
                "结束日期必须晚于开始日期（统计期不含结束日当天）",
                code="period_reversed",
                field=f"{field_prefix}end",
            )
        if start.year < FIRST_YEAR or end.year > LAST_YEAR:
            raise Invalid(
                f"日期应在 {FIRST_YEAR} 到 {LAST_YEAR} 年之间",
                code="period_out_of_range",
                field=f"{field_prefix}start",
            )
        if (end - start).days > MAX_PERIOD_DAYS:
            raise Invalid(
                f"统计期最长 {MAX_PERIOD_DAYS} 天",
                code="period_too_long",
                field=f"{field_prefix}end",
            )
        return cls(start, end)


@dataclass(frozen=True)
class FunnelFilters:
    """Narrow the funnel to customers with these current values."""

    region: str | None = None
    source: str | None = None
    category: str | None = None
    grade: str | None = None


@dataclass
class StageCount:
    stage: str
    now: int
    entered: int


@dataclass
class Step:
    from_stage: str
    to_stage: str
    base: int  # customers who entered from_stage in the period
    converted: int  # of them, those who entered to_stage before the period's end

    @property
    def rate(self) -> float | None:
        return self.converted / self.base if self.base else None


@dataclass
class Dwell:
    stage: str
    stays: int  # stays in the stage that ended in the period
    average_days: float | None
    median_days: float | None


@dataclass
class Figures:
    """The funnel of one group of customers: the company, a team or a rep."""

    stages: list[StageCount]
    steps: list[Step]
    dwell: list[Dwell]
    weakest_step: Step | None


@dataclass
class TeamFunnel:
    team_id: int | None
    name: str | None
    funnel: Figures


@dataclass
class RepFunnel:
    user_id: int
    name: str
    team_id: int | None
    funnel: Figures


@dataclass
class FunnelReport:
    start: date
    end: date
    total: Figures
    teams: list[TeamFunnel]
    reps: list[RepFunnel]


@dataclass
class _Tally:
    """Additive raw figures of some customers; groups merge by adding."""

    now: Counter[str] = field(default_factory=Counter)
    entered: Counter[str] = field(default_factory=Counter)
    base: Counter[str] = field(default_factory=Counter)
    converted: Counter[str] = field(default_factory=Counter)
    stays: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, other: _Tally) -> None:
        self.now += other.now
        self.entered += other.entered
        self.base += other.base
        self.converted += other.converted
        for stage, days in other.stays.items():
            self.stays[stage] += days


def team_funnel(
    session: Session,
    *,
    actor: Actor,
    period: Period,
    filters: FunnelFilters = FunnelFilters(),
    team_id: int | None = None,
) -> FunnelReport:
    """The funnel of the customers in the actor's scope (one team's, if given) for a period."""
    conditions = _conditions(session, actor=actor, filters=filters, team_id=team_id)
    tallies = _tallies(session, conditions, period)
    total = _Tally()
    by_team: defaultdict[int | None, _Tally] = defaultdict(_Tally)
    by_rep: defaultdict[int, _Tally] = defaultdict(_Tally)
    for (team, owner), tally in tallies.items():
        total.add(tally)
        by_team[team].add(tally)
        if owner is not None:
            by_rep[owner].add(tally)
    team_names: dict[int | None, str] = dict(
        session.execute(select(Team.id, Team.name).where(Team.id.in_(list(by_team)))).all()
    )
    reps = session.execute(
        select(User.id, User.name, User.team_id).where(User.id.in_(list(by_rep))).order_by(User.id)
    ).all()
    return FunnelReport(
        start=period.start,
        end=period.end,
        total=_figures(total),
        teams=[
            TeamFunnel(team, team_names.get(team), _figures(by_team[team]))
            for team in sorted(by_team, key=lambda t: (t is None, t or 0))
        ],
        reps=[RepFunnel(rep.id, rep.name, rep.team_id, _figures(by_rep[rep.id])) for rep in reps],
    )


def _conditions(
    session: Session, *, actor: Actor, filters: FunnelFilters, team_id: int | None
) -> list[ColumnElement[bool]]:
    if actor.is_rep:
        raise Forbidden("团队漏斗只对主管和老板开放")
    conditions = [customer_scope(actor)]
    if team_id is not None:
        check_team_in_scope(session, actor=actor, team_id=team_id)
        conditions.append(Customer.team_id == team_id)
    for column, value in (
        (Customer.region, filters.region),
        (Customer.source, filters.source),
        (Customer.category, filters.category),
        (Customer.grade, filters.grade),
    ):
        if value is not None:
            conditions.append(column == value)
    return conditions


def check_team_in_scope(session: Session, *, actor: Actor, team_id: int) -> None:
    """A manager may name their own team, the boss any; other ids answer NotFound."""
    if session.get(Team, team_id) is None or (
        actor.role is Role.MANAGER and team_id != actor.team_id
    ):
        raise NotFound("团队")


def _tallies(
    session: Session, conditions: list[ColumnElement[bool]], period: Period
) -> defaultdict[Holder, _Tally]:
    """The raw figures per (team, rep) holding the customers: four statements."""
    start_at, end_at = calendar.day_start(period.start), calendar.day_start(period.end)
    change = StageChange
    in_period = (change.changed_at >= start_at, change.changed_at < end_at)
    tallies: defaultdict[Holder, _Tally] = defaultdict(_Tally)
    holder = (Customer.team_id, Customer.owner_id)

    now = session.execute(
        select(*holder, Customer.stage, func.count())
        .where(*conditions)
        .group_by(*holder, Customer.stage)
    )
    for team, owner, stage, count in now:
        tallies[team, owner].now[stage] += count

    entered = session.execute(
        select(*holder, change.to_stage, func.count(distinct(change.customer_id)))
        .join(Customer, Customer.id == change.customer_id)
        .where(*conditions, *in_period)
        .group_by(*holder, change.to_stage)
    )
    for team, owner, stage, count in entered:
        tallies[team, owner].entered[stage] += count

    # Each customer's first entry into a funnel stage in the period, then whether a move into
    # the next stage followed it before the period's end.
    entries = (
        select(
            change.customer_id,
            change.to_stage,
            *holder,
            func.min(change.changed_at).label("entered_at"),
        )
        .join(Customer, Customer.id == change.customer_id)
        .where(*conditions, *in_period, change.to_stage.in_(list(NEXT_STAGE)))
        .group_by(change.customer_id, change.to_stage, *holder)
        .subquery()
    )
    later = aliased(StageChange)
    moved_on = exists().where(
        later.customer_id == entries.c.customer_id,
        later.to_stage == case(NEXT_STAGE, value=entries.c.to_stage),
        later.changed_at > entries.c.entered_at,
        later.changed_at < end_at,
    )
    steps = session.execute(
        select(
            entries.c.team_id,
            entries.c.owner_id,
            entries.c.to_stage,
            func.count(),
            func.sum(case((moved_on, 1), else_=0)),
        ).group_by(entries.c.team_id, entries.c.owner_id, entries.c.to_stage)
    )
    for team, owner, stage, base, converted in steps:
        tallies[team, owner].base[stage] += base
        tallies[team, owner].converted[stage] += converted or 0

    # A move out of a stage in the period ends a stay that began with the customer's move before.
    earlier = aliased(StageChange)
    stay_began = (
        select(func.max(earlier.changed_at))
        .where(earlier.customer_id == change.customer_id, earlier.changed_at < change.changed_at)
        .scalar_subquery()
    )
    stays = session.execute(
        select(*holder, change.from_stage, stay_began, change.changed_at)
        .join(Customer, Customer.id == change.customer_id)
        .where(*conditions, *in_period, change.from_stage.is_not(None))
    )
    for team, owner, left, began, ended in stays:
        if left is not None and began is not None:  # history is whole from each creation
            seconds = (ended - began).total_seconds()
            tallies[team, owner].stays[left].append(seconds / SECONDS_PER_DAY)
    return tallies


def _figures(tally: _Tally) -> Figures:
    steps = [Step(a, b, tally.base[a], tally.converted[a]) for a, b in NEXT_STAGE.items()]
    return Figures(
        stages=[StageCount(s, tally.now[s], tally.entered[s]) for s in Stage],
        steps=steps,
        dwell=[_dwell(s, tally.stays.get(s, [])) for s in Stage],
        weakest_step=_weakest(steps),
    )


def _dwell(stage: str, days: list[float]) -> Dwell:
    if not days:
        return Dwell(stage, 0, None, None)
    return Dwell(stage, len(days), statistics.fmean(days), statistics.median(days))


def _weakest(steps: Iterable[Step]) -> Step | None:
    counted = [s for s in steps if s.base >= MIN_STEP_BASE]
    return min(counted, key=lambda s: s.converted / s.base) if counted else None
