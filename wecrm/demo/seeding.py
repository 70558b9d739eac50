"""Writing the demo's sample company (`synthetic.sample`) into an empty database.

People and teams arrive the way `wecrm sync-users` brings them in from WeCom, custom fields and
the season's grading through the domain's services, orders through the real approval flow, and
the volume rows (customers, follow-ups, stage history, tasks, pool releases, audit trail) in
bulk from `synthetic.rows`, as the planner derived them from the product's rules.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from config.settings import DEFAULT_MAX_ATTACHMENT_BYTES
from crm import completeness, custom_fields, emails, orders, similar, users
from crm.actors import Actor
from crm.followups import Upload
from crm.notifications import OutboxStatus
from crm.rules import publisher
from crm.storage import FileStore
from crm.vocab import Stage
from models import Base, Customer, OutboxMessage, Team, User
from models.users import Role
from synthetic.directory import wecom_directory
from synthetic.rows import HISTORY_TABLES, Ids, customer_row, history_rows
from synthetic.rules import local_date
from synthetic.sample import COMPANY_NAME, GRADING, SAMPLE_ORG, plan_customers
from wecrm.demo.brochure import BROCHURE_FILENAME, brochure_pdf

CUSTOM_FIELDS_ADDED_DAYS_AGO = 150
GRADING_PUBLISHED_DAYS_AGO = 30
SEED_NOTE = "演示数据"  # ends the reason of every audit entry the seed writes


@dataclass
class DemoCompany:
    """What `seed_company` wrote, and the WeCom directory holding the same people."""

    name: str
    boss: User
    teams: list[Team]
    managers: list[User]
    reps: list[User]
    customer_count: int
    follow_up_count: int
    stage_change_count: int
    task_count: int
    order_count: int
    departments: list[dict[str, Any]]
    wecom_users: list[dict[str, Any]]

    @property
    def everyone(self) -> list[User]:
        return [self.boss, *self.managers, *self.reps]


def seed_company(
    session: Session, *, now: datetime, customer_count: int = 1200, rng_seed: int = 7
) -> DemoCompany:
    """Write the sample company into an empty database; flushes, the caller commits."""
    if session.scalar(select(func.count()).select_from(User)):
        raise ValueError("seed_company needs a database without people")
    departments, members = wecom_directory(SAMPLE_ORG)
    users.sync_directory(session, departments=departments, members=members, now=now)
    people = {u.wecom_userid: u for u in session.scalars(select(User))}
    for person in SAMPLE_ORG.people:  # joined before the history they made (新人上手周期)
        people[person.userid].joined_at = now - timedelta(days=person.joined_days_ago)
    team_of_department = {t.wecom_department_id: t for t in session.scalars(select(Team))}
    teams = [team_of_department[t.department_id] for t in SAMPLE_ORG.teams]
    ids = Ids(users={key: user.id for key, user in people.items()}, teams=[t.id for t in teams])
    boss = people[SAMPLE_ORG.boss.userid]
    for spec in SAMPLE_ORG.fields:
        custom_fields.define_field(
            session,
            actor=Actor.of(boss),
            key=spec.key,
            label=spec.label,
            kind=spec.kind,
            options=list(spec.options),
            is_required=spec.is_required,
            is_tag_dimension=spec.is_tag_dimension,
            now=now - timedelta(days=CUSTOM_FIELDS_ADDED_DAYS_AGO),
        )
    definitions = custom_fields.active_fields(session)
    required_keys = completeness.required_custom_keys(session)

    plans = plan_customers(now=now, customer_count=customer_count, rng_seed=rng_seed)
    customers = []
    for plan in plans:
        plan.custom_values = custom_fields.clean_values(definitions, plan.custom_values)
        customers.append(Customer(**customer_row(plan, ids=ids, required_keys=required_keys)))
    session.add_all(customers)
    session.flush()  # one multi-row INSERT ... RETURNING per batch gives the ids

    history: dict[str, list[dict[str, Any]]] = {name: [] for name in HISTORY_TABLES}
    for plan, customer in zip(plans, customers, strict=True):
        rows = history_rows(plan, customer.id, ids=ids, now=now, audit_note=SEED_NOTE)
        for name in HISTORY_TABLES:
            history[name] += rows[name]
    for name in HISTORY_TABLES:
        if history[name]:
            # A Core executemany on the table: the ORM's bulk path splits these rows into
            # thousands of single INSERTs on SQLite.
            session.execute(insert(Base.metadata.tables[name]), history[name])
    session.flush()
    similar.reindex(session, now=now)  # the rows came in bulk, past crm/followups.py
    _publish_grading(session, boss, now)
    order_count = seed_orders(session, boss=boss, now=now, rng_seed=rng_seed)
    return DemoCompany(
        name=COMPANY_NAME,
        boss=boss,
        teams=teams,
        managers=[people[p.userid] for p in SAMPLE_ORG.people if p.role is Role.MANAGER],
        reps=[people[p.userid] for p in SAMPLE_ORG.reps],
        customer_count=len(customers),
        follow_up_count=len(history["follow_ups"]),
        stage_change_count=len(history["stage_changes"]),
        task_count=len(history["tasks"]),
        order_count=order_count,
        departments=departments,
        wecom_users=members,
    )


def _publish_grading(session: Session, boss: User, now: datetime) -> None:
    """The season's grading, published a month ago: it re-grades nobody, since the planner
    graded every customer with the same rules."""
    actor = Actor.of(boss)
    published_at = now - timedelta(days=GRADING_PUBLISHED_DAYS_AGO)
    draft = publisher.create_draft(
        session,
        actor=actor,
        kind="grading",
        document=GRADING,
        note="淡季：展会客户升B类",
        now=published_at,
    )
    publisher.publish(
        session, actor=actor, draft_id=draft.id, reason="淡季主推展会客户", now=published_at
    )


# --- orders ------------------------------------------------------------------------------------

ORDER_COUNT = 30
ORDER_HISTORY_DAYS = 60
# Most orders went through; some wait for a decision; a few were turned down or went through
# the emergency lane (#加急#), some of those still waiting for the warehouse.
ORDER_FATES = (
    ("approved", 17),
    ("waiting", 5),
    ("rejected", 3),
    ("expedited", 3),
    ("expedited_waiting", 2),
)
EXPEDITE_REASONS = (
    "客户工地周五开工",
    "客户工地周五开工",
    "月底前要货，客户催得紧",
    "老客户加单，急需排期",
    "展会样品急用",
)
REJECT_COMMENTS = ("价格低于公司底价，请重新报价", "客户尚有货款未结清，先催款")
STILL_WAITING_HOURS = 20  # waiting orders came in during the last day; their cards go out now


def seed_orders(session: Session, *, boss: User, now: datetime, rng_seed: int) -> int:
    """About 30 orders of quoting and won customers across the teams, taken through the real
    approval services (flow, create, decide, expedite); returns how many."""
    rng = random.Random(rng_seed)
    flow_set_at = now - timedelta(days=ORDER_HISTORY_DAYS + 1)
    orders.set_flow(session, actor=Actor.of(boss), nodes=list(orders.DEFAULT_FLOW), now=flow_set_at)
    customers = session.scalars(
        select(Customer)
        .where(Customer.owner_id.is_not(None), Customer.stage.in_((Stage.QUOTE, Stage.WON)))
        .order_by(Customer.id)
    ).all()
    fates = [fate for fate, count in ORDER_FATES for _ in range(count)]
    rng.shuffle(fates)
    picked = rng.sample(list(customers), min(len(fates), len(customers)))
    people = {u.id: u for u in session.scalars(select(User))}
    managers = {u.team_id: u for u in people.values() if u.role == Role.MANAGER}
    plans = []
    for customer, fate in zip(picked, fates, strict=False):
        waiting = fate.endswith("waiting")
        hours_ago = rng.randint(1, STILL_WAITING_HOURS) if waiting else rng.randint(72, 24 * 60)
        plans.append((now - timedelta(hours=hours_ago, minutes=rng.randint(0, 59)), customer, fate))
    plans.sort(key=lambda plan: plan[0])
    per_day: dict[date, int] = {}
    for created_at, customer, fate in plans:
        day = local_date(created_at)
        per_day[day] = per_day.get(day, 0) + 1
        amount = customer.expected_amount or Decimal(rng.randrange(20, 600) * 500)
        assert customer.owner_id is not None  # picked among owned customers
        owner = Actor.of(people[customer.owner_id])
        order = orders.create_order(
            session,
            actor=owner,
            number=f"SO-{day:%Y%m%d}-{per_day[day]:03d}",
            customer_id=customer.id,
            amount=amount,
            now=created_at,
        )
        manager, chief = Actor.of(managers[customer.team_id]), Actor.of(boss)
        at = created_at + timedelta(hours=rng.randint(1, 5))
        decisions: list[tuple[Actor, bool, str | None]]
        if fate.startswith("expedited"):
            by = chief if rng.random() < 0.25 else manager
            reason = rng.choice(EXPEDITE_REASONS)
            orders.expedite(session, actor=by, number=order.number, reason=reason, now=at)
            decisions = [] if fate == "expedited_waiting" else [(chief, True, None)]
        elif fate == "approved":
            decisions = [(manager, True, None), (chief, True, None), (chief, True, "已排期")]
        elif fate == "rejected":
            decisions = [(manager, True, None), (chief, False, rng.choice(REJECT_COMMENTS))]
        else:  # waiting: the manager has approved, 财务审核 has not yet
            decisions = [(manager, True, None)]
        for decider, approve, comment in decisions:
            at = min(at + timedelta(hours=rng.randint(2, 30)), now)
            orders.decide(
                session, actor=decider, order_id=order.id, approve=approve, comment=comment, now=at
            )
    # What happened more than a day ago reached WeCom back then; the rest goes out at start.
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.created_at < now - timedelta(hours=STILL_WAITING_HOURS + 4))
        .values(status=OutboxStatus.SENT, sent_at=OutboxMessage.created_at)
    )
    session.flush()
    return len(plans)


# --- email templates ---------------------------------------------------------------------------

EMAIL_TEMPLATES = (
    (
        "产品手册",
        "{客户}您好：{公司}瓷砖卫浴产品手册",
        "{客户}您好：\n\n感谢您对{公司}的关注！附件是我们 2026 年的瓷砖、卫浴产品手册，"
        "含仿古砖、岩板、智能坐便器等主推系列和工程案例。\n\n"
        "如需样品或上门量房，随时联系我。\n\n{销售}\n手机：{销售手机}\n邮箱：{销售邮箱}\n{公司}",
        True,
    ),
    (
        "报价跟进",
        "关于{客户公司}的报价，{销售}跟您确认一下",
        "{客户}您好：\n\n前几天发给您的报价不知道看过没有？如果对规格、价格或交期有疑问，"
        "我可以带样品过来当面沟通。\n\n{销售} {销售手机}\n{公司}",
        False,
    ),
)


def seed_email_templates(
    session: Session, *, author: User, store: FileStore, now: datetime
) -> None:
    """The company's templates (the boss keeps them): a brochure email with its PDF, and a quote
    follow-up."""
    actor = Actor.of(author)
    for name, subject, body, with_brochure in EMAIL_TEMPLATES:
        template = emails.create_template(
            session, actor=actor, name=name, subject=subject, body=body, now=now
        )
        if with_brochure:
            emails.add_attachments(
                session,
                actor=actor,
                template_id=template.id,
                uploads=[Upload(BROCHURE_FILENAME, brochure_pdf())],
                store=store,
                max_attachment_bytes=DEFAULT_MAX_ATTACHMENT_BYTES,
                now=now,
            )
