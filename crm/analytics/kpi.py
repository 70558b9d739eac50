"""The KPI panel (KPI 看板) of the seed's table, and the monthly 数据质量奖 ranking.

Eight figures for a period of Beijing days (funnel.Period), each with its definition in `KPIS`
(served with the figure and repeated in the README). The decisions:

- Who: a manager sees their team, the boss everyone, by team (or one team, by `team_id`; another
  team's id answers NotFound). Reps are refused, as for the funnel: these are the managers' views.
- Attribution: like the funnel, a customer's figures count for the team and the rep holding it
  now (customers in the pool: for their team and the total only); a task counts for the person
  it is assigned to. Per-head figures (人均管理客户数, 日均跟进客户数) divide what the active reps
  hold by how many active reps there are; everything else covers all customers in scope.
- `now` bounds what can be judged: a plan or a task still due later is not yet late, and
  日均跟进客户数 divides by the days of the period that have begun.
- Withdrawn follow-ups (a recalled chat) count for nothing.
- 新人上手周期 runs from `users.joined_at` (set when a person is added or first synced; empty for
  people from before migration 0014, who are left out) to the first move into 成交 after it of a
  customer they hold now, for the people whose first deal falls in the period.
- 人均管理客户数 is the count at the time of asking for any period: ownership keeps no history.

The per-person counts (`PersonTally`, from `person_tallies`) are additive, so teams and the total
are sums, and a later per-rep score (issue 13, the rep health score) can read the same counts.
Statements per period: customers held, outcomes, new profiles, the period's follow-ups with each
one's previous, the plans due with each one's next follow-up, tasks, first deals, people, team
names — all over indexed columns (`stage_changes.changed_at`, `follow_ups.happened_at` and
`.next_follow_up_on`, `tasks` by assignee); follow-up rows are bucketed by Beijing day in Python.

数据质量奖: for a calendar month, the average completeness (crm/completeness.py, as the profiles
stand now) of the customers created that month, per rep holding them; the winner is the best
average among reps with at least `MIN_PROFILES_FOR_AWARD` new profiles (fewer say too little),
ties going to more profiles.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from crm import calendar
from crm.actors import Actor, user_scope
from crm.analytics import scopes
from crm.analytics.funnel import SECONDS_PER_DAY, Holder, Period
from crm.vocab import Stage
from models import Customer, FollowUp, StageChange, Task, Team, User
from models.users import Role

FOLLOW_UP_INTERVAL_DAYS = 7  # the seed's rule: 报价 with no follow-up for 7 days is chased
MIN_PROFILES_FOR_AWARD = 5


@dataclass
class PersonTally:
    """Additive raw counts for the customers one person holds (and the tasks given to them)."""

    customers_held: int = 0
    decided: int = 0  # customers entering 成交 or 流失 in the period
    won: int = 0  # of them, those entering 成交
    plans_due: int = 0
    plans_kept: int = 0
    new_profiles: int = 0
    completeness_points: int = 0  # sum of the new profiles' completeness percentages
    followed_customer_days: int = 0  # distinct (customer, Beijing day) with a follow-up
    intervals: int = 0  # follow-ups with an earlier one of the same customer
    intervals_kept: int = 0  # of them, within FOLLOW_UP_INTERVAL_DAYS of it
    tasks_due: int = 0
    tasks_on_time: int = 0
    days_to_first_deal: list[float] = field(default_factory=list)

    def add(self, other: PersonTally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True)
class Headcount:
    """What per-head figures divide by: active reps and the period's days begun."""

    reps: int
    days: int


@dataclass(frozen=True)
class Measure:
    value: float | None
    base: int  # what the value stands on: customers, plans, people, tasks...


@dataclass(frozen=True)
class Kpi:
    key: str
    name: str
    unit: str  # ratio (0–1), days, customers
    definition: str
    # (everything in the group, what its active reps hold, headcount) -> measure
    measure: Callable[[PersonTally, PersonTally, Headcount], Measure]


def _ratio(part: int, whole: int) -> Measure:
    return Measure(part / whole if whole else None, whole)


def _per_head(amount: int, heads: int) -> Measure:
    return Measure(amount / heads if heads else None, heads)


KPIS: tuple[Kpi, ...] = (
    Kpi(
        "win_rate",
        "成单率",
        "ratio",
        "统计期内有了结果（进入成交或流失）的客户中成交的比例；期内先流失后成交的算成交",
        lambda t, r, h: _ratio(t.won, t.decided),
    ),
    Kpi(
        "follow_up_timeliness",
        "客户跟进及时率",
        "ratio",
        "计划跟进日（跟进记录里的下次跟进日期）在统计期内且已过去的计划中，"
        "到计划日结束前（北京时间）又有一次跟进的比例",
        lambda t, r, h: _ratio(t.plans_kept, t.plans_due),
    ),
    Kpi(
        "onboarding_days",
        "新人上手周期",
        "days",
        "首单落在统计期内的人：从加入系统到名下第一个客户进入成交的平均天数（加入时间未知的不计）",
        lambda t, r, h: Measure(
            statistics.fmean(t.days_to_first_deal) if t.days_to_first_deal else None,
            len(t.days_to_first_deal),
        ),
    ),
    Kpi(
        "profile_completeness",
        "客户资料完整度",
        "ratio",
        "统计期内新建客户的平均资料完整度（必填字段已填的比例，按资料现在的样子）",
        lambda t, r, h: Measure(
            t.completeness_points / 100 / t.new_profiles if t.new_profiles else None,
            t.new_profiles,
        ),
    ),
    Kpi(
        "customers_per_rep",
        "人均管理客户数",
        "customers",
        "此刻在职销售名下的客户数除以在职销售人数（客户归属没有历史，各统计期相同）",
        lambda t, r, h: _per_head(r.customers_held, h.reps),
    ),
    Kpi(
        "followed_customers_per_rep_day",
        "日均跟进客户数",
        "customers",
        "在职销售名下客户的跟进，按（客户，北京时间的日）去重，除以销售人数和统计期已开始的天数",
        lambda t, r, h: _per_head(r.followed_customer_days, h.reps * h.days),
    ),
    Kpi(
        "tasks_on_time_rate",
        "任务完成准时率",
        "ratio",
        "截止时间在统计期内且已过的待办中，在截止时间前完成的比例（按被指派的人）",
        lambda t, r, h: _ratio(t.tasks_on_time, t.tasks_due),
    ),
    Kpi(
        "follow_up_interval_rate",
        "回访间隔达标率",
        "ratio",
        f"统计期内的跟进中，距同一客户上一次跟进不超过 {FOLLOW_UP_INTERVAL_DAYS} 天的比例"
        "（客户的第一次跟进不计）",
        lambda t, r, h: _ratio(t.intervals_kept, t.intervals),
    ),
)


@dataclass
class KpiValue:
    key: str
    name: str
    unit: str
    value: float | None
    base: int
    definition: str


@dataclass
class Person:
    user_id: int
    name: str
    team_id: int | None
    is_active_rep: bool


@dataclass
class PersonTallies:
    """The raw counts of a period per holder, and the people they belong to."""

    by_holder: dict[Holder, PersonTally]
    people: list[Person]
    team_names: dict[int | None, str]
    days: int


@dataclass
class TeamKpis:
    team_id: int | None
    name: str | None
    kpis: list[KpiValue]


@dataclass
class RepKpis:
    user_id: int
    name: str
    team_id: int | None
    kpis: list[KpiValue]


@dataclass
class KpiReport:
    start: date
    end: date
    total: list[KpiValue]
    teams: list[TeamKpis]
    reps: list[RepKpis]


@dataclass
class QualityRow:
    user_id: int
    name: str
    team_id: int | None
    profiles: int
    average: float  # percent, one decimal
    is_eligible: bool


@dataclass
class DataQualityReport:
    month: str
    start: date
    end: date
    ranking: list[QualityRow]
    winner: QualityRow | None


def kpi_panel(
    session: Session, *, actor: Actor, period: Period, now: datetime, team_id: int | None = None
) -> KpiReport:
    """The eight KPIs of the actor's scope (one team's, if given) for a period."""
    tallies = person_tallies(session, actor=actor, period=period, now=now, team_id=team_id)
    active = {p.user_id for p in tallies.people if p.is_active_rep}

    def group(keys: list[Holder]) -> list[KpiValue]:
        whole, of_reps = PersonTally(), PersonTally()
        for key in keys:
            whole.add(tallies.by_holder[key])
            if key[1] in active:
                of_reps.add(tallies.by_holder[key])
        reps = len({key[1] for key in keys} & active)
        return measure(whole, of_reps, Headcount(reps, tallies.days))

    holders = list(tallies.by_holder)
    teams = sorted({team for team, _ in holders}, key=lambda t: (t is None, t or 0))
    return KpiReport(
        start=period.start,
        end=period.end,
        total=group(holders),
        teams=[
            TeamKpis(
                team, tallies.team_names.get(team), group([h for h in holders if h[0] == team])
            )
            for team in teams
        ],
        reps=[
            RepKpis(p.user_id, p.name, p.team_id, group([h for h in holders if h[1] == p.user_id]))
            for p in tallies.people
        ],
    )


def measure(whole: PersonTally, of_reps: PersonTally, headcount: Headcount) -> list[KpiValue]:
    """Every KPI of a group from its counts (`of_reps`: what its active reps hold)."""
    values = []
    for kpi in KPIS:
        result = kpi.measure(whole, of_reps, headcount)
        values.append(
            KpiValue(kpi.key, kpi.name, kpi.unit, result.value, result.base, kpi.definition)
        )
    return values


def person_tallies(
    session: Session, *, actor: Actor, period: Period, now: datetime, team_id: int | None = None
) -> PersonTallies:
    """The raw counts of a period per (team, person), for the actor's scope: the building block
    of the panel and of any per-rep score. Every active rep in scope has an entry."""
    customers, people = _conditions(session, actor=actor, team_id=team_id, refusal="KPI 看板")
    start_at, end_at = calendar.day_start(period.start), calendar.day_start(period.end)
    by_holder: defaultdict[Holder, PersonTally] = defaultdict(PersonTally)
    holder = (Customer.team_id, Customer.owner_id)

    for team, owner, count in session.execute(
        select(*holder, func.count()).where(*customers).group_by(*holder)
    ):
        by_holder[team, owner].customers_held += count

    change = StageChange
    in_period = (change.changed_at >= start_at, change.changed_at < end_at)
    outcomes = (
        select(
            *holder,
            func.max(case((change.to_stage == Stage.WON, 1), else_=0)).label("won"),
        )
        .select_from(change)
        .join(Customer, Customer.id == change.customer_id)
        .where(*customers, *in_period, change.to_stage.in_([Stage.WON, Stage.LOST]))
        .group_by(change.customer_id, *holder)
        .subquery()
    )
    for team, owner, decided, won in session.execute(
        select(
            outcomes.c.team_id, outcomes.c.owner_id, func.count(), func.sum(outcomes.c.won)
        ).group_by(outcomes.c.team_id, outcomes.c.owner_id)
    ):
        by_holder[team, owner].decided += decided
        by_holder[team, owner].won += won or 0

    for (team, owner), (profiles, points) in _new_profiles(session, customers, period).items():
        by_holder[team, owner].new_profiles += profiles
        by_holder[team, owner].completeness_points += points

    _count_follow_ups(session, customers, start_at, end_at, by_holder)
    _count_plans(session, customers, period, now, by_holder)

    task_holder = (User.team_id, Task.assignee_id)
    due_by = min(end_at, now)
    for team, assignee, due, on_time in session.execute(
        select(
            *task_holder,
            func.count(),
            func.sum(case((Task.done_at <= Task.due_at, 1), else_=0)),
        )
        .select_from(Task)
        .join(User, User.id == Task.assignee_id)
        .where(*people, Task.due_at >= start_at, Task.due_at < due_by)
        .group_by(*task_holder)
    ):
        by_holder[team, assignee].tasks_due += due
        by_holder[team, assignee].tasks_on_time += on_time or 0

    first_deal = func.min(change.changed_at)
    for team, owner, joined, first in session.execute(
        select(User.team_id, User.id, User.joined_at, first_deal)
        .select_from(change)
        .join(Customer, Customer.id == change.customer_id)
        .join(User, User.id == Customer.owner_id)
        .where(
            *customers,
            *people,
            User.joined_at.is_not(None),
            change.to_stage == Stage.WON,
            change.changed_at >= User.joined_at,
        )
        .group_by(User.team_id, User.id, User.joined_at)
        .having(first_deal >= start_at, first_deal < end_at)
    ):
        if joined is not None:  # always, by the WHERE clause; the column may be empty
            days = (first - joined).total_seconds() / SECONDS_PER_DAY
            by_holder[team, owner].days_to_first_deal.append(days)

    owners = [owner for _, owner in by_holder if owner is not None]
    people_rows = session.execute(
        select(User.id, User.name, User.team_id, User.role, User.is_active)
        .where(
            or_(
                User.id.in_(owners),
                and_(*people, User.role == Role.REP, User.is_active),
            )
        )
        .order_by(User.id)
    ).all()
    listed = [
        Person(i, name, team, role == Role.REP and bool(active))
        for i, name, team, role, active in people_rows
    ]
    for person in listed:  # every listed person has an entry, even with nothing to count
        by_holder.setdefault((person.team_id, person.user_id), PersonTally())
    team_ids = list({team for team, _ in by_holder})
    team_names: dict[int | None, str] = dict(
        session.execute(select(Team.id, Team.name).where(Team.id.in_(team_ids))).all()
    )
    today = calendar.local_date(now)
    begun = (min(period.end, today + timedelta(days=1)) - period.start).days
    return PersonTallies(dict(by_holder), listed, team_names, max(begun, 0))


def data_quality(
    session: Session, *, actor: Actor, month: date, team_id: int | None = None
) -> DataQualityReport:
    """The 数据质量奖 ranking of a calendar month (`month`: any day in it) and its winner."""
    customers, _ = _conditions(session, actor=actor, team_id=team_id, refusal="数据质量排行")
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    period = Period.of(first, following)
    profiles = {
        owner: counts
        for (_, owner), counts in _new_profiles(session, customers, period).items()
        if owner is not None
    }
    people = session.execute(
        select(User.id, User.name, User.team_id).where(User.id.in_(list(profiles)))
    ).all()
    rows = [
        QualityRow(
            user_id=i,
            name=name,
            team_id=team,
            profiles=profiles[i][0],
            average=round(profiles[i][1] / profiles[i][0], 1),
            is_eligible=profiles[i][0] >= MIN_PROFILES_FOR_AWARD,
        )
        for i, name, team in people
    ]
    rows.sort(key=lambda r: (-r.average, -r.profiles, r.user_id))
    return DataQualityReport(
        month=first.strftime("%Y-%m"),
        start=period.start,
        end=period.end,
        ranking=rows,
        winner=next((r for r in rows if r.is_eligible), None),
    )


def _conditions(
    session: Session, *, actor: Actor, team_id: int | None, refusal: str
) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]]]:
    """The customers' and the people's WHERE clauses for the actor (and one team)."""
    customers = scopes.team_conditions(session, actor=actor, team_id=team_id, view=refusal)
    people = [user_scope(actor)]
    if team_id is not None:
        people.append(User.team_id == team_id)
    return customers, people


def _new_profiles(
    session: Session, customers: list[ColumnElement[bool]], period: Period
) -> dict[Holder, tuple[int, int]]:
    """Customers created in the period per holder: how many, and their completeness summed.
    A customer's creation is its first stage record (from no stage), indexed by time."""
    change = StageChange
    rows = session.execute(
        select(Customer.team_id, Customer.owner_id, func.count(), func.sum(Customer.completeness))
        .select_from(change)
        .join(Customer, Customer.id == change.customer_id)
        .where(
            *customers,
            change.changed_at >= calendar.day_start(period.start),
            change.changed_at < calendar.day_start(period.end),
            change.from_stage.is_(None),
        )
        .group_by(Customer.team_id, Customer.owner_id)
    )
    return {(team, owner): (count, int(points or 0)) for team, owner, count, points in rows}


def _count_follow_ups(
    session: Session,
    customers: list[ColumnElement[bool]],
    start_at: datetime,
    end_at: datetime,
    by_holder: defaultdict[Holder, PersonTally],
) -> None:
    """The period's follow-ups, each with the same customer's previous one: customer-days
    followed and intervals kept. One row per follow-up of the period."""
    earlier = aliased(FollowUp)
    previous = (
        select(func.max(earlier.happened_at))
        .where(
            earlier.customer_id == FollowUp.customer_id,
            earlier.happened_at < FollowUp.happened_at,
            earlier.withdrawn_at.is_(None),
        )
        .scalar_subquery()
    )
    rows = session.execute(
        select(Customer.team_id, Customer.owner_id, FollowUp.customer_id, FollowUp.happened_at)
        .add_columns(previous)
        .select_from(FollowUp)
        .join(Customer, Customer.id == FollowUp.customer_id)
        .where(
            *customers,
            FollowUp.happened_at >= start_at,
            FollowUp.happened_at < end_at,
            FollowUp.withdrawn_at.is_(None),
        )
    )
    days: defaultdict[Holder, set[tuple[int, date]]] = defaultdict(set)
    limit = timedelta(days=FOLLOW_UP_INTERVAL_DAYS)
    for team, owner, customer_id, happened, before in rows:
        days[team, owner].add((customer_id, calendar.local_date(happened)))
        if before is not None:
            by_holder[team, owner].intervals += 1
            by_holder[team, owner].intervals_kept += happened - before <= limit
    for key, seen in days.items():
        by_holder[key].followed_customer_days += len(seen)


def _count_plans(
    session: Session,
    customers: list[ColumnElement[bool]],
    period: Period,
    now: datetime,
    by_holder: defaultdict[Holder, PersonTally],
) -> None:
    """Plans due on the period's past days, each with the next follow-up after it was made."""
    later = aliased(FollowUp)
    following = (
        select(func.min(later.happened_at))
        .where(
            later.customer_id == FollowUp.customer_id,
            later.happened_at > FollowUp.happened_at,
            later.withdrawn_at.is_(None),
        )
        .scalar_subquery()
    )
    judged_until = min(period.end, calendar.local_date(now))  # today is not over yet
    rows = session.execute(
        select(Customer.team_id, Customer.owner_id, FollowUp.next_follow_up_on)
        .add_columns(following)
        .select_from(FollowUp)
        .join(Customer, Customer.id == FollowUp.customer_id)
        .where(
            *customers,
            FollowUp.next_follow_up_on >= period.start,
            FollowUp.next_follow_up_on < judged_until,
            FollowUp.withdrawn_at.is_(None),
        )
    )
    for team, owner, planned, next_at in rows:
        by_holder[team, owner].plans_due += 1
        by_holder[team, owner].plans_kept += (
            next_at is not None and calendar.local_date(next_at) <= planned
        )
