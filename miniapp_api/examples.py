"""Request examples for the API reference (/api/v1/docs): one per body and query model, one
value per path parameter, in the words of the demo company (a building-materials distributor).

`openapi.py` puts them into the document; tests/miniapp_api/test_docs.py fails when an operation
lacks one or an example is one its own model would refuse, so the reference never shows a
request the API answers with 422.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from miniapp_api.schemas import (
    ApprovalFlowIn,
    ArchiveImportIn,
    AutoAssignIn,
    CapturePreviewIn,
    CustomerIn,
    CustomerListQuery,
    CustomerPatch,
    CustomFieldIn,
    CustomFieldPatch,
    DataQualityQuery,
    DevLoginIn,
    DraftIn,
    DraftPatch,
    EmailAttachmentsIn,
    EmailPreviewQuery,
    EmailSendIn,
    EmailTemplateIn,
    EmailTemplatePatch,
    EmailTemplateQuery,
    ExpediteIn,
    ExpediteReportQuery,
    ExportQuery,
    FollowUpIn,
    ForecastQuery,
    FunnelQuery,
    HealthQuery,
    HintsIn,
    HistoryQuery,
    ImportIn,
    KpiQuery,
    LoginIn,
    NotificationListQuery,
    OrderApproveIn,
    OrderIn,
    OrderQuery,
    OrderRejectIn,
    PoolAssignIn,
    PoolQuery,
    PublishIn,
    RadarQuery,
    ReassignIn,
    ReleaseIn,
    RollbackIn,
    RuleCheckIn,
    RulePreviewIn,
    RuleScopeQuery,
    SimilarDealsQuery,
    SnoozeIn,
    StageIn,
    TaskIn,
    TaskQuery,
    TaskReassignIn,
    TeamIn,
    UserIn,
)

PATH_EXAMPLES: dict[str, int] = {
    "attachment_id": 1,
    "customer_id": 1,
    "draft_id": 1,
    "email_id": 1,
    "field_id": 1,
    "import_id": 1,
    "message_id": 1,
    "order_id": 1,
    "task_id": 1,
    "template_id": 1,
    "user_id": 1,
}

# A grading rule set a manager might write: the factory rules, plus 展会 visitors as B.
GRADING_DOCUMENT: dict[str, Any] = {
    **DEFAULT_DOCUMENTS["grading"],
    "rules": [
        *DEFAULT_DOCUMENTS["grading"]["rules"],
        {
            "name": "参加过展会",
            "when": {"fact": "attended_expo", "op": "==", "value": True},
            "grade": "B",
        },
    ],
}

CUSTOMER_FILTERS: dict[str, Any] = {
    "q": "恒达",
    "stage": ["意向", "报价"],
    "grade": ["A", "B"],
    "region": "长沙县",
    "category": "工程客户",
    "owner_id": 2,
    "tag": "需要安装",
    "custom": ["project_type:新房装修"],
    "sort": "-updated_at",
}

EXAMPLES: dict[type[BaseModel], dict[str, Any]] = {
    # --- auth and people
    LoginIn: {"code": "0a1Bc2000dEf3g4Hi5Jk6"},  # what wx.qy.login gave the mini-app
    DevLoginIn: {"userid": "zhangwei"},
    UserIn: {
        "wecom_userid": "zhangwei",
        "name": "张伟",
        "role": "rep",
        "team_id": 1,
        "mobile": "13900139000",
        "email": "zhangwei@xiangci.example.com",
    },
    TeamIn: {"name": "长沙一组"},
    # --- customers
    CustomerIn: {
        "name": "长沙恒达装饰",
        "phone": "13800138000",
        "email": "li@hengda.example.com",
        "company": "长沙恒达装饰工程有限公司",
        "region": "长沙县",
        "category": "工程客户",
        "source": "展会获取",
        "first_contact_method": "电话",
        "need_match": "高",
        "expected_amount": 120000,
        "inquiry_count": 1,
        "has_budget": True,
        "tags": ["需要安装"],
        "custom_values": {"project_type": "新房装修", "floor_area_sqm": 300},
        "stage": "潜在",
    },
    CustomerPatch: {
        "expected_amount": 150000,
        "has_budget": True,
        "quote_feedback": "客户觉得价格偏高，希望九五折",
        "reason": "客户追加了二期项目",
    },
    StageIn: {"stage": "报价", "cause": "已发送正式报价单"},
    ReassignIn: {"owner_id": 5, "reason": "原负责人调岗，交接给同组销售"},
    FollowUpIn: {
        "method": "电话",
        "summary": "客户确认铺贴面积约 300 平米，下周到店看样",
        "happened_at": "2026-03-02T10:30:00+08:00",
        "next_plan": "带 800x800 抛釉砖样品上门",
        "next_follow_up_on": "2026-03-09",
    },
    CustomerListQuery: {**CUSTOMER_FILTERS, "page": 1, "page_size": 20},
    ExportQuery: {**CUSTOMER_FILTERS, "format": "xlsx"},
    # --- custom fields and imports
    CustomFieldIn: {
        "key": "project_type",
        "label": "项目类型",
        "kind": "enum",
        "options": ["新房装修", "旧房改造", "商业空间", "工程项目"],
        "is_required": False,
        "is_tag_dimension": True,
    },
    CustomFieldPatch: {"label": "项目类型（装修）", "is_required": True},
    ImportIn: {"on_duplicate": "merge"},
    # The file itself is the multipart part "file": JSON lines, one archived message a line.
    ArchiveImportIn: {},
    # --- rule sets
    RuleCheckIn: {"kind": "grading", "document": GRADING_DOCUMENT},
    # The boss names a team to work on its set; a manager's scope is always their own team.
    RulePreviewIn: {"kind": "grading", "document": GRADING_DOCUMENT, "team_id": 1},
    RuleScopeQuery: {"team_id": 1},
    DraftIn: {"kind": "grading", "document": GRADING_DOCUMENT, "note": "展会客户升为 B"},
    DraftPatch: {"document": GRADING_DOCUMENT, "note": "展会客户升为 B"},
    PublishIn: {"reason": "展会客户的成交率高，跟进优先级提高"},
    RollbackIn: {"kind": "grading", "version": 1, "reason": "新规则把太多客户降级，先回到上一版"},
    HistoryQuery: {"kind": "grading", "team_id": 1},
    # --- chat capture: a dictionary with 样品 as a new category, tried on a day's chat
    CapturePreviewIn: {
        "messages": [
            "李总，已发送正式报价单，请查收",
            "合同还没签，定金下周付",
            "我向领导汇报价格后再定",
            "客户说有色差，要退货",
        ],
        "dictionary": {
            **DEFAULT_DOCUMENTS["keywords"],
            "categories": [
                *DEFAULT_DOCUMENTS["keywords"]["categories"],
                {"name": "样品", "words": ["样品", "寄样", "看样"]},
            ],
        },
    },
    # --- notifications and tasks
    NotificationListQuery: {"status": "failed", "page": 1, "page_size": 20},
    TaskIn: {
        "title": "给恒达装饰送样品",
        "assignee_id": 5,
        "customer_id": 1,
        "detail": "800x800 抛釉砖两块，顺便确认铺贴面积",
        "due_at": "2026-03-03T17:00:00+08:00",
    },
    TaskQuery: {"status": "open", "assignee_id": 5, "page": 1, "page_size": 20},
    SnoozeIn: {"hours": 24},
    TaskReassignIn: {"assignee_id": 6, "reason": "客户在宁乡，交给负责宁乡的同事"},
    # --- the public pool
    PoolQuery: {"q": "恒达", "page": 1, "page_size": 20},
    PoolAssignIn: {"owner_id": 5, "reason": "客户在长沙县，分给负责该区域的销售"},
    AutoAssignIn: {"team_id": 1, "strategy": "least_loaded"},
    ReleaseIn: {"reason": "客户已选定其他供应商，暂时没有需求"},
    # --- email
    EmailTemplateIn: {
        "name": "产品画册",
        "subject": "{公司}最新产品画册",
        "body": "{客户}您好：\n\n附件是我们最新的瓷砖和卫浴产品画册，欢迎到店看样。\n\n"
        "{销售} {销售手机}",
    },
    EmailTemplatePatch: {"subject": "{公司}2026 春季产品画册", "is_active": True},
    EmailTemplateQuery: {"include_inactive": False},
    EmailAttachmentsIn: {},  # the files go in the multipart part "files"
    EmailPreviewQuery: {"customer_id": 1},
    EmailSendIn: {"template_id": 1, "to": "li@hengda.example.com"},
    # --- orders and the approval flow
    ApprovalFlowIn: {
        "nodes": [
            {"name": "主管审批", "approver": "manager", "skippable": False},
            {"name": "财务审核", "approver": "boss", "skippable": True},
        ]
    },
    OrderIn: {"number": "SO-20260302-001", "customer_id": 1, "amount": 86000},
    OrderQuery: {"status": "pending", "customer_id": 1, "page": 1, "page_size": 20},
    OrderApproveIn: {"step_id": 1, "comment": "价格在授权范围内"},
    OrderRejectIn: {"step_id": 1, "comment": "折扣超出授权，请重新报价"},
    ExpediteIn: {"reason": "客户工地下周开工，需要提前排产"},
    ExpediteReportQuery: {"since": "2026-03-01", "until": "2026-03-31"},
    # --- analytics: March against February, the project customers of one team
    FunnelQuery: {
        "start": "2026-03-01",
        "end": "2026-04-01",
        "compare_start": "2026-02-01",
        "compare_end": "2026-03-01",
        "region": "长沙县",
        "source": "展会获取",
        "category": "工程客户",
        "grade": "A",
        "team_id": 1,
    },
    ForecastQuery: {"team_id": 1, "backtest_months": 12},
    KpiQuery: {
        "start": "2026-03-01",
        "end": "2026-04-01",
        "compare_start": "2026-02-01",
        "compare_end": "2026-03-01",
        "team_id": 1,
    },
    DataQualityQuery: {"month": "2026-03", "team_id": 1},
    HealthQuery: {"month": "2026-03", "team_id": 1},
    RadarQuery: {"month": "2026-03", "user_id": 5},
    # --- similar won deals, and hints for the seed's new customer
    SimilarDealsQuery: {"limit": 3},
    HintsIn: {"description": "厂房面积5000平，生产陶瓷制品"},
}
