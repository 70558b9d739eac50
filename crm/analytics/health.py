"""The rep health score (销售健康度): per rep and calendar month, three dimensions of 0–100.

Each dimension is the mean of its parts' scores that can be computed (a part with nothing to
stand on — no tasks due, no follow-ups — is left out, not scored 0; the mean is of the parts'
scores as shown, to one decimal); each part maps one raw figure to 0–100 as its `Part` in
`DIMENSIONS` states. The raw figures are the KPI panel's (crm/analytics/kpi.py: `person_tallies`
and `measure` for one rep), plus two counts of their own: the grades of the customers a rep
holds, and their first deal since joining.

- Scale: against fixed targets, not percentiles within the company. A percentile would make a
  rep's score depend on who else is counted (a manager's view reads one team only), change when
  a colleague joins or leaves, and always put someone at 0; a target says the same thing in
  every team and every month, and a hand computation checks it. Targets are the seed's own
  figures where it gives one (a new rep should start in a month, not two; 报价 is chased after 7
  days) and round figures where it does not (`TARGET_*` below).
- Conversion trend compares the month's win rate (kpi's 成单率) with the three months before it:
  50 means no change, each percentage point up or down moves it by one, clipped to 0–100.
- Team median: the median of the team's active reps' scores, per dimension and per part, over
  the reps that have a score.
- Who: the boss sees every active rep (or one team's, by `team_id`), a manager their team's, a
  rep only themselves (PRODUCT.md: a per-rep score), each rep beside their team's medians. A team
  of fewer than `MIN_REPS_FOR_MEDIAN` reps shows a rep no median: with two, it would give away
  the colleague's score. Another team's id answers NotFound, as in the other views.
- WeCom's 联系客户统计 (crm/contact_stats.py) sits beside the dimensions as the figures WeCom
  gives, not as a score: it exists only where WeCom's customer contact is used, and the score
  must mean the same without it. It is read from what the daily job stored; `contact` is empty
  when nothing is stored for the month (WeCom unreachable, or not in use).

The radar chart draws `radar`: the dimension names, the rep's scores and the team medians.
Statements: the KPI tallies of the month and of the three months before (kpi.py's), grades
held, first deals, stored contact figures: a fixed number, whatever the company's size.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm import calendar, contact_stats
from crm.actors import Actor
from crm.analytics import kpi
from crm.analytics.funnel import SECONDS_PER_DAY, Period
from crm.contact_stats import ContactSummary
from crm.errors import NotFound
from crm.vocab import Grade, Stage
from models import Customer, StageChange, User
from models.users import Role

TARGET_CUSTOMERS_HELD = 50  # a full book for one rep: more scores no higher
TARGET_FOLLOWED_PER_DAY = 5  # customers followed up per working day
ONBOARDING_TARGET_DAYS = 30  # the seed: a new rep took two months; one is the aim
ONBOARDING_ZERO_DAYS = 90  # three months or more without a deal scores 0
GRADE_POINTS = {Grade.A: 100, Grade.B: 75, Grade.C: 50, Grade.D: 25}
TREND_MONTHS = 3  # the conversion trend compares with this many months before
MIN_REPS_FOR_MEDIAN = 3  # what a rep is shown: fewer would reveal a colleague's score


@dataclass(frozen=True)
class Figures:
    """One rep's raw figures for the month, from which every part is scored."""

    kpis: dict[str, float | None]  # kpi.measure's values by key, for this rep alone
    previous_win_rate: float | None
    grade_points: float | None  # average GRADE_POINTS of the graded customers held
    days_to_first_deal: float | None  # or, with no deal yet, the days since joining
    has_first_deal: bool


@dataclass(frozen=True)
class Part:
    key: str
    name: str
    unit: str  # customers, customers_per_day, ratio (0–1), points, days
    definition: str  # the raw figure and how it becomes 0–100
    # figures -> (raw value, score), both None when there is nothing to score
    score: Callable[[Figures], tuple[float | None, float | None]]


@dataclass(frozen=True)
class Dimension:
    key: str
    name: str
    definition: str
    parts: tuple[Part, ...]


def _capped(value: float | None, target: float) -> tuple[float | None, float | None]:
    return value, None if value is None else 100.0 * min(value / target, 1)


def _percent(value: float | None) -> tuple[float | None, float | None]:
    return value, None if value is None else 100 * value


def _onboarding(f: Figures) -> tuple[float | None, float | None]:
    days = f.days_to_first_deal
    if days is None or (not f.has_first_deal and days < ONBOARDING_TARGET_DAYS):
        return None, None  # joining unknown, or too early to tell
    span = ONBOARDING_ZERO_DAYS - ONBOARDING_TARGET_DAYS
    late = min(max(days - ONBOARDING_TARGET_DAYS, 0), span)
    return days, 100 * (1 - late / span)


def _trend(f: Figures) -> tuple[float | None, float | None]:
    now, before = f.kpis["win_rate"], f.previous_win_rate
    if now is None or before is None:
        return None, None
    change = now - before
    return change, min(max(50 + 100 * change, 0), 100)


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(
        "efficiency",
        "效率",
        "名下客户数、日均跟进客户数、任务完成准时率三项得分的平均（没有可计算基数的项不计）",
        (
            Part(
                "customers_held",
                "名下客户数",
                "customers",
                f"此刻名下的客户数；达到 {TARGET_CUSTOMERS_HELD} 个得 100 分，按比例递减",
                lambda f: _capped(f.kpis["customers_per_rep"], TARGET_CUSTOMERS_HELD),
            ),
            Part(
                "followed_per_day",
                "日均跟进客户数",
                "customers_per_day",
                "当月跟进过的（客户，北京时间的日）去重数除以当月已开始的天数；"
                f"达到 {TARGET_FOLLOWED_PER_DAY} 个得 100 分，按比例递减",
                lambda f: _capped(
                    f.kpis["followed_customers_per_rep_day"], TARGET_FOLLOWED_PER_DAY
                ),
            ),
            Part(
                "tasks_on_time",
                "任务完成准时率",
                "ratio",
                "当月截止且已过的待办中按时完成的比例，乘 100 为得分",
                lambda f: _percent(f.kpis["tasks_on_time_rate"]),
            ),
        ),
    ),
    Dimension(
        "quality",
        "质量",
        "客户资料完整度、回访间隔达标率、客户等级结构三项得分的平均（没有可计算基数的项不计）",
        (
            Part(
                "profile_completeness",
                "客户资料完整度",
                "ratio",
                "当月新建客户的平均资料完整度，乘 100 为得分",
                lambda f: _percent(f.kpis["profile_completeness"]),
            ),
            Part(
                "follow_up_interval",
                "回访间隔达标率",
                "ratio",
                f"当月的跟进中距同一客户上次跟进不超过 {kpi.FOLLOW_UP_INTERVAL_DAYS} 天的比例，"
                "乘 100 为得分",
                lambda f: _percent(f.kpis["follow_up_interval_rate"]),
            ),
            Part(
                "grade_mix",
                "客户等级结构",
                "points",
                "此刻名下已评级客户的平均分：A 100、B 75、C 50、D 25，即为得分",
                lambda f: (f.grade_points, f.grade_points),
            ),
        ),
    ),
    Dimension(
        "growth",
        "成长",
        "首单天数、成交率趋势两项得分的平均（没有可计算基数的项不计）",
        (
            Part(
                "days_to_first_deal",
                "首单天数",
                "days",
                "从加入系统到名下客户第一次进入成交的天数（截至月底；还没有成交的按已过天数计，"
                f"加入不满 {ONBOARDING_TARGET_DAYS} 天或加入时间未知的不计）；"
                f"{ONBOARDING_TARGET_DAYS} 天内 100 分，到 {ONBOARDING_ZERO_DAYS} 天线性降到 0 分",
                _onboarding,
            ),
            Part(
                "conversion_trend",
                "成交率趋势",
                "ratio",
                f"当月成单率减去前 {TREND_MONTHS} 个月的成单率；"
                "50 分为持平，每升降 1 个百分点加减 1 分，限 0–100",
                _trend,
            ),
        ),
    ),
)


@dataclass
class PartScore:
    key: str
    name: str
    unit: str
    value: float | None
    score: float | None
    team_median: float | None


@dataclass
class DimensionScore:
    key: str
    name: str
    score: float | None
    team_median: float | None
    parts: list[PartScore]


@dataclass
class Radar:
    """What a radar chart draws: one axis per dimension, the rep's and the team's polygons."""

    dimensions: list[str]
    values: list[float | None]
    team_medians: list[float | None]


@dataclass
class RepHealth:
    user_id: int
    name: str
    team_id: int | None
    dimensions: list[DimensionScore]
    radar: Radar
    contact: ContactSummary | None  # WeCom's figures for the month; None: none stored


@dataclass
class PartDefinition:
    key: str
    name: str
    unit: str
    definition: str


@dataclass
class DimensionDefinition:
    key: str
    name: str
    definition: str
    parts: list[PartDefinition]


@dataclass
class HealthReport:
    month: str
    start: date
    end: date
    definitions: list[DimensionDefinition]
    reps: list[RepHealth]


def rep_health(
    session: Session, *, actor: Actor, month: date, now: datetime, team_id: int | None = None
) -> HealthReport:
    """The health scores of the month (`month`: any day in it) of the reps the actor may see."""
    period = _month(month)
    # A rep reads their team as its manager would, to place themselves among the medians; only
    # their own row is returned.
    viewer = actor
    if actor.is_rep:
        viewer = Actor(user_id=actor.user_id, role=Role.MANAGER, team_id=actor.team_id)
    tallies = kpi.person_tallies(session, actor=viewer, period=period, now=now, team_id=team_id)
    before = kpi.person_tallies(
        session, actor=viewer, period=_months_before(period.start), now=now, team_id=team_id
    )
    reps = [p for p in tallies.people if p.is_active_rep]
    ids = [p.user_id for p in reps]
    grades = _grade_points(session, ids)
    first_deals = _first_deals(session, ids, period)
    contact = contact_stats.month_summary(session, user_ids=ids, start=period.start, end=period.end)

    scored: dict[int, list[DimensionScore]] = {}
    for person in reps:
        tally = tallies.by_holder[person.team_id, person.user_id]
        values = kpi.measure(tally, tally, kpi.Headcount(1, tallies.days))
        previous = before.by_holder.get((person.team_id, person.user_id), kpi.PersonTally())
        previous_values = kpi.measure(previous, previous, kpi.Headcount(1, before.days))
        joined_days, has_deal = first_deals.get(person.user_id, (None, False))
        figures = Figures(
            kpis={v.key: v.value for v in values},
            previous_win_rate=next(v.value for v in previous_values if v.key == "win_rate"),
            grade_points=grades.get(person.user_id),
            days_to_first_deal=joined_days,
            has_first_deal=has_deal,
        )
        scored[person.user_id] = _score(figures)

    team_of = {p.user_id: p.team_id for p in reps}
    medians = _medians(scored, team_of)
    shown = [p for p in reps if not actor.is_rep or p.user_id == actor.user_id]
    team_sizes = Counter(team_of.values())
    rows = []
    for person in shown:
        dimensions = scored[person.user_id]
        hide = actor.is_rep and team_sizes[person.team_id] < MIN_REPS_FOR_MEDIAN
        for d in dimensions:
            d.team_median = None if hide else medians[person.team_id, d.key]
            for p in d.parts:
                p.team_median = None if hide else medians[person.team_id, f"{d.key}.{p.key}"]
        rows.append(
            RepHealth(
                user_id=person.user_id,
                name=person.name,
                team_id=person.team_id,
                dimensions=dimensions,
                radar=Radar(
                    dimensions=[d.name for d in dimensions],
                    values=[d.score for d in dimensions],
                    team_medians=[d.team_median for d in dimensions],
                ),
                contact=contact.get(person.user_id),
            )
        )
    return HealthReport(
        month=period.start.strftime("%Y-%m"),
        start=period.start,
        end=period.end,
        definitions=[
            DimensionDefinition(
                d.key,
                d.name,
                d.definition,
                [PartDefinition(p.key, p.name, p.unit, p.definition) for p in d.parts],
            )
            for d in DIMENSIONS
        ],
        reps=rows,
    )


def rep_radar(
    session: Session, *, actor: Actor, month: date, now: datetime, user_id: int
) -> tuple[str, Radar]:
    """One rep's name and radar for the month, among the reps the actor may see; a rep out of
    reach answers like one that does not exist."""
    for row in rep_health(session, actor=actor, month=month, now=now).reps:
        if row.user_id == user_id:
            return row.name, row.radar
    raise NotFound("销售")


def _score(figures: Figures) -> list[DimensionScore]:
    """Every part and dimension of one rep, medians still empty."""
    dimensions = []
    for dimension in DIMENSIONS:
        parts = []
        for part in dimension.parts:
            value, score = part.score(figures)
            parts.append(PartScore(part.key, part.name, part.unit, value, _round(score), None))
        known = [p.score for p in parts if p.score is not None]
        mean = statistics.fmean(known) if known else None
        dimensions.append(DimensionScore(dimension.key, dimension.name, _round(mean), None, parts))
    return dimensions


def _medians(
    scored: dict[int, list[DimensionScore]], team_of: dict[int, int | None]
) -> defaultdict[tuple[int | None, str], float | None]:
    """Per (team, dimension key or "dimension.part"), the median over reps with a score."""
    values: defaultdict[tuple[int | None, str], list[float]] = defaultdict(list)
    for user_id, dimensions in scored.items():
        team = team_of[user_id]
        for d in dimensions:
            if d.score is not None:
                values[team, d.key].append(d.score)
            for p in d.parts:
                if p.score is not None:
                    values[team, f"{d.key}.{p.key}"].append(p.score)
    medians: defaultdict[tuple[int | None, str], float | None] = defaultdict(lambda: None)
    for key, scores in values.items():
        medians[key] = _round(statistics.median(scores))
    return medians


def _grade_points(session: Session, user_ids: list[int]) -> dict[int, float]:
    """The average GRADE_POINTS of the graded customers each rep holds now."""
    points: defaultdict[int, list[int]] = defaultdict(list)
    for owner, grade, count in session.execute(
        select(Customer.owner_id, Customer.grade, func.count())
        .where(Customer.owner_id.in_(user_ids), Customer.grade.is_not(None))
        .group_by(Customer.owner_id, Customer.grade)
    ):
        if owner is not None and grade in GRADE_POINTS:
            points[owner] += [GRADE_POINTS[Grade(grade)]] * count
    return {owner: statistics.fmean(p) for owner, p in points.items()}


def _first_deals(
    session: Session, user_ids: list[int], period: Period
) -> dict[int, tuple[float, bool]]:
    """Per rep with a known joining time: days from joining to their first deal by the month's
    end (True), or, with none yet, days from joining to the month's end (False)."""
    end_at = calendar.day_start(period.end)
    first_deal = func.min(StageChange.changed_at)
    deals = dict(
        session.execute(
            select(Customer.owner_id, first_deal)
            .select_from(StageChange)
            .join(Customer, Customer.id == StageChange.customer_id)
            .join(User, User.id == Customer.owner_id)
            .where(
                Customer.owner_id.in_(user_ids),
                StageChange.to_stage == Stage.WON,
                StageChange.changed_at >= User.joined_at,
                StageChange.changed_at < end_at,
            )
            .group_by(Customer.owner_id)
        ).all()
    )
    result = {}
    for user_id, joined in session.execute(
        select(User.id, User.joined_at).where(User.id.in_(user_ids), User.joined_at.is_not(None))
    ):
        if joined is None or joined >= end_at:
            continue
        deal = deals.get(user_id)
        until = deal if deal is not None else end_at
        result[user_id] = ((until - joined).total_seconds() / SECONDS_PER_DAY, deal is not None)
    return result


def _month(day: date) -> Period:
    first = day.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return Period.of(first, following)


def _months_before(start: date) -> Period:
    index = start.year * 12 + start.month - 1 - TREND_MONTHS
    return Period.of(date(index // 12, index % 12 + 1, 1), start)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
