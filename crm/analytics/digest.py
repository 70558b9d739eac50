"""The morning digest (每日晨报): what the boss (the company) and each manager (their team) read
in WeCom at the configured time (`WECRM_DIGEST_TIME`, Beijing time).

The decisions:

- Due: once the Beijing time of day reaches the configured time, and until the day ends; a
  digest not sent at 08:00 (workers down) goes out when they are back, the same day only.
- Once per recipient per day: both messages carry a dedupe key of the day and the recipient
  (the outbox's unique index), so a scheduler that fires twice, or two workers, queue nothing
  more. `recipients_due` skips those already served before any chart is drawn.
- Yesterday: the Beijing day before the digest's. New customers are first stage records (every
  new customer has one), stage moves the other records, the won amount is the customers who
  moved into 成交, at their `expected_amount` — the forecast's definition of revenue. Follow-ups
  by `happened_at`. All from the indexed `changed_at` / `happened_at`, two aggregates.
- The funnel over the last `FUNNEL_DAYS` days (one day has too few moves to convert), with its
  weakest step, from crm/analytics/funnel.py; the forecast from forecast.py without its
  back-test (the digest needs this month and the next, quickly).
- At risk: customers in 报价 with no follow-up for `AT_RISK_AFTER_DAYS` days (none at all: since
  they entered 报价), most neglected first; the card names the first `AT_RISK_SHOWN`.
- Scope as the funnel's (crm/analytics/scopes.py): the boss everyone, a manager their team.

The picture is drawn at the edge (workers/digest.py with charts/): this module hands over
numbers and queues the messages; the image's FileStore key comes back in from the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from crm import calendar, notifications
from crm.actors import Actor
from crm.analytics import forecast, funnel, scopes
from crm.vocab import Stage
from models import Customer, FollowUp, OutboxMessage, StageChange, Team, User
from models.users import Role

FUNNEL_DAYS = 30
AT_RISK_AFTER_DAYS = 7
AT_RISK_SHOWN = 5
VIEW = "每日晨报"

# The card's words.
TITLE = "每日晨报 {day:%-m月%-d日} · {scope}"
COMPANY_SCOPE = "全公司"
YESTERDAY_LINE = (
    "昨日：新客户 {new} 位，跟进 {follow_ups} 次，阶段变化 {moves} 次，成交 {won} 单 ¥{amount:,.0f}"
)
WEAKEST_LINE = "最弱环节（近 {days} 天）：{from_stage}→{to_stage} 转化 {rate:.0%}"
NO_WEAKEST_LINE = "最弱环节（近 {days} 天）：样本不足，暂不判断"
FORECAST_LINE = "业绩预测 P50：本月剩余 ¥{this:,.0f}，下月 ¥{next:,.0f}（P10–P90 见图）"
AT_RISK_LINE = "风险客户：{count} 位报价后 {days} 天以上未跟进"
AT_RISK_NONE_LINE = "风险客户：无（报价后 {days} 天内都有跟进）"
AT_RISK_ITEM = "{name}（{days} 天）"
FUNNEL_CHART_TITLE = "销售漏斗：近 {days} 天进入各阶段的客户数和转化率"
FORECAST_CHART_TITLE = "业绩预测（元）"
THIS_MONTH_LABEL = "本月剩余"
NEXT_MONTH_LABEL = "下月"


@dataclass(frozen=True)
class Yesterday:
    day: date
    new_customers: int
    follow_ups: int
    stage_moves: int
    won_deals: int
    won_amount: float


@dataclass(frozen=True)
class AtRisk:
    customer_id: int
    name: str
    days_without_follow_up: int


@dataclass
class Digest:
    """One recipient's digest: numbers only; the edge draws the picture."""

    recipient_id: int
    day: date  # the digest's own Beijing day (it reports the day before)
    scope: str
    yesterday: Yesterday
    funnel: funnel.Figures
    forecast: forecast.Forecast
    at_risk: list[AtRisk]
    at_risk_total: int


def is_due(now: datetime, at: time) -> bool:
    """Whether today's digest may go out: the Beijing time of day has reached `at`."""
    return now.astimezone(calendar.BUSINESS_TZ).time() >= at


def recipients_due(session: Session, *, now: datetime) -> list[int]:
    """Ids of the boss and the managers (active, on WeCom) not yet served today's digest."""
    day = calendar.local_date(now)
    users = session.execute(
        select(User.id)
        .where(
            User.role.in_((Role.BOSS, Role.MANAGER)),
            User.is_active.is_(True),
            User.wecom_userid.is_not(None),
        )
        .order_by(User.id)
    ).scalars()
    wanted = {user_id: _card_key(day, user_id) for user_id in users}
    served = set(
        session.scalars(
            select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(wanted.values()))
        )
    )
    return [user_id for user_id, key in wanted.items() if key not in served]


def build(session: Session, *, recipient_id: int, now: datetime) -> Digest:
    """The digest of the recipient's scope as of `now`."""
    user = session.get(User, recipient_id)
    if user is None:
        raise LookupError(f"user {recipient_id} does not exist")
    actor = Actor.of(user)
    conditions = scopes.team_conditions(session, actor=actor, team_id=None, view=VIEW)
    today = calendar.local_date(now)
    at_risk, at_risk_total = _at_risk(session, conditions, now)
    team = session.get(Team, user.team_id) if actor.role is Role.MANAGER and user.team_id else None
    return Digest(
        recipient_id=recipient_id,
        day=today,
        scope=team.name if team is not None else COMPANY_SCOPE,
        yesterday=_yesterday(session, conditions, today - timedelta(days=1)),
        funnel=funnel.team_funnel(
            session,
            actor=actor,
            period=funnel.Period.of(today - timedelta(days=FUNNEL_DAYS), today),
        ).total,
        forecast=forecast.revenue_forecast(session, actor=actor, now=now, backtest_months=0),
        at_risk=at_risk,
        at_risk_total=at_risk_total,
    )


def queue(
    session: Session, *, digest: Digest, image_key: str, now: datetime
) -> list[OutboxMessage]:
    """Queue the picture and the card to the digest's recipient, unless today's are queued."""
    recipient = session.get(User, digest.recipient_id)
    assert recipient is not None  # `build` found them in this transaction's caller
    title, text = card(digest)
    return [
        *notifications.notify(
            session,
            recipients=[recipient],
            title=title,
            text="",
            now=now,
            image_key=image_key,
            dedupe_key=f"digest:{digest.day.isoformat()}:image",
        ),
        *notifications.notify(
            session,
            recipients=[recipient],
            title=title,
            text=text,
            now=now,
            dedupe_key=f"digest:{digest.day.isoformat()}:card",
        ),
    ]


def card(digest: Digest) -> tuple[str, str]:
    """The text card's title and description."""
    y = digest.yesterday
    lines = [
        YESTERDAY_LINE.format(
            new=y.new_customers,
            follow_ups=y.follow_ups,
            moves=y.stage_moves,
            won=y.won_deals,
            amount=y.won_amount,
        )
    ]
    weakest = digest.funnel.weakest_step
    if weakest is not None and weakest.rate is not None:
        lines.append(
            WEAKEST_LINE.format(
                days=FUNNEL_DAYS,
                from_stage=weakest.from_stage,
                to_stage=weakest.to_stage,
                rate=weakest.rate,
            )
        )
    else:
        lines.append(NO_WEAKEST_LINE.format(days=FUNNEL_DAYS))
    lines.append(
        FORECAST_LINE.format(
            this=digest.forecast.this_month_remaining.revenue.p50,
            next=digest.forecast.next_month.revenue.p50,
        )
    )
    if digest.at_risk_total:
        names = "、".join(
            AT_RISK_ITEM.format(name=c.name, days=c.days_without_follow_up) for c in digest.at_risk
        )
        count_line = AT_RISK_LINE.format(count=digest.at_risk_total, days=AT_RISK_AFTER_DAYS)
        lines.append(f"{count_line}：{names}")
    else:
        lines.append(AT_RISK_NONE_LINE.format(days=AT_RISK_AFTER_DAYS))
    return TITLE.format(day=digest.day, scope=digest.scope), "\n".join(lines)


def _card_key(day: date, user_id: int) -> str:
    # notify() appends the recipient's id to the key it is given.
    return f"digest:{day.isoformat()}:card:{user_id}"


def _yesterday(session: Session, conditions: list[ColumnElement[bool]], day: date) -> Yesterday:
    start = calendar.day_start(day)
    end = start + timedelta(days=1)
    is_new = StageChange.from_stage.is_(None)
    is_won = StageChange.to_stage == Stage.WON
    new, moves, won, amount = session.execute(
        select(
            func.count(case((is_new, 1))),
            func.count(case((~is_new, 1))),
            func.count(case((is_won, 1))),
            func.sum(case((is_won, Customer.expected_amount))),
        )
        .join(Customer, Customer.id == StageChange.customer_id)
        .where(*conditions, StageChange.changed_at >= start, StageChange.changed_at < end)
    ).one()
    follow_ups = session.scalar(
        select(func.count())
        .select_from(FollowUp)
        .join(Customer, Customer.id == FollowUp.customer_id)
        .where(*conditions, FollowUp.happened_at >= start, FollowUp.happened_at < end)
    )
    return Yesterday(
        day=day,
        new_customers=new,
        follow_ups=follow_ups or 0,
        stage_moves=moves,
        won_deals=won,
        won_amount=float(amount or Decimal(0)),
    )


def _at_risk(
    session: Session, conditions: list[ColumnElement[bool]], now: datetime
) -> tuple[list[AtRisk], int]:
    cutoff = now - timedelta(days=AT_RISK_AFTER_DAYS)
    # The later of the last follow-up and the entry into 报价 (a NULL follow-up compares false).
    last_touch = case(
        (Customer.last_follow_up_at > Customer.stage_entered_at, Customer.last_follow_up_at),
        else_=Customer.stage_entered_at,
    )
    risky = [*conditions, Customer.stage == Stage.QUOTE, last_touch < cutoff]
    total = session.scalar(select(func.count()).select_from(Customer).where(*risky)) or 0
    rows = session.execute(
        select(Customer.id, Customer.name, last_touch)
        .where(*risky)
        .order_by(last_touch, Customer.id)
        .limit(AT_RISK_SHOWN)
    ).all()
    return [AtRisk(id_, name, (now - touched).days) for id_, name, touched in rows], total
