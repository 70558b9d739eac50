"""A company-sized customer book, seeded fast: 100k customers and 1M follow-ups for 50 reps.

Five teams of ten reps, a manager per team and the boss; customers spread unevenly over the reps,
stages and grades spread like a real funnel, tags, custom values, stage history, some tasks and a
few attachments. Follow-ups are skewed: most customers have a handful, key accounts hundreds.

PostgreSQL rows go in with COPY (psycopg); SQLite rows with SQLAlchemy Core `insert()`
executemany in big batches inside one transaction. The schema comes from Alembic
(`Database.upgrade`). Seeding is the slow part, so a marker table remembers the plan that was
seeded, and a rerun that finds the same plan and the same row counts skips it.

    python -m bench.seed --db sqlite|postgres [--reseed]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import JSON, Engine, Table, create_engine, insert, inspect, make_url, text

from crm import completeness
from crm.vocab import Category, ContactMethod, FollowUpSource, NeedMatch, Source, Stage
from models import Base, Database
from models.users import Role

SEED_VERSION = 1  # bump when the generated shape changes, so cached databases are rebuilt
MARKER_TABLE = "bench_seed"
RESULTS_DIR = Path(__file__).parent / "results"
SQLITE_PATH = RESULTS_DIR / "customer_book.sqlite3"
SQLITE_URL = f"sqlite:///{SQLITE_PATH}"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/wecrm_bench"
CUSTOMERS_PER_CHUNK = 5000
LOAD_ORDER = ("customers", "customer_tags", "follow_ups", "attachments", "stage_changes", "tasks")
TABLES_IN_LOAD_ORDER: tuple[Table, ...] = tuple(Base.metadata.tables[n] for n in LOAD_ORDER)

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
CUSTOM_FIELDS: tuple[tuple[str, str, str, list[str], bool, bool], ...] = (
    # key, label, kind, options, is_required, is_tag_dimension
    ("industry", "所属行业", "enum", list(INDUSTRIES), True, True),
    ("purchase_volume", "年采购量（套）", "number", [], False, False),
    ("site_visited", "已看现场", "bool", [], False, False),
)


@dataclass(frozen=True)
class SeedPlan:
    """What to seed; a database seeded with the same plan is reused."""

    customers: int = 100_000
    follow_ups: int = 1_000_000
    teams: int = 5
    reps_per_team: int = 10
    random_seed: int = 20261126
    version: int = SEED_VERSION

    @property
    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def reps(self) -> int:
        return self.teams * self.reps_per_team


@dataclass
class SeedResult:
    url: str
    plan: SeedPlan
    anchor: datetime  # the "now" the rows were generated around
    seconds: float  # how long the seeding took (when it ran)
    reused: bool
    row_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Staff:
    boss_id: int
    manager_of_team: dict[int, int]
    team_of_rep: dict[int, int]
    reps: list[int]
    rep_cum_weights: list[float]


# --- entry points ------------------------------------------------------------------------------


def ensure_seeded(
    url: str, plan: SeedPlan | None = None, *, reseed: bool = False, log: Any = print
) -> SeedResult:
    """Seed `url` with `plan` unless it already holds exactly that (the marker and the counts)."""
    plan = plan or SeedPlan()
    if url.startswith("postgresql"):
        ensure_postgres_database(url)
    db = Database(url)
    try:
        marker = _read_marker(db.engine)
        if not reseed and marker is not None and marker["plan"] == plan.key:
            counts = row_counts(db.engine)
            if counts["customers"] == plan.customers and counts["follow_ups"] == plan.follow_ups:
                log(
                    f"seed: reusing {_describe(url)} ({counts['customers']:,} customers, "
                    f"{counts['follow_ups']:,} follow-ups, seeded in {marker['seconds']:.0f} s)"
                )
                return SeedResult(
                    url,
                    plan,
                    datetime.fromisoformat(marker["anchor"]),
                    marker["seconds"],
                    reused=True,
                    row_counts=counts,
                )
            log(f"seed: {_describe(url)} holds {counts}, not the plan; reseeding")
    finally:
        db.dispose()
    return seed(url, plan, log=log)


def seed(url: str, plan: SeedPlan, *, log: Any = print) -> SeedResult:
    """Wipe the bench database, build the schema with Alembic and load the plan's rows."""
    _reset(url)
    db = Database(url)
    try:
        started = time.perf_counter()
        db.upgrade()
        anchor = datetime.now(UTC).replace(microsecond=0)
        rng = random.Random(plan.random_seed)
        if db.is_sqlite:
            _load_sqlite(db.engine, plan, anchor, rng, log)
        else:
            _load_postgres(db.engine, plan, anchor, rng, log)
        seconds = time.perf_counter() - started
        _write_marker(db.engine, plan, anchor, seconds)
        counts = row_counts(db.engine)
        log(
            f"seed: {_describe(url)} seeded in {seconds:.1f} s: "
            + ", ".join(f"{v:,} {k}" for k, v in counts.items())
        )
        return SeedResult(url, plan, anchor, seconds, reused=False, row_counts=counts)
    finally:
        db.dispose()


def ensure_postgres_database(url: str) -> None:
    """Create the bench database beside the server's others (never touching them)."""
    target = make_url(url)
    name = target.database or ""
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()


def row_counts(engine: Engine) -> dict[str, int]:
    names = (
        "users",
        "customers",
        "customer_tags",
        "follow_ups",
        "attachments",
        "stage_changes",
        "tasks",
    )
    with engine.connect() as conn:
        return {n: conn.scalar(text(f"SELECT count(*) FROM {n}")) or 0 for n in names}


# --- the loaders -------------------------------------------------------------------------------


def _load_sqlite(
    engine: Engine, plan: SeedPlan, anchor: datetime, rng: random.Random, log: Any
) -> None:
    with engine.begin() as conn:
        staff = _insert_people(conn, plan, anchor)
        for number, chunk in enumerate(_chunks(plan, staff, anchor, rng), start=1):
            for table in TABLES_IN_LOAD_ORDER:
                rows = chunk[table.name]
                if rows:
                    conn.execute(insert(table), rows)
            _progress(log, number, plan)


def _load_postgres(
    engine: Engine, plan: SeedPlan, anchor: datetime, rng: random.Random, log: Any
) -> None:
    from psycopg.types.json import Jsonb

    with engine.begin() as conn:
        staff = _insert_people(conn, plan, anchor)
        raw = conn.connection.driver_connection  # the psycopg connection, same transaction
        assert raw is not None
        raw.execute("SET LOCAL synchronous_commit = off")
        json_columns = {
            t.name: {c.name for c in t.columns if isinstance(c.type, JSON)}
            for t in TABLES_IN_LOAD_ORDER
        }
        with raw.cursor() as cursor:
            for number, chunk in enumerate(_chunks(plan, staff, anchor, rng), start=1):
                for table in TABLES_IN_LOAD_ORDER:
                    rows = chunk[table.name]
                    if not rows:
                        continue
                    columns = list(rows[0])
                    wrap = [c in json_columns[table.name] for c in columns]
                    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
                    with cursor.copy(statement) as copy:
                        for row in rows:
                            copy.write_row(
                                [
                                    Jsonb(v) if w else v
                                    for v, w in zip(row.values(), wrap, strict=True)
                                ]
                            )
                _progress(log, number, plan)
        # Ids were given explicitly, so move each serial past them for the rows the app adds.
        for name in ("teams", "users", "custom_fields", *(t.name for t in TABLES_IN_LOAD_ORDER)):
            if "id" in Base.metadata.tables[name].c:
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {name}), 0) + 1, false)"
                    )
                )
    # Autovacuum would get there; the benchmark measures the steady state, with statistics.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def _progress(log: Any, number: int, plan: SeedPlan) -> None:
    done = min(number * CUSTOMERS_PER_CHUNK, plan.customers)
    if number % 4 == 0 or done == plan.customers:
        log(f"seed: {done:,}/{plan.customers:,} customers")


def _insert_people(conn: Any, plan: SeedPlan, anchor: datetime) -> Staff:
    """Teams, managers, reps, the boss and the custom fields (small: Core insert everywhere)."""
    rng = random.Random(plan.random_seed + 1)
    teams: list[dict[str, Any]] = [
        {
            "id": t + 1,
            "name": TEAM_NAMES[t % len(TEAM_NAMES)] + ("" if t < len(TEAM_NAMES) else str(t)),
            "wecom_department_id": t + 2,
        }
        for t in range(plan.teams)
    ]
    users = [_user(1, "boss", "王总", Role.BOSS, None, None)]
    manager_of_team: dict[int, int] = {}
    team_of_rep: dict[int, int] = {}
    next_id = itertools.count(2)
    names = _unique_names(rng)
    for team in teams:
        manager_id = next(next_id)
        manager_of_team[team["id"]] = manager_id
        users.append(
            _user(manager_id, f"manager{team['id']}", next(names), Role.MANAGER, team["id"], 1)
        )
        for n in range(plan.reps_per_team):
            rep_id = next(next_id)
            team_of_rep[rep_id] = team["id"]
            users.append(
                _user(
                    rep_id, f"rep{team['id']}{n:02d}", next(names), Role.REP, team["id"], manager_id
                )
            )
    tables = Base.metadata.tables
    conn.execute(insert(tables["teams"]), teams)
    conn.execute(insert(tables["users"]), users)
    conn.execute(
        insert(tables["custom_fields"]),
        [
            {
                "id": i,
                "key": key,
                "label": label,
                "kind": kind,
                "options": options,
                "is_required": required,
                "is_tag_dimension": dimension,
                "is_active": True,
                "created_at": anchor - timedelta(days=400),
            }
            for i, (key, label, kind, options, required, dimension) in enumerate(CUSTOM_FIELDS, 1)
        ],
    )
    reps = list(team_of_rep)
    # Some reps hold twice as many customers as others, as in any sales team.
    weights = [rng.lognormvariate(0, 0.35) for _ in reps]
    return Staff(1, manager_of_team, team_of_rep, reps, list(itertools.accumulate(weights)))


def _user(
    uid: int, wecom_userid: str, name: str, role: Role, team_id: int | None, manager_id: int | None
) -> dict[str, Any]:
    return {
        "id": uid,
        "wecom_userid": wecom_userid,
        "name": name,
        "role": role.value,
        "team_id": team_id,
        "manager_id": manager_id,
        "mobile": f"139{uid:08d}",
        "email": f"{wecom_userid}@example.com",
        "is_active": True,
    }


def _unique_names(rng: random.Random) -> Iterator[str]:
    seen: set[str] = set()
    while True:
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
        if name not in seen:
            seen.add(name)
            yield name


# --- the rows ----------------------------------------------------------------------------------


def _chunks(
    plan: SeedPlan, staff: Staff, anchor: datetime, rng: random.Random
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Rows for every table, CUSTOMERS_PER_CHUNK customers at a time, ids assigned in order."""
    stages = rng.choices(
        list(STAGE_WEIGHTS), weights=list(STAGE_WEIGHTS.values()), k=plan.customers
    )
    counts = _follow_up_counts(rng, stages, plan.follow_ups)
    required = [key for key, _l, _k, _o, is_required, _d in CUSTOM_FIELDS if is_required]
    ids: dict[str, Iterator[int]] = {
        name: itertools.count(1) for name in ("follow_ups", "attachments", "stage_changes", "tasks")
    }
    for start in range(0, plan.customers, CUSTOMERS_PER_CHUNK):
        chunk: dict[str, list[dict[str, Any]]] = {t.name: [] for t in TABLES_IN_LOAD_ORDER}
        for index in range(start, min(start + CUSTOMERS_PER_CHUNK, plan.customers)):
            _customer_rows(
                chunk, index + 1, stages[index], counts[index], staff, anchor, rng, required, ids
            )
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


def _customer_rows(
    chunk: dict[str, list[dict[str, Any]]],
    cid: int,
    stage: Stage,
    follow_up_count: int,
    staff: Staff,
    anchor: datetime,
    rng: random.Random,
    required_custom: list[str],
    ids: dict[str, Iterator[int]],
) -> None:
    is_pooled = rng.random() < 0.02  # released to the public pool: nobody owns it
    owner_id = (
        None
        if is_pooled
        else staff.reps[
            bisect.bisect(staff.rep_cum_weights, rng.random() * staff.rep_cum_weights[-1])
        ]
    )
    team_id = staff.team_of_rep[owner_id] if owner_id else None
    manager_id = staff.manager_of_team[team_id] if team_id else staff.boss_id
    created = anchor - timedelta(seconds=rng.uniform(3 * 86400, 3 * 365 * 86400))
    span = (anchor - created).total_seconds()

    if stage is Stage.LOST:
        path: tuple[Stage, ...] = (*STAGE_PATHS[Stage.QUOTE][: rng.randint(1, 3)], Stage.LOST)
    else:
        path = STAGE_PATHS[stage]
    moments = sorted(rng.uniform(0, span * 0.9) for _ in path[1:])
    previous: Stage | None = None
    for to_stage, offset in zip(path, [0.0, *moments], strict=True):
        chunk["stage_changes"].append(
            {
                "id": next(ids["stage_changes"]),
                "customer_id": cid,
                "from_stage": previous.value if previous else None,
                "to_stage": to_stage.value,
                "changed_at": created + timedelta(seconds=offset),
                "actor_id": owner_id if rng.random() < 0.9 else None,
                "cause": "新建客户"
                if previous is None
                else rng.choice(("手动调整", "规则：已报价", "规则：签订合同")),
            }
        )
        previous = to_stage
    stage_entered_at = chunk["stage_changes"][-1]["changed_at"]

    happened = sorted(rng.uniform(0, span - 600) for _ in range(follow_up_count))
    for offset in happened:
        _follow_up_rows(
            chunk, cid, created + timedelta(seconds=offset), owner_id, manager_id, anchor, rng, ids
        )
    last_follow_up_at = chunk["follow_ups"][-1]["happened_at"] if happened else None

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
    customer = {
        "id": cid,
        "name": name,
        # 1 + [3-9] + 9 digits; 7919 is prime to 10**9, so every customer gets its own number.
        "phone": f"1{3 + cid % 7}{(cid * 7919 + 12345) % 10**9:09d}"
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
        "owner_id": owner_id,
        "team_id": team_id,
        "external_userid": f"wm{cid:09d}{rng.getrandbits(40):010x}"
        if rng.random() < 0.35
        else None,
        "inquiry_count": rng.randint(0, 12),
        "has_budget": rng.random() < 0.3,
        "attended_expo": rng.random() < 0.15,
        "custom_values": custom,
        "completeness": 0,
        "last_follow_up_at": last_follow_up_at,
        "stage_entered_at": stage_entered_at,
        "created_at": created,
        "updated_at": max(created, stage_entered_at, last_follow_up_at or created),
    }
    # The app's own scoring; it only reads attributes, so the row dict stands in for a Customer.
    customer["completeness"] = completeness.score(SimpleNamespace(**customer), required_custom)  # type: ignore[arg-type]
    chunk["customers"].append(customer)

    for tag in rng.sample(TAGS, rng.choices((0, 1, 2, 3, 4), weights=(35, 30, 20, 10, 5))[0]):
        chunk["customer_tags"].append({"customer_id": cid, "tag": tag})

    for _ in range(rng.choices((0, 1, 2), weights=(65, 30, 5))[0]):
        due = anchor + timedelta(days=rng.uniform(-30, 14))
        created_task = due - timedelta(days=rng.uniform(1, 10))
        is_done = due < anchor and rng.random() < 0.7
        chunk["tasks"].append(
            {
                "id": next(ids["tasks"]),
                "customer_id": cid,
                "assignee_id": owner_id or manager_id,
                "cc_id": manager_id if rng.random() < 0.2 else None,
                "title": rng.choice(TASK_TITLES) + f"：{name}",
                "detail": None,
                "due_at": due,
                "status": "done" if is_done else "open",
                "origin": rng.choice(("manual", "manual", "rule:no_follow_up_7d")),
                "created_at": max(created_task, created),
                "done_at": min(due, anchor) if is_done else None,
            }
        )


def _follow_up_rows(
    chunk: dict[str, list[dict[str, Any]]],
    cid: int,
    happened_at: datetime,
    owner_id: int | None,
    manager_id: int,
    anchor: datetime,
    rng: random.Random,
    ids: dict[str, Iterator[int]],
) -> None:
    source = rng.choices(FOLLOW_UP_SOURCES, weights=FOLLOW_UP_SOURCE_WEIGHTS)[0]
    method = SOURCE_METHOD.get(source) or rng.choices(MANUAL_METHODS, MANUAL_METHOD_WEIGHTS)[0]
    summary = f"{method.value}：{rng.choice(TOPICS)}。{rng.choice(REACTIONS)}。"
    if rng.random() < 0.3:
        summary += f"预计采购{rng.randrange(5, 300)}套，{rng.choice(NEXT_PLANS)}。"
    follow_up_id = next(ids["follow_ups"])
    chunk["follow_ups"].append(
        {
            "id": follow_up_id,
            "customer_id": cid,
            "author_id": (owner_id or manager_id) if rng.random() < 0.93 else manager_id,
            "happened_at": happened_at,
            "method": method.value,
            "summary": summary,
            "next_plan": rng.choice(NEXT_PLANS) if rng.random() < 0.5 else None,
            "next_follow_up_on": (happened_at + timedelta(days=rng.randint(1, 14))).date()
            if rng.random() < 0.3
            else None,
            "source": source.value,
            "transcript": f"（录音转写）{summary}" if source is FollowUpSource.VOICE else None,
            "created_at": min(happened_at + timedelta(minutes=rng.randint(0, 90)), anchor),
        }
    )
    if rng.random() < 0.01:
        filename, content_type, suffix = rng.choice(ATTACHMENTS)
        digest = f"{rng.getrandbits(256):064x}"
        chunk["attachments"].append(
            {
                "id": next(ids["attachments"]),
                "follow_up_id": follow_up_id,
                "filename": filename,
                "content_type": content_type,
                "size_bytes": rng.randint(20_000, 4_000_000),
                "sha256": digest,
                "storage_key": f"{digest[:2]}/{digest[:32]}{suffix}",
            }
        )


# --- the marker and the reset ------------------------------------------------------------------


def _read_marker(engine: Engine) -> dict[str, Any] | None:
    if not inspect(engine).has_table(MARKER_TABLE):
        return None
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT plan, anchor, seconds FROM {MARKER_TABLE}")).first()
    return dict(row._mapping) if row else None


def _write_marker(engine: Engine, plan: SeedPlan, anchor: datetime, seconds: float) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} "
            "(plan TEXT NOT NULL, anchor TEXT NOT NULL, seconds REAL NOT NULL)"
        )
        conn.execute(text(f"DELETE FROM {MARKER_TABLE}"))
        conn.execute(
            text(f"INSERT INTO {MARKER_TABLE} VALUES (:plan, :anchor, :seconds)"),
            {"plan": plan.key, "anchor": anchor.isoformat(), "seconds": seconds},
        )


def _reset(url: str) -> None:
    """An empty bench database; refuses any PostgreSQL database not named for benchmarks."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return
    if "bench" not in (parsed.database or ""):
        raise SystemExit(f"refusing to wipe {parsed.database!r}: only a *bench* database is seeded")
    engine = create_engine(parsed)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


def _describe(url: str) -> str:
    parsed = make_url(url)
    return (
        str(parsed.database)
        if parsed.get_backend_name() == "sqlite"
        else f"PostgreSQL database {parsed.database}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--url", help="database URL (default: the bench database of --db)")
    parser.add_argument("--customers", type=int, default=SeedPlan.customers)
    parser.add_argument("--follow-ups", type=int, default=SeedPlan.follow_ups)
    parser.add_argument("--reseed", action="store_true", help="seed even if the marker matches")
    args = parser.parse_args()
    url = args.url or (SQLITE_URL if args.db == "sqlite" else POSTGRES_URL)
    ensure_seeded(
        url, SeedPlan(customers=args.customers, follow_ups=args.follow_ups), reseed=args.reseed
    )


if __name__ == "__main__":
    main()
