"""The benchmarks' company-sized book: by default 100k customers and 1M follow-ups for 50 reps.

Five teams of ten reps, a manager per team and the boss; customers spread unevenly over the
reps, stages and grades spread like a real funnel (drawn from fixed weights, so every run of a
benchmark measures the same mix), tags, custom values, stage history, some tasks and a few
attachments. Follow-ups are skewed: most customers have a handful, key accounts hundreds, and
they add up to exactly the total asked for. Plans come in chunks, so a million follow-ups never
sit in memory at once. `synthetic.sample` is the demo's smaller, storied company.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from crm.vocab import Category, ContactMethod, FollowUpSource, NeedMatch, Source, Stage
from models.users import Role
from synthetic.plans import (
    POSITIONS,
    FieldPlan,
    Org,
    PersonPlan,
    PlannedAttachment,
    PlannedCustomer,
    PlannedFollowUp,
    PlannedMove,
    PlannedTask,
    TeamPlan,
)
from synthetic.rules import local_date

CUSTOMERS_PER_CHUNK = 5000

# --- vocabularies (what the rows are made of) --------------------------------------------------

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁"
    "潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱"
    "江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红玲芬燕彬鹏辉"
    "建国志宏海波斌宇浩凯琳雪梅婷"
)
TITLES = ("总", "经理", "工", "主任", "老板", "姐", "哥")
CITIES = (
    "长沙",
    "株洲",
    "湘潭",
    "衡阳",
    "岳阳",
    "常德",
    "武汉",
    "广州",
    "深圳",
    "南昌",
    "贵阳",
    "重庆",
)
BRANDS = (
    "恒达",
    "宏远",
    "鑫源",
    "华盛",
    "金鼎",
    "中联",
    "博雅",
    "天成",
    "瑞丰",
    "永信",
    "嘉禾",
    "远航",
    "盛世",
    "新锐",
    "汇通",
    "润泽",
    "兴业",
    "鼎力",
    "东方",
    "明珠",
)
INDUSTRIES = (
    "建材",
    "装饰",
    "机电",
    "物流",
    "科技",
    "贸易",
    "地产",
    "酒店",
    "医疗",
    "教育",
    "餐饮",
    "制造",
)
COMPANY_SUFFIXES = ("有限公司", "集团", "工程有限公司", "商贸行", "股份有限公司")
TAGS = (
    "高意向",
    "价格敏感",
    "老客户",
    "展会客户",
    "转介绍",
    "决策人",
    "需要回访",
    "大客户",
    "竞品在谈",
    "预算充足",
    "已报价",
    "样品已寄",
    "技术对接",
    "年底采购",
    "政府项目",
    "连锁门店",
)
TOPICS = (
    "了解项目进度",
    "确认采购需求",
    "介绍新品",
    "跟进报价",
    "催回款",
    "约见面时间",
    "发送样品资料",
    "讨论合同条款",
    "解答技术方案问题",
    "确认交货时间",
)
REACTIONS = (
    "客户态度积极",
    "客户表示需要内部商量",
    "客户觉得价格偏高",
    "对方负责人出差，下周再联系",
    "客户要求提供同类案例",
    "客户正在比较竞品",
    "客户预算已经批下来",
    "客户暂时没有需求",
)
NEXT_PLANS = (
    "下周再电话跟进",
    "准备正式报价单",
    "安排技术人员上门",
    "寄送样品",
    "邀请参观展厅",
    "等客户回复",
    "约老板一起拜访",
)
FEEDBACK = (
    "觉得价格偏高，希望再降5%",
    "对报价基本认可，等领导签字",
    "要求分两期付款",
    "对交期有顾虑",
    "竞品报价低10%",
)
TASK_TITLES = ("回访客户", "发送报价单", "安排上门拜访", "催收尾款", "确认合同细节", "寄送样品")
ATTACHMENTS = (
    ("报价单.pdf", "application/pdf", ".pdf"),
    ("现场照片.jpg", "image/jpeg", ".jpg"),
    (
        "合同草稿.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".docx",
    ),
    ("通话录音.mp3", "audio/mpeg", ".mp3"),
)
TEAM_NAMES = ("长沙一组", "株洲二组", "武汉三组", "广州四组", "深圳五组", "南昌六组", "重庆七组")

STAGE_WEIGHTS = {Stage.LEAD: 40, Stage.INTEREST: 25, Stage.QUOTE: 15, Stage.WON: 10, Stage.LOST: 10}
# How busy a customer's timeline is by stage: quotes and deals get followed up most.
STAGE_ACTIVITY = {
    Stage.LEAD: 0.5,
    Stage.INTEREST: 1.0,
    Stage.QUOTE: 1.6,
    Stage.WON: 2.0,
    Stage.LOST: 0.8,
}
STAGE_PATHS = {
    Stage.LEAD: (Stage.LEAD,),
    Stage.INTEREST: (Stage.LEAD, Stage.INTEREST),
    Stage.QUOTE: (Stage.LEAD, Stage.INTEREST, Stage.QUOTE),
    Stage.WON: (Stage.LEAD, Stage.INTEREST, Stage.QUOTE, Stage.WON),
}
GRADES = ("A", "B", "C", "D", None)
GRADE_WEIGHTS = (10, 25, 40, 15, 10)
SOURCE_METHOD = {
    FollowUpSource.CHAT_ARCHIVE: ContactMethod.WECOM_CHAT,
    FollowUpSource.VOICE: ContactMethod.VOICE,
    FollowUpSource.EMAIL: ContactMethod.EMAIL,
}
FOLLOW_UP_SOURCES = (
    FollowUpSource.MANUAL,
    FollowUpSource.CHAT_ARCHIVE,
    FollowUpSource.VOICE,
    FollowUpSource.EMAIL,
)
FOLLOW_UP_SOURCE_WEIGHTS = (75, 18, 5, 2)
MANUAL_METHODS = (ContactMethod.PHONE, ContactMethod.WECHAT, ContactMethod.VISIT)
MANUAL_METHOD_WEIGHTS = (50, 35, 15)
FIELDS = (
    FieldPlan("industry", "所属行业", "enum", INDUSTRIES, is_required=True, is_tag_dimension=True),
    FieldPlan("purchase_volume", "年采购量（套）", "number"),
    FieldPlan("site_visited", "已看现场", "bool"),
)


@dataclass(frozen=True)
class BookShape:
    """How big a book to plan; the same shape and seed plan the same book."""

    customers: int = 100_000
    follow_ups: int = 1_000_000
    teams: int = 5
    reps_per_team: int = 10
    random_seed: int = 20261126


def book_org(shape: BookShape) -> Org:
    """The boss, then per team its manager and reps, named at random (the same seed, the same
    names)."""
    rng = random.Random(shape.random_seed + 1)
    names = _unique_names(rng)
    teams = tuple(
        TeamPlan(TEAM_NAMES[t % len(TEAM_NAMES)] + ("" if t < len(TEAM_NAMES) else str(t)), t + 2)
        for t in range(shape.teams)
    )
    people = [_person("boss", "王总", Role.BOSS, None, 1)]
    for t in range(shape.teams):
        people.append(_person(f"manager{t + 1}", next(names), Role.MANAGER, t, len(people) + 1))
        for n in range(shape.reps_per_team):
            userid = f"rep{t + 1}{n:02d}"
            people.append(_person(userid, next(names), Role.REP, t, len(people) + 1))
    return Org(name="基准测试公司", teams=teams, people=tuple(people), fields=FIELDS)


def _person(userid: str, name: str, role: Role, team: int | None, number: int) -> PersonPlan:
    return PersonPlan(
        userid=userid,
        name=name,
        role=role,
        team=team,
        mobile=f"139{number:08d}",
        position=POSITIONS[role],
        email=f"{userid}@example.com",
    )


def _unique_names(rng: random.Random) -> Iterator[str]:
    seen: set[str] = set()
    while True:
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
        if name not in seen:
            seen.add(name)
            yield name


def plan_book(shape: BookShape, org: Org, *, now: datetime) -> Iterator[list[PlannedCustomer]]:
    """The book's customers, CUSTOMERS_PER_CHUNK at a time, in id order."""
    rng = random.Random(shape.random_seed)
    reps = org.reps
    # Some reps hold twice as many customers as others, as in any sales team.
    rep_weights = list(itertools.accumulate(rng.lognormvariate(0, 0.35) for _ in reps))
    stages = rng.choices(
        list(STAGE_WEIGHTS), weights=list(STAGE_WEIGHTS.values()), k=shape.customers
    )
    counts = _follow_up_counts(rng, stages, shape.follow_ups)
    for start in range(0, shape.customers, CUSTOMERS_PER_CHUNK):
        chunk = []
        for index in range(start, min(start + CUSTOMERS_PER_CHUNK, shape.customers)):
            is_pooled = rng.random() < 0.02  # in the public pool since it came in: no owner
            owner = None if is_pooled else rng.choices(reps, cum_weights=rep_weights)[0]
            number = index + 1  # the customer's id, which makes its phone unique
            chunk.append(_customer(rng, org, owner, stages[index], counts[index], number, now))
        yield chunk


def _follow_up_counts(rng: random.Random, stages: list[Stage], total: int) -> list[int]:
    """Follow-ups per customer: skewed, busier later in the funnel, summing to `total`."""
    weights = [
        rng.gammavariate(0.9, 1.0) * STAGE_ACTIVITY[s] * (12 if rng.random() < 0.01 else 1)
        for s in stages
    ]
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    for index in rng.sample(range(len(counts)), total - sum(counts)):
        counts[index] += 1
    return counts


def _customer(
    rng: random.Random,
    org: Org,
    owner: PersonPlan | None,
    stage: Stage,
    follow_up_count: int,
    number: int,
    now: datetime,
) -> PlannedCustomer:
    manager = org.boss if owner is None or owner.team is None else org.manager_of(owner.team)
    worker = owner or manager
    created = now - timedelta(seconds=rng.uniform(3 * 86400, 3 * 365 * 86400))
    span = (now - created).total_seconds()

    if stage is Stage.LOST:
        path: tuple[Stage, ...] = (*STAGE_PATHS[Stage.QUOTE][: rng.randint(1, 3)], Stage.LOST)
    else:
        path = STAGE_PATHS[stage]
    offsets = [0.0, *sorted(rng.uniform(0, span * 0.9) for _ in path[1:])]
    moves = []
    previous: Stage | None = None
    for to_stage, offset in zip(path, offsets, strict=True):
        actor = owner.userid if owner and rng.random() < 0.9 else None
        cause = (
            "新建客户"
            if previous is None
            else rng.choice(("手动调整", "规则：已报价", "规则：签订合同"))
        )
        moves.append(
            PlannedMove(created + timedelta(seconds=offset), previous, to_stage, cause, actor)
        )
        previous = to_stage

    happened = sorted(rng.uniform(0, span - 600) for _ in range(follow_up_count))
    follow_ups = [
        _follow_up(rng, created + timedelta(seconds=offset), worker, manager) for offset in happened
    ]

    name = (
        rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
        if rng.random() < 0.7
        else rng.choice(SURNAMES) + rng.choice(TITLES)
    )
    city = rng.choice(CITIES)
    industry = rng.choice(INDUSTRIES)
    custom: dict[str, Any] = {}
    if rng.random() < 0.6:
        custom["industry"] = industry
    if rng.random() < 0.3:
        custom["purchase_volume"] = rng.randrange(10, 5000, 10)
    if rng.random() < 0.2:
        custom["site_visited"] = rng.random() < 0.5
    values = {
        "name": name,
        # 1 + [3-9] + 9 digits; 7919 is prime to 10**9, so every customer gets its own number.
        "phone": f"1{3 + number % 7}{(number * 7919 + 12345) % 10**9:09d}"
        if rng.random() < 0.9
        else None,
        "company": (city + rng.choice(BRANDS) + industry + rng.choice(COMPANY_SUFFIXES))
        if rng.random() < 0.85
        else None,
        "region": city if rng.random() < 0.95 else None,
        "category": rng.choice((Category.PROJECT, Category.PROJECT, Category.RETAIL)).value
        if rng.random() < 0.9
        else None,
        "stage": stage.value,
        # Fixed weights, not the rules: the rules benchmark publishes rule sets that must
        # change a known share of grades on every run.
        "grade": rng.choices(GRADES, weights=GRADE_WEIGHTS)[0],
        "source": rng.choice(list(Source)).value if rng.random() < 0.9 else None,
        "first_contact_method": rng.choice(list(ContactMethod)).value
        if rng.random() < 0.85
        else None,
        "need_match": rng.choice(list(NeedMatch)).value if rng.random() < 0.7 else None,
        "quote_feedback": rng.choice(FEEDBACK)
        if stage in (Stage.QUOTE, Stage.WON, Stage.LOST) and rng.random() < 0.6
        else None,
        "expected_amount": Decimal(rng.randrange(5, 500) * 1000)
        if stage in (Stage.INTEREST, Stage.QUOTE, Stage.WON) and rng.random() < 0.8
        else None,
        "external_userid": f"wm{number:09d}{rng.getrandbits(40):010x}"
        if rng.random() < 0.35
        else None,
        "inquiry_count": rng.randint(0, 12),
        "has_budget": rng.random() < 0.3,
        "attended_expo": rng.random() < 0.15,
    }
    tags = rng.sample(TAGS, rng.choices((0, 1, 2, 3, 4), weights=(35, 30, 20, 10, 5))[0])
    tasks = []
    for _ in range(rng.choices((0, 1, 2), weights=(65, 30, 5))[0]):
        due = now + timedelta(days=rng.uniform(-30, 14))
        created_task = due - timedelta(days=rng.uniform(1, 10))
        tasks.append(
            PlannedTask(
                rng.choice(TASK_TITLES) + f"：{name}",
                due_at=due,
                created_at=max(created_task, created),
                is_done=due < now and rng.random() < 0.7,
                assignee=worker.userid,
                cc=manager.userid if rng.random() < 0.2 else None,
                origin=rng.choice(("manual", "manual", "rule:no_follow_up_7d")),
            )
        )
    return PlannedCustomer(
        values=values,
        owner=owner.userid if owner else None,
        team=owner.team if owner else None,
        created_at=created,
        moves=moves,
        follow_ups=follow_ups,
        tags=tags,
        custom_values=custom,
        tasks=tasks,
    )


def _follow_up(
    rng: random.Random, at: datetime, worker: PersonPlan, manager: PersonPlan
) -> PlannedFollowUp:
    source = rng.choices(FOLLOW_UP_SOURCES, weights=FOLLOW_UP_SOURCE_WEIGHTS)[0]
    method = SOURCE_METHOD.get(source) or rng.choices(MANUAL_METHODS, MANUAL_METHOD_WEIGHTS)[0]
    summary = f"{method.value}：{rng.choice(TOPICS)}。{rng.choice(REACTIONS)}。"
    if rng.random() < 0.3:
        summary += f"预计采购{rng.randrange(5, 300)}套，{rng.choice(NEXT_PLANS)}。"
    follow_up = PlannedFollowUp(
        at=at,
        method=method,
        summary=summary,
        author=worker.userid if rng.random() < 0.93 else manager.userid,
        next_plan=rng.choice(NEXT_PLANS) if rng.random() < 0.5 else None,
        next_follow_up_on=local_date(at) + timedelta(days=rng.randint(1, 14))
        if rng.random() < 0.3
        else None,
    )
    if rng.random() < 0.01:
        filename, content_type, suffix = rng.choice(ATTACHMENTS)
        digest = f"{rng.getrandbits(256):064x}"
        follow_up.attachments.append(
            PlannedAttachment(
                filename=filename,
                content_type=content_type,
                size_bytes=rng.randint(20_000, 4_000_000),
                sha256=digest,
                storage_key=f"{digest[:2]}/{digest[:32]}{suffix}",
            )
        )
    return follow_up
