"""The demo's sample company, planned: a tile and bathroom distributor (瓷砖/卫浴) in Hunan.

Shaped like the seed article's customer: a boss, three area teams of a manager and five reps,
~1,200 customers over twelve counties with sixteen months of follow-ups, walked through the funnel
one customer at a time. Grades come from the season's grading rules (`GRADING`) through the
real engine, quiet customers are released as the default pool timer does, days are business
days (`synthetic.rules`). `wecrm.demo.seeding` writes the plan; `synthetic.book` is the
benchmarks' larger, plainer company.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from crm.vocab import OPEN_STAGES, Category, ContactMethod, NeedMatch, Source, Stage
from models.users import Role
from synthetic.plans import (
    POSITIONS,
    FieldPlan,
    Org,
    PersonPlan,
    PlannedCustomer,
    PlannedFollowUp,
    PlannedMove,
    PlannedTask,
    TeamPlan,
)
from synthetic.rules import BUSINESS_TZ, Grader, default_pool_release, local_date
from synthetic.sample_words import (
    BATHROOM_WARES,
    COMPANY_WORDS,
    EMAIL,
    FIRST_CONTACT_TEXTS,
    GIVEN_NAMES,
    MOBILE_PREFIXES,
    MOVE_FOLLOW_UPS,
    NEXT_PLANS,
    PHONE,
    PROJECT_COMPANY_KINDS,
    PROJECT_PROJECTS,
    REGULAR_FOLLOW_UPS,
    RETAIL_COMPANY_KINDS,
    RETAIL_PROJECTS,
    RIVALS,
    SURNAMES,
    TAGS,
    TILES,
    VISIT,
    VOICE,
    WECHAT,
    WECOM_CHAT,
)

# --- the company -------------------------------------------------------------------------------

COMPANY_NAME = "湖南湘瓷建材有限公司"
EMAIL_DOMAIN = "xiangci.example.com"
CUSTOMER_EMAIL_DOMAIN = "example.com"
HISTORY_DAYS = 487  # sixteen months: the forecast back-tests on a year of them


def _person(
    userid: str, name: str, role: Role, team: int | None, mobile: str, joined_days_ago: int = 720
) -> PersonPlan:
    return PersonPlan(
        userid=userid,
        name=name,
        role=role,
        team=team,
        mobile=mobile,
        position=POSITIONS[role],
        email=f"{userid}@{EMAIL_DOMAIN}",
        joined_days_ago=joined_days_ago,
    )


SAMPLE_ORG = Org(
    name=COMPANY_NAME,
    # Real counties and county-level cities of Hunan.
    teams=(
        TeamPlan("长沙片区", 2, ("长沙县", "浏阳市", "宁乡市", "望城区")),
        TeamPlan("株洲片区", 3, ("醴陵市", "攸县", "茶陵县", "渌口区")),
        TeamPlan("湘潭片区", 4, ("湘潭县", "湘乡市", "韶山市", "雨湖区")),
    ),
    people=(
        _person("zhoujianhua", "周建华", Role.BOSS, None, "13907310018"),
        _person("liuhaitao", "刘海涛", Role.MANAGER, 0, "13807312266"),
        _person("zhangwei", "张伟", Role.REP, 0, "13975102231"),
        _person("lina", "李娜", Role.REP, 0, "15874023317"),
        _person("wanglei", "王磊", Role.REP, 0, "18673145520"),
        _person("chenjing", "陈静", Role.REP, 0, "13548761092"),
        _person("yangfan", "杨帆", Role.REP, 0, "17788914436"),
        _person("zhaozhigang", "赵志刚", Role.MANAGER, 1, "13787330417"),
        _person("huangli", "黄丽", Role.REP, 1, "15173352208"),
        _person("wuqiang", "吴强", Role.REP, 1, "18711623349"),
        _person("xuting", "徐婷", Role.REP, 1, "13337331875"),
        _person("sunhao", "孙浩", Role.REP, 1, "19973306152"),
        _person("humin", "胡敏", Role.REP, 1, "15367429980"),
        _person("tanweidong", "谭卫东", Role.MANAGER, 2, "13973227761"),
        _person("pengliang", "彭亮", Role.REP, 2, "18874015563"),
        _person("dengfang", "邓芳", Role.REP, 2, "15211374420"),
        _person("zengyong", "曾勇", Role.REP, 2, "13607329184"),
        _person("luoxue", "罗雪", Role.REP, 2, "17373251067"),
        # The newcomer: joined six weeks ago, so "新人上手周期" has someone to measure.
        _person("jiangpeng", "蒋鹏", Role.REP, 2, "18175280933", joined_days_ago=42),
    ),
    # Added at a monthly review (流程复盘会) after reps asked for finer need tags, as in the seed.
    fields=(
        FieldPlan(
            "needs_install", "是否需要安装服务", "bool", is_required=True, is_tag_dimension=True
        ),
        FieldPlan("met_competitor", "是否有竞品接触", "bool", is_tag_dimension=True),
        FieldPlan("floor_area_sqm", "装修面积（平方米）", "number"),
        FieldPlan(
            "project_type",
            "项目类型",
            "enum",
            options=("新房装修", "旧房改造", "商业空间", "工程项目"),
            is_tag_dimension=True,
        ),
    ),
)

# The season's grading as the boss published it a month ago: the default pack's A rule, then
# "参加过线下展会 → B", then 需求匹配度低 → D, else C. The planner grades every customer with it
# through the real engine, so the publish finds nothing to change.
GRADING: dict[str, Any] = {
    "rules": [
        *DEFAULT_DOCUMENTS["grading"]["rules"],
        {
            "name": "参加过线下展会",
            "when": {"fact": "attended_expo", "op": "==", "value": True},
            "grade": "B",
        },
        {
            "name": "需求匹配度低",
            "when": {"fact": "need_match", "op": "==", "value": NeedMatch.LOW.value},
            "grade": "D",
        },
    ],
    "default": "C",
}

# --- the customers, planned without a database -------------------------------------------------

# Where a customer goes from each stage, as relative weights. Open stages always end in a move
# (a lead nobody wants is lost, not kept forever); 成交 and 流失 usually stay (STAY_CHANCE). With
# the dwell times this makes a funnel like the seed's: ~70% of leads show interest, 报价→成交
# converts at 38–52%, and a deal takes one to three months (projects half as long again).
STAGE_MOVES: dict[Stage, tuple[tuple[Stage, float], ...]] = {
    Stage.LEAD: ((Stage.INTEREST, 0.75), (Stage.LOST, 0.25)),
    Stage.INTEREST: ((Stage.QUOTE, 0.68), (Stage.LOST, 0.26), (Stage.LEAD, 0.06)),
    Stage.QUOTE: ((Stage.WON, 0.60), (Stage.LOST, 0.32), (Stage.INTEREST, 0.08)),
    Stage.WON: ((Stage.LOST, 1.0),),
    Stage.LOST: ((Stage.LEAD, 1.0),),
}
STAY_CHANCE = {Stage.WON: 0.97, Stage.LOST: 0.94}
DWELL_DAYS: dict[Stage, tuple[int, int]] = {
    Stage.LEAD: (3, 60),
    Stage.INTEREST: (5, 50),
    Stage.QUOTE: (4, 35),
    Stage.WON: (10, 40),
    Stage.LOST: (25, 70),
}
PROJECT_DWELL_FACTOR = 1.5
FOLLOW_UP_GAP_DAYS: dict[Stage, tuple[int, int]] = {
    Stage.LEAD: (3, 9),
    Stage.INTEREST: (2, 7),
    Stage.QUOTE: (2, 5),
    Stage.WON: (4, 12),
    Stage.LOST: (30, 60),
}
FORWARD_MOVES = frozenset(
    {(Stage.LEAD, Stage.INTEREST), (Stage.INTEREST, Stage.QUOTE), (Stage.QUOTE, Stage.WON)}
)
MAX_MOVES = 8
POOL_RELEASE = default_pool_release()
LOST_RELEASE_REASON = "流失客户转入公海，供其他销售再次跟进"
SOURCE_WEIGHTS = {
    Category.PROJECT: {
        Source.BIDDING: 20,
        Source.PARTNER: 18,
        Source.REFERRAL: 15,
        Source.EXPO: 15,
        Source.COLD_CALL: 15,
        Source.ONLINE_AD: 7,
        Source.WECOM: 5,
        Source.WALK_IN: 5,
    },
    Category.RETAIL: {
        Source.WALK_IN: 25,
        Source.ONLINE_AD: 22,
        Source.REFERRAL: 18,
        Source.WECOM: 15,
        Source.EXPO: 8,
        Source.PARTNER: 6,
        Source.COLD_CALL: 4,
        Source.BIDDING: 2,
    },
}
FIRST_CONTACT = {
    Source.ONLINE_AD: (PHONE, WECHAT),
    Source.REFERRAL: (WECHAT, PHONE),
    Source.EXPO: (VISIT, WECHAT),
    Source.COLD_CALL: (PHONE,),
    Source.WALK_IN: (VISIT,),
    Source.WECOM: (WECOM_CHAT,),
    Source.PARTNER: (PHONE, WECHAT, EMAIL),
    Source.BIDDING: (EMAIL, VISIT),
}
_GRADER = Grader(GRADING)
# Owned customers a rep has added in WeCom, beyond those who came in through WeCom.
WORKED_CONTACT_SHARE = 0.7
NEW_CONTACT_SHARE = 0.3


def plan_customers(*, now: datetime, customer_count: int, rng_seed: int) -> list[PlannedCustomer]:
    """The sample customers and their histories, oldest first; the same seed gives the same plan."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rng = random.Random(rng_seed)
    reps = SAMPLE_ORG.reps
    # Reps differ: some close more (skill), some follow up more often (diligence).
    skill = {p.userid: rng.uniform(0.8, 1.2) for p in reps}
    diligence = {p.userid: rng.uniform(0.75, 1.3) for p in reps}
    weights = [0.35 if p.joined_days_ago < HISTORY_DAYS else rng.uniform(0.85, 1.15) for p in reps]
    phones = {p.mobile for p in SAMPLE_ORG.people}
    companies: set[str] = set()
    external_ids: set[str] = set()
    plans = []
    for _ in range(customer_count):
        rep = rng.choices(reps, weights)[0]
        plans.append(
            _plan_customer(
                rng,
                now,
                rep,
                skill[rep.userid],
                diligence[rep.userid],
                phones,
                companies,
                external_ids,
            )
        )
    plans.sort(key=lambda p: p.created_at)
    # Its own random stream, so adding contacts leaves the rest of the plan as it was.
    _add_wecom_contacts(random.Random(rng_seed * 7919 + 11), plans, external_ids)
    return plans


def _add_wecom_contacts(rng: random.Random, plans: list[PlannedCustomer], taken: set[str]) -> None:
    """Reps add the customers they work with as WeCom contacts (企业微信客户联系), so their chats
    reach the archive: most of those who got past a first contact, some of the rest."""
    for plan in plans:
        if plan.values.get("external_userid") or plan.owner is None:
            continue
        worked = any(m.to_stage is not Stage.LEAD for m in plan.moves)
        if rng.random() < (WORKED_CONTACT_SHARE if worked else NEW_CONTACT_SHARE):
            plan.values["external_userid"] = _unique_external_id(rng, taken)


def _plan_customer(
    rng: random.Random,
    now: datetime,
    rep: PersonPlan,
    skill: float,
    diligence: float,
    phones: set[str],
    companies: set[str],
    external_ids: set[str],
) -> PlannedCustomer:
    assert rep.team is not None
    team = SAMPLE_ORG.teams[rep.team]
    manager = SAMPLE_ORG.manager_of(rep.team)
    today = local_date(now)
    category = Category.PROJECT if rng.random() < 0.35 else Category.RETAIL
    weights = SOURCE_WEIGHTS[category]
    source = rng.choices(list(weights), list(weights.values()))[0]
    # Each rep has a home county and covers the rest of the team's area now and then.
    home = team.regions[_stable_index(rep.userid, len(team.regions))]
    region = home if rng.random() < 0.55 else rng.choice(team.regions)
    name = rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES)
    company = _company(rng, region, category, name[0], companies)
    tile, bath = rng.choice(TILES), rng.choice(BATHROOM_WARES)
    if category is Category.PROJECT:
        amount = Decimal(rng.randrange(50, 800) * 1000)
        area = rng.randrange(500, 20000, 50)
        project = rng.choice(list(PROJECT_PROJECTS))
    else:
        amount = Decimal(rng.randrange(80, 800) * 100)
        area = rng.randrange(60, 320, 5)
        project = rng.choice(list(RETAIL_PROJECTS))
    words = {
        "region": region,
        "tile": tile,
        "bath": bath,
        "product": tile if rng.random() < 0.6 else bath,
        "project": project,
        "area": area,
        "amount": _wan(amount),
        "deposit": _wan(amount * Decimal("0.3")),
        "rival": rng.choice(RIVALS),
    }

    oldest = min(HISTORY_DAYS, rep.joined_days_ago)
    # Customers came in faster since the team started recording every contact: half of them
    # spread over the whole period, half weighted towards the last weeks.
    if rng.random() < 0.5:
        created_day = rng.randint(1, oldest)
    else:
        created_day = max(1, round(rng.triangular(1, oldest, 1)))
    first_method = rng.choice(FIRST_CONTACT[source])
    created_at = _work_time(rng, today, created_day)

    # Walk the funnel: each move happens on a follow-up day, strictly after the previous one.
    moves = [PlannedMove(created_at, None, Stage.LEAD, "新建客户", rep.userid)]
    follow_ups = [
        PlannedFollowUp(
            created_at, first_method, _first_contact_text(source, words), author=rep.userid
        )
    ]
    day, stage = created_day, Stage.LEAD
    for _ in range(MAX_MOVES):
        target = _next_stage(rng, stage, skill)
        if target is None:
            break
        next_day = day - _dwell_days(rng, stage, category)
        if next_day < 1:
            break  # not decided yet: the customer is still in this stage today
        follow_ups += _regular_follow_ups(rng, today, stage, day, next_day, diligence, words, rep)
        text, cause, methods = rng.choice(MOVE_FOLLOW_UPS[(stage, target)])
        at = _work_time(rng, today, next_day)
        moves.append(PlannedMove(at, stage, target, cause, rep.userid))
        follow_ups.append(
            PlannedFollowUp(at, rng.choice(methods), text.format(**words), author=rep.userid)
        )
        day, stage = next_day, target

    # The current stage: open customers are worked until recently (a few went quiet), won ones
    # get weeks of delivery and after-sales, lost ones are mostly left alone.
    if stage in OPEN_STAGES:
        end_day = rng.choices(
            [rng.randint(0, 6), rng.randint(7, 20), rng.randint(21, 75)], [0.62, 0.23, 0.15]
        )[0]
    elif stage is Stage.WON:
        end_day = day - rng.randint(30, 90)
    else:
        end_day = day - 60 if rng.random() < 0.3 else day
    follow_ups += _regular_follow_ups(rng, today, stage, day, end_day, diligence, words, rep)
    last = follow_ups[-1]
    if stage in OPEN_STAGES or (stage is Stage.WON and rng.random() < 0.3):
        last.next_plan = rng.choice(NEXT_PLANS[stage])
        last.next_follow_up_on = local_date(last.at) + timedelta(days=rng.randint(1, 10))

    reached = {m.to_stage for m in moves}
    deepest = next(s for s in (Stage.WON, Stage.QUOTE, Stage.INTEREST, Stage.LEAD) if s in reached)
    values = _customer_values(
        rng, category, source, first_method, name, company, region, amount, deepest, stage, words
    )
    plan = PlannedCustomer(
        values=values,
        owner=rep.userid,
        team=rep.team,
        created_at=created_at,
        moves=moves,
        follow_ups=follow_ups,
        tags=_tags(rng, category, values),
        custom_values=_custom_values(rng, area, stage, deepest, project),
    )
    # A few customers only ever talked on WeChat and never gave a number.
    values["phone"] = _unique_phone(rng, phones) if rng.random() > 0.03 else None
    values["email"] = _customer_email(values["phone"])
    if first_method is WECOM_CHAT or source is Source.WECOM:
        values["external_userid"] = _unique_external_id(rng, external_ids)
    values["grade"] = _GRADER.grade(values, plan.tags, now)
    quiet_days = (now - last.at).days
    if stage in OPEN_STAGES and quiet_days > POOL_RELEASE.after_days and rng.random() < 0.7:
        # Nobody followed up for a month: the default timer released it to the public pool
        # (an hour after it fell due: the sweep runs every few minutes, and on workdays).
        _release(
            plan, last.at + timedelta(days=POOL_RELEASE.after_days, hours=1), POOL_RELEASE.reason
        )
    elif stage is Stage.LOST and quiet_days > 1 and rng.random() < 0.15:
        # Some lost customers go to the pool, where another rep may try again.
        _release(plan, last.at + timedelta(days=1), LOST_RELEASE_REASON)
    elif stage in OPEN_STAGES and rng.random() < 0.15:
        plan.tasks.append(_open_task(rng, now, stage, values, rep, manager))
    if stage is Stage.WON and rng.random() < 0.2:
        done_at = last.at + timedelta(hours=rng.randint(2, 48))
        if done_at < now:
            plan.tasks.append(
                PlannedTask(
                    f"安排送货：{values['name']}",
                    due_at=done_at,
                    created_at=last.at,
                    is_done=True,
                    assignee=rep.userid,
                    cc=manager.userid,
                )
            )
    return plan


def _customer_email(phone: str | None) -> str | None:
    """About two customers in three left an address; example.com, so none is ever real."""
    if phone is None or _stable_index(phone, 3) == 0:
        return None
    return f"{phone}@{CUSTOMER_EMAIL_DOMAIN}"


def _release(plan: PlannedCustomer, at: datetime, reason: str) -> None:
    plan.released_by, plan.owner = plan.owner, None
    plan.released_at, plan.release_reason = at, reason


def _stable_index(text: str, size: int) -> int:
    """A stable index for a string (Python's own hash() changes from run to run)."""
    return sum(text.encode()) % size


def _next_stage(rng: random.Random, stage: Stage, skill: float) -> Stage | None:
    """The stage a customer moves to next, or None when it stays where it is for good."""
    if rng.random() < STAY_CHANCE.get(stage, 0.0):
        return None
    targets = [target for target, _ in STAGE_MOVES[stage]]
    # Better reps move more customers forward.
    weights = [w * skill if (stage, t) in FORWARD_MOVES else w for t, w in STAGE_MOVES[stage]]
    return rng.choices(targets, weights)[0]


def _dwell_days(rng: random.Random, stage: Stage, category: Category) -> int:
    """Days in a stage before the next move: mostly short, with a long tail."""
    low, high = DWELL_DAYS[stage]
    days = rng.triangular(low, high, low + (high - low) * 0.2)
    if category is Category.PROJECT:
        days *= PROJECT_DWELL_FACTOR
    return max(1, round(days))


def _regular_follow_ups(
    rng: random.Random,
    today: date,
    stage: Stage,
    from_day: int,
    to_day: int,
    diligence: float,
    words: dict[str, Any],
    rep: PersonPlan,
) -> list[PlannedFollowUp]:
    """Follow-ups strictly between two event days (days counted back from today)."""
    low, high = FOLLOW_UP_GAP_DAYS[stage]
    to_day = max(to_day, 0)  # never in the future
    found: list[PlannedFollowUp] = []
    day = from_day
    while True:
        day -= max(1, round(rng.randint(low, high) / diligence))
        if day <= to_day:
            return found
        text, methods = rng.choice(REGULAR_FOLLOW_UPS[stage])
        method = VOICE if rng.random() < 0.06 else rng.choice(methods)
        follow_up = PlannedFollowUp(
            _work_time(rng, today, day), method, text.format(**words), author=rep.userid
        )
        if stage is not Stage.LOST and rng.random() < 0.4:
            follow_up.next_plan = rng.choice(NEXT_PLANS[stage])
            follow_up.next_follow_up_on = today - timedelta(days=day - rng.randint(1, 7))
        found.append(follow_up)


def _first_contact_text(source: Source, words: dict[str, Any]) -> str:
    return FIRST_CONTACT_TEXTS[source].format(**words)


def _customer_values(
    rng: random.Random,
    category: Category,
    source: Source,
    first_method: ContactMethod,
    name: str,
    company: str | None,
    region: str,
    amount: Decimal,
    deepest: Stage,
    stage: Stage,
    words: dict[str, Any],
) -> dict[str, Any]:
    # How far a customer got says a lot about how well the need matched, how often they asked
    # for prices and whether they had a budget.
    depth = {Stage.LEAD: 0, Stage.INTEREST: 1, Stage.QUOTE: 2, Stage.WON: 3}[deepest]
    match_weights = ((10, 40, 50), (25, 50, 25), (45, 45, 10), (70, 30, 0))[depth]
    need_match = rng.choices([NeedMatch.HIGH, NeedMatch.MEDIUM, NeedMatch.LOW], match_weights)[0]
    inquiry_count = rng.randint(*((0, 2), (1, 4), (2, 6), (3, 8))[depth])
    has_budget = rng.random() < (0.15, 0.45, 0.75, 0.95)[depth]
    attended_expo = source is Source.EXPO or rng.random() < 0.1
    quote_feedback = None
    if depth >= 2:
        quote_feedback = rng.choice(
            (
                "价格可以接受，要求送货上门",
                "嫌贵，希望再让一点",
                "认可质量，担心交期",
                f"在和{words['rival']}比价",
                "要求包安装",
                "付款方式需要再谈",
            )
        )
    # Early leads are often half-filled; that is what the completeness score shows.
    missing = 0.35 if depth == 0 else 0.1 if depth == 1 else 0.03
    values = {
        "name": name,
        "company": company,
        "region": region if rng.random() > 0.02 else None,
        "category": category.value,
        "source": source.value if rng.random() > 0.03 else None,
        "first_contact_method": first_method.value if rng.random() > 0.06 else None,
        "need_match": need_match.value if rng.random() > missing else None,
        "quote_feedback": quote_feedback,
        "expected_amount": amount if rng.random() > missing else None,
        "inquiry_count": inquiry_count,
        "has_budget": has_budget,
        "attended_expo": attended_expo,
        "stage": stage.value,
    }
    return values


def _company(
    rng: random.Random, region: str, category: Category, surname: str, taken: set[str]
) -> str | None:
    if category is Category.RETAIL and rng.random() < 0.55:
        return None  # a homeowner: no company
    place = region.rstrip("县市区") if len(region) > 2 else region
    for _ in range(20):
        word = rng.choice(COMPANY_WORDS)
        if category is Category.PROJECT:
            name = f"{place}{word}{rng.choice(PROJECT_COMPANY_KINDS)}"
        else:
            kind = rng.choice(RETAIL_COMPANY_KINDS)
            name = f"{place}{surname}师傅{kind}" if kind == "装修队" else f"{place}{word}{kind}"
        if name not in taken:
            taken.add(name)
            return name
    return None


def _tags(rng: random.Random, category: Category, values: dict[str, Any]) -> list[str]:
    count = rng.choices((0, 1, 2, 3), (35, 35, 20, 10))[0]
    tags = rng.sample(TAGS, count)
    if (
        category is Category.PROJECT
        and values["expected_amount"]
        and values["expected_amount"] >= 300000
        and "大单" not in tags
    ):
        tags.append("大单")
    return tags


def _custom_values(
    rng: random.Random, area: int, stage: Stage, deepest: Stage, project: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if rng.random() < (0.55 if deepest is Stage.LEAD else 0.85):
        values["needs_install"] = rng.random() < 0.6
    if rng.random() < 0.5:
        values["met_competitor"] = rng.random() < (0.8 if stage is Stage.LOST else 0.35)
    if rng.random() < 0.6:
        values["floor_area_sqm"] = area
    if rng.random() < 0.65:
        values["project_type"] = RETAIL_PROJECTS.get(project) or PROJECT_PROJECTS[project]
    return values


def _open_task(
    rng: random.Random,
    now: datetime,
    stage: Stage,
    values: dict[str, Any],
    rep: PersonPlan,
    manager: PersonPlan,
) -> PlannedTask:
    titles = {
        Stage.LEAD: "约{name}到展厅看样",
        Stage.INTEREST: "给{name}准备样品和效果图",
        Stage.QUOTE: "报价跟进：{name}",
    }
    created = now - timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 8))
    due = now + timedelta(days=rng.randint(-3, 7), hours=rng.randint(0, 8))
    return PlannedTask(
        titles[stage].format(name=values["name"]),
        due_at=max(due, created),
        created_at=created,
        is_done=False,
        assignee=rep.userid,
        cc=manager.userid,
    )


def _work_time(rng: random.Random, today: date, days_ago: int) -> datetime:
    """A moment in Beijing working hours (08:30–19:30) `days_ago` days before today, in UTC.

    Nothing is planned for today itself, so every moment lies before `now`.
    """
    if days_ago < 1:
        raise ValueError("planned events lie at least one day back")
    day = today - timedelta(days=days_ago)
    minute = rng.randint(8 * 60 + 30, 19 * 60 + 30)
    local = datetime(
        day.year,
        day.month,
        day.day,
        minute // 60,
        minute % 60,
        rng.randint(0, 59),
        tzinfo=BUSINESS_TZ,
    )
    return local.astimezone(UTC)


def _wan(amount: Decimal) -> str:
    """An amount in 万元 the way reps write it: 12.5, 3.2."""
    return f"{amount / 10000:.1f}".rstrip("0").rstrip(".")


def _unique_phone(rng: random.Random, taken: set[str]) -> str:
    while True:
        phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if phone not in taken:
            taken.add(phone)
            return phone


def _unique_external_id(rng: random.Random, taken: set[str]) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    while True:
        external = "wm" + "".join(rng.choice(alphabet) for _ in range(30))
        if external not in taken:
            taken.add(external)
            return external
