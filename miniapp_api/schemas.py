"""Request and response shapes; the same models validate, serialise and document the API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    field_validator,
)

from crm import similar, text
from crm.customers import MAX_PAGE_SIZE, SORTS
from crm.fields import CATALOGUE, FIELDS, CustomerField, FieldKind, parse_yes_no
from crm.rules.documents import KINDS
from crm.vocab import Category, ContactMethod, Grade, Stage
from models.delivery import DeliveryStatus
from models.imports import ImportStatus
from models.orders import Approver, OrderStatus, StepStatus
from models.tasks import TaskStatus
from models.users import Role

Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
LongText = Annotated[str, Field(max_length=2000)]
Tag = Annotated[str, Field(min_length=1, max_length=32)]
# An address is checked by the domain (a Chinese message); the schema only bounds its length.
EmailText = Annotated[str, Field(max_length=254)]
CustomValue = str | float | bool | None
SortKey = Literal[tuple(f"{sign}{key}" for key in SORTS for sign in ("", "-"))]  # type: ignore[valid-type]


# The default of an optional field that may be omitted but never sent as null: pydantic does
# not validate defaults, so omission passes while an explicit null fails validation.
NOT_NULL: Any = None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        if not all(text.is_storable(s) for s in _strings(value)):
            raise ValueError(text.BAD_TEXT_MESSAGE)
        return value


def _strings(value: Any) -> list[str]:
    """Every string inside a value (lists and dict keys and values included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    return []


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- auth and people -------------------------------------------------------------------------


class LoginIn(Strict):
    code: Annotated[str, Field(min_length=1, max_length=512)]


class DevLoginIn(Strict):
    userid: Annotated[str, Field(min_length=1, max_length=64)]


class UserBrief(Out):
    id: int
    name: str


class UserOut(Out):
    id: int
    wecom_userid: str
    name: str
    role: Role
    team_id: int | None
    manager_id: int | None
    is_active: bool


class TokenOut(Out):
    token: str
    expires_in: int
    user: UserOut


class UserIn(Strict):
    wecom_userid: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    role: Role
    team_id: Id | None = None
    mobile: Annotated[str, Field(max_length=32)] | None = None
    email: Annotated[str, Field(max_length=128)] | None = None


class UserList(Out):
    items: list[UserOut]


class TeamIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]


class TeamOut(Out):
    id: int
    name: str
    wecom_department_id: int | None


class TeamList(Out):
    items: list[TeamOut]


# --- customers -------------------------------------------------------------------------------


def _yes_no(value: Any) -> Any:
    """Read yes and no as imports and custom fields do (是/否, √/× …), not as pydantic does."""
    if not isinstance(value, str):
        return value
    parsed = parse_yes_no(value)
    if parsed is None:
        raise ValueError("应为是或否")
    return parsed


YesNo = Annotated[bool, BeforeValidator(_yes_no)]


def _field_in(field: CustomerField) -> tuple[Any, Any]:
    """A catalogue field as a write may carry it: (type, default)."""
    value: Any
    if field.kind is FieldKind.ENUM:
        value = field.vocabulary
    elif field.kind is FieldKind.BOOL:
        value = YesNo
    elif field.kind is FieldKind.NUMBER:
        assert field.maximum is not None
        if field.is_whole_number:
            value = Annotated[int, Field(ge=0, le=int(field.maximum))]
        else:
            value = Annotated[float, Field(ge=0, le=float(field.maximum))]
    else:
        min_length = 0 if field.is_nullable else 1
        value = Annotated[str, Field(min_length=min_length, max_length=field.max_length)]
    # A field with no empty state may be omitted ("leave as is") but never sent as null.
    return (value | None, None) if field.is_nullable else (value, NOT_NULL)


def _field_out(field: CustomerField) -> tuple[Any, Any]:
    """A catalogue field as a customer is shown: (type, required)."""
    value: Any = str
    if field.kind is FieldKind.BOOL:
        value = bool
    elif field.kind is FieldKind.NUMBER:
        value = int if field.is_whole_number else float
    return (value | None if field.is_nullable else value), ...


# The plain fields a create or update may carry: every editable field of the catalogue.
CustomerFields: type[Strict] = create_model(
    "CustomerFields",
    __base__=Strict,
    **{f.key: _field_in(f) for f in CATALOGUE if f.is_editable},  # type: ignore[call-overload]
    tags=(Annotated[list[Tag], Field(max_length=20)], NOT_NULL),
    custom_values=(Annotated[dict[str, CustomValue], Field(max_length=50)], NOT_NULL),
)


class CustomerIn(CustomerFields):  # type: ignore[valid-type,misc]
    name: _field_in(FIELDS["name"])[0]  # type: ignore[valid-type]  # required on create
    stage: Stage = Stage.LEAD
    owner_id: Id | None = None


class CustomerPatch(CustomerFields):  # type: ignore[valid-type,misc]
    grade: Grade = NOT_NULL
    reason: Annotated[str, Field(max_length=255)] | None = None


class StageIn(Strict):
    stage: Stage
    cause: Annotated[str, Field(max_length=255)] = ""


class ReassignIn(Strict):
    owner_id: Id | None
    reason: Annotated[str, Field(min_length=1, max_length=255)]


class CustomerFilters(Strict):
    q: Annotated[str, Field(max_length=64)] | None = None
    stage: list[Stage] = []
    grade: list[Grade] = []
    region: Annotated[str, Field(max_length=64)] | None = None
    category: Category | None = None
    owner_id: Id | None = None
    tag: Tag | None = None
    custom: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}:.{1,100}$")]],
        Field(max_length=10),
    ] = Field(default=[], description="自定义字段筛选，形如 key:value")
    sort: SortKey = "-updated_at"  # type: ignore[valid-type]


class CustomerListQuery(CustomerFilters):
    page: Annotated[int, Field(ge=1, le=10000)] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20


class ExportQuery(CustomerFilters):
    format: Literal["csv", "xlsx"] = "xlsx"


# A customer's own values: its id and every field of the catalogue.
CustomerValuesOut: type[Out] = create_model(
    "CustomerValuesOut",
    __base__=Out,
    id=(int, ...),
    **{f.key: _field_out(f) for f in CATALOGUE},  # type: ignore[call-overload]
)


class CustomerOut(CustomerValuesOut):  # type: ignore[valid-type,misc]
    owner: UserBrief | None
    team_id: int | None
    external_userid: str | None
    tags: list[str]
    custom_values: dict[str, Any]
    completeness: int
    last_follow_up_at: datetime | None
    stage_entered_at: datetime
    created_at: datetime
    updated_at: datetime

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_names(cls, value: Any) -> Any:
        return [getattr(t, "tag", t) for t in value]


class CustomerPageOut(Out):
    items: list[CustomerOut]
    total: int
    page: int
    page_size: int


class AttachmentOut(Out):
    id: int
    filename: str
    content_type: str
    size_bytes: int


class RecordingOut(Out):
    """An audio attachment's transcription (crm/recordings.py)."""

    id: int
    attachment_id: int = Field(description="录音文件（跟进附件，始终保留）")
    status: Literal["queued", "running", "done", "failed"] = Field(
        description="queued 排队中，running 转写中，done 已转写，failed 失败（见 reason）"
    )
    reason: str | None = Field(description="失败原因")
    transcript: str | None = Field(description="转写文字；无人说话时为空字符串")
    duration_seconds: float | None
    language: str | None
    finished_at: datetime | None


class CaptureOut(Out):
    """What a chat-made or transcribed follow-up captured (crm/chat_capture.py,
    crm/recordings.py)."""

    categories: list[str] = Field(description="命中的关键词类别，如 报价、合同")
    keywords: list[str] = Field(description="命中的关键词")
    files: list[str] = Field(description="会话中发送的文件（按文件名）")


class FollowUpOut(Out):
    id: int
    customer_id: int
    author: UserBrief | None
    happened_at: datetime
    method: str
    summary: str
    next_plan: str | None
    next_follow_up_on: date | None
    source: str
    transcript: str | None = Field(description="录音的转写文字（全部录音按上传顺序）")
    attachments: list[AttachmentOut]
    recordings: list[RecordingOut] = Field(
        description="录音附件的转写状态；跟进的自动规则在全部录音转写完成或失败后才执行"
    )
    capture: CaptureOut | None = Field(
        default=None,
        description="企业微信会话生成的跟进或录音转写后：命中的关键词和文件",
    )
    withdrawn_at: datetime | None = Field(
        default=None, description="会话中的消息被撤回、不再命中关键词时，跟进被撤销的时间"
    )


class StageChangeOut(Out):
    id: int
    from_stage: str | None
    to_stage: str
    changed_at: datetime
    actor: UserBrief | None
    cause: str


class TaskOut(Out):
    id: int
    title: str
    detail: str | None
    assignee: UserBrief
    cc_id: int | None
    customer_id: int | None
    due_at: datetime | None
    status: str
    origin: str
    created_at: datetime
    done_at: datetime | None


class ContactEventOut(Out):
    """A change of a rep's WeChat contact with the customer (WeCom's ChangeType)."""

    id: int
    change_type: str
    user: UserBrief | None
    at: datetime


class TimelineItem(Out):
    kind: Literal["follow_up", "stage_change", "task", "contact"]
    at: datetime
    follow_up: FollowUpOut | None = None
    stage_change: StageChangeOut | None = None
    task: TaskOut | None = None
    contact: ContactEventOut | None = None


class CustomerDetailOut(Out):
    customer: CustomerOut
    missing_fields: list[str]
    timeline: list[TimelineItem]


class FollowUpIn(Strict):
    method: ContactMethod
    summary: Annotated[
        str,
        Field(
            max_length=5000,
            description="跟进内容；只上传录音时可不填（记为「语音跟进」，内容来自转写）",
        ),
    ] = ""
    happened_at: AwareDatetime | None = None
    next_plan: LongText | None = None
    next_follow_up_on: date | None = None


# --- custom fields ---------------------------------------------------------------------------


class CustomFieldIn(Strict):
    key: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    label: Annotated[str, Field(min_length=1, max_length=64)]
    kind: FieldKind
    options: Annotated[list[Annotated[str, Field(max_length=32)]], Field(max_length=50)] = []
    is_required: bool = False
    is_tag_dimension: bool = False


class CustomFieldPatch(Strict):
    label: Annotated[str, Field(min_length=1, max_length=64)] = NOT_NULL
    options: Annotated[list[Annotated[str, Field(max_length=32)]], Field(max_length=50)] = NOT_NULL
    is_required: bool = NOT_NULL
    is_tag_dimension: bool = NOT_NULL
    is_active: bool = NOT_NULL


class CustomFieldOut(Out):
    id: int
    key: str
    label: str
    kind: str
    options: list[str]
    is_required: bool
    is_tag_dimension: bool
    is_active: bool


class CustomFieldList(Out):
    items: list[CustomFieldOut]


# --- imports and completeness ----------------------------------------------------------------


class ImportIn(Strict):
    on_duplicate: Literal["merge", "skip"] = "skip"


class ImportRowReport(Out):
    """One line of the report: a row merged or skipped, or one problem of a refused row."""

    row: int | None = Field(
        description="表格中的行号（含表头行）；导入中途停止时，最后一条说明停在哪里，行号为空"
    )
    outcome: Literal["created", "merged", "skipped", "error"]
    customer_id: int | None = None
    field: str | None = Field(default=None, description="出问题的列（表头文字）")
    message: str | None = None


class ImportJobOut(Out):
    id: int
    filename: str
    on_duplicate: str
    status: ImportStatus
    total_rows: int
    processed_rows: int = Field(description="已处理（写入或报告）的数据行数，随每批写入更新")
    created_count: int
    merged_count: int
    skipped_count: int
    error_count: int = Field(description="未导入的出错行数")
    report: list[ImportRowReport] = Field(
        description="逐行报告；一行有几个问题就有几条，每条写明行号、列和原因"
    )
    created_at: datetime
    finished_at: datetime | None


class CompletenessRow(Out):
    id: int
    name: str
    customers: int
    average: float


class CompletenessOut(Out):
    overall: float
    customers: int
    by_rep: list[CompletenessRow]
    by_team: list[CompletenessRow]


# --- rule sets -------------------------------------------------------------------------------

RuleKind = Literal[KINDS]  # type: ignore[valid-type]
Reason = Annotated[str, Field(min_length=1, max_length=255)]
RuleDocument = Annotated[
    dict[str, Any], Field(description="规则内容（JSON），格式见 GET /rule-sets/vocabulary")
]


class RuleCheckIn(Strict):
    kind: RuleKind
    document: RuleDocument


RuleTeam = Annotated[
    Id | None,
    Field(description="老板可指定团队（不填为公司规则）；主管总是本团队，不能指定其他团队"),
]


class RuleScopeQuery(Strict):
    team_id: RuleTeam = None


class RulePreviewIn(RuleCheckIn):
    team_id: RuleTeam = None


class DraftIn(RuleCheckIn):
    note: Annotated[str, Field(max_length=255)] | None = None
    team_id: RuleTeam = None


class DraftPatch(Strict):
    document: RuleDocument
    note: Annotated[str, Field(max_length=255)] | None = None


class PublishIn(Strict):
    reason: Reason


class RollbackIn(Strict):
    kind: RuleKind
    version: Annotated[int, Field(ge=0, le=2**31 - 1)]
    reason: Reason
    team_id: RuleTeam = None


class HistoryQuery(Strict):
    kind: RuleKind
    team_id: RuleTeam = None


class ProblemOut(Out):
    path: str
    message: str


class CheckOut(Out):
    valid: bool
    problems: list[ProblemOut]


class DraftOut(Out):
    id: int
    kind: str
    team_id: int | None
    note: str | None
    document: dict[str, Any]
    created_by: int | None
    created_at: datetime
    problems: list[ProblemOut] = []


class RuleSetOut(Out):
    kind: str
    label: str
    team_id: int | None
    inherited: bool = Field(description="团队还没有自己的规则，沿用公司规则")
    active_version: int
    published_at: datetime | None
    document: dict[str, Any]
    drafts: list[DraftOut]


class RuleSetList(Out):
    items: list[RuleSetOut]


class VersionOut(Out):
    version: int
    status: str
    note: str | None
    published_at: datetime | None
    published_by: int | None
    rolled_back_from: int | None
    document: dict[str, Any]


class VersionList(Out):
    kind: str
    team_id: int | None
    items: list[VersionOut]


class PreviewOut(Out):
    kind: str
    team_id: int | None
    valid: bool
    problems: list[ProblemOut]
    scope_customers: int
    changed: int
    transitions: list[dict[str, Any]]
    rules: list[dict[str, Any]]
    sample: list[dict[str, Any]]
    note: str


class RegradeOut(Out):
    total: int
    changed: int
    evaluated_in: str


class PublishOut(Out):
    kind: str
    team_id: int | None
    version: int
    published_at: datetime
    rolled_back_from: int | None
    regraded: RegradeOut | None = None


class VocabularyOut(Out):
    facts: list[dict[str, Any]]
    operators: dict[str, str]
    actions: list[dict[str, Any]]
    placeholders: dict[str, str]
    events: dict[str, str]
    clocks: dict[str, str]


# --- chat capture ----------------------------------------------------------------------------


class CapturePreviewIn(Strict):
    messages: Annotated[
        list[LongText], Field(min_length=1, max_length=500, description="聊天内容，每条一段文字")
    ]
    dictionary: (
        Annotated[
            dict[str, Any],
            Field(description="要试用的词库（kind keywords 的规则内容）；不填则用当前生效的词库"),
        ]
        | None
    ) = None
    team_id: RuleTeam = None


class CaptureHitsOut(Out):
    categories: list[str] = Field(description="命中的类别（按词库顺序）；有类别才会记为跟进")
    keywords: list[str] = Field(description="命中的词")
    negated: list[str] = Field(description="出现了但被否定的词（如“还没报价”），不记为跟进")
    risks: list[str] = Field(description="命中的风险词")


class CapturePreviewOut(Out):
    results: list[CaptureHitsOut] = Field(description="与 messages 一一对应")


# --- notifications ---------------------------------------------------------------------------


class NotificationListQuery(Strict):
    status: DeliveryStatus | None = None
    page: Annotated[int, Field(ge=1, le=10000)] = 1
    page_size: Annotated[int, Field(ge=1, le=100)] = 20


class NotificationOut(Out):
    id: int
    recipient_id: int
    touser: str
    msgtype: str
    content: dict[str, Any]
    customer_id: int | None
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None


class NotificationPageOut(Out):
    items: list[NotificationOut]
    total: int
    page: int
    page_size: int


# --- tasks and 我的今日任务 ------------------------------------------------------------------


class TaskIn(Strict):
    title: Annotated[str, Field(min_length=1, max_length=255)]
    assignee_id: Id | None = None
    customer_id: Id | None = None
    detail: LongText | None = None
    due_at: AwareDatetime | None = None


class TaskQuery(Strict):
    status: TaskStatus | None = TaskStatus.OPEN
    assignee_id: Id | None = None
    page: Annotated[int, Field(ge=1, le=10000)] = 1
    page_size: Annotated[int, Field(ge=1, le=100)] = 20


class SnoozeIn(Strict):
    until: AwareDatetime | None = None
    hours: Annotated[int, Field(ge=1, le=24 * 90)] | None = None


class TaskReassignIn(Strict):
    assignee_id: Id
    reason: Annotated[str, Field(min_length=1, max_length=255)]


class CustomerBrief(Out):
    id: int
    name: str
    stage: str
    grade: str | None


class TaskPageOut(Out):
    items: list[TaskOut]
    total: int
    page: int
    page_size: int


class TodayItemOut(Out):
    kind: Literal["task", "follow_up"]
    title: str
    due_at: datetime | None
    overdue_days: int
    customer: CustomerBrief | None
    task_id: int | None


class TodayOut(Out):
    items: list[TodayItemOut]


# --- the public pool -------------------------------------------------------------------------


class PoolQuery(Strict):
    q: Annotated[str, Field(max_length=64)] | None = None
    page: Annotated[int, Field(ge=1, le=10000)] = 1
    page_size: Annotated[int, Field(ge=1, le=100)] = 20


class PoolItemOut(Out):
    id: int
    name: str
    company: str | None
    region: str | None
    category: str | None
    stage: str
    grade: str | None
    team_id: int | None
    phone: str | None
    released_at: datetime | None
    release_reason: str | None
    days_in_pool: int | None


class PoolPageOut(Out):
    items: list[PoolItemOut]
    total: int
    page: int
    page_size: int


class PoolAssignIn(Strict):
    owner_id: Id
    reason: Annotated[str, Field(min_length=1, max_length=255)]


class ReleaseIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=255)]


class AutoAssignIn(Strict):
    team_id: Id | None = None
    strategy: Literal["round_robin", "least_loaded"] | None = None


class AssignmentOut(Out):
    customer_id: int
    owner_id: int


class AutoAssignOut(Out):
    assigned: list[AssignmentOut]


# --- email templates and emails --------------------------------------------------------------


class EmailTemplateIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    subject: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(min_length=1, max_length=20000)]
    team_id: Id | None = Field(
        default=None, description="老板可指定团队；不填为公司模板。主管的模板总是本团队的"
    )


class EmailTemplatePatch(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)] = NOT_NULL
    subject: Annotated[str, Field(min_length=1, max_length=200)] = NOT_NULL
    body: Annotated[str, Field(min_length=1, max_length=20000)] = NOT_NULL
    is_active: bool = NOT_NULL


class EmailTemplateQuery(Strict):
    include_inactive: bool = False


class EmailAttachmentsIn(Strict):
    """Only the uploaded files (multipart part "files")."""


class EmailPreviewQuery(Strict):
    customer_id: Id


class EmailSendIn(Strict):
    template_id: Id
    to: EmailText | None = Field(default=None, description="收件人；不填则用客户档案里的邮箱")


class EmailAttachmentOut(Out):
    id: int
    filename: str
    content_type: str
    size_bytes: int


class EmailTemplateOut(Out):
    id: int
    team_id: int | None
    name: str
    subject: str
    body: str
    is_active: bool
    created_by: int
    created_at: datetime
    updated_at: datetime
    attachments: list[EmailAttachmentOut]


class EmailTemplateList(Out):
    items: list[EmailTemplateOut]
    placeholders: dict[str, str]


class EmailPreviewOut(Out):
    subject: str
    body: str
    to_address: str | None
    attachments: list[EmailAttachmentOut]


class OutgoingFileOut(Out):
    filename: str
    content_type: str
    size_bytes: int


class OutgoingEmailOut(Out):
    id: int
    template_id: int | None
    customer_id: int
    sender_id: int
    to_address: str
    subject: str
    body: str
    attachments: list[OutgoingFileOut]
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    follow_up_id: int | None
    created_at: datetime
    sent_at: datetime | None


class OutgoingEmailList(Out):
    items: list[OutgoingEmailOut]


# --- orders and the approval flow ------------------------------------------------------------


class ApprovalNodeIn(Strict):
    name: Annotated[str, Field(max_length=32)]
    approver: Approver = Field(description="manager：客户所在团队的主管；boss：老板")
    skippable: bool = Field(default=False, description="#加急# 时可跳过")


class ApprovalFlowIn(Strict):
    nodes: Annotated[list[ApprovalNodeIn], Field(max_length=10)]


class ApprovalNodeOut(Out):
    position: int
    name: str
    approver: Approver
    skippable: bool


class ApprovalFlowOut(Out):
    nodes: list[ApprovalNodeOut]
    is_default: bool


class OrderIn(Strict):
    number: Annotated[str, Field(min_length=1, max_length=64, description="如 SO-20260302-001")]
    customer_id: Id
    amount: Annotated[float, Field(gt=0, lt=1e12)]


class OrderQuery(Strict):
    status: OrderStatus | None = None
    customer_id: Id | None = None
    page: Annotated[int, Field(ge=1, le=10000)] = 1
    page_size: Annotated[int, Field(ge=1, le=100)] = 20


class OrderApproveIn(Strict):
    step_id: Id | None = Field(default=None, description="看到的当前节点；已被处理时返回 409")
    comment: Annotated[str, Field(max_length=255)] | None = None


class OrderRejectIn(Strict):
    step_id: Id | None = Field(default=None, description="看到的当前节点；已被处理时返回 409")
    comment: Annotated[str, Field(min_length=1, max_length=255)]


class ExpediteIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=255)]


class ExpediteReportQuery(Strict):
    since: date
    until: date


class OrderStepOut(Out):
    id: int
    position: int
    name: str
    approver: Approver
    skippable: bool
    status: StepStatus
    decided_by: UserBrief | None
    decided_at: datetime | None
    comment: str | None


class OrderOut(Out):
    id: int
    number: str
    customer: CustomerBrief
    amount: float
    status: OrderStatus
    current_step: str | None
    created_by: UserBrief | None
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None
    expedited_by: UserBrief | None
    expedited_at: datetime | None
    expedite_reason: str | None


class OrderDetailOut(OrderOut):
    steps: list[OrderStepOut]
    waiting_for: list[UserBrief]


class OrderPageOut(Out):
    items: list[OrderOut]
    total: int
    page: int
    page_size: int


class ExpediteOut(Out):
    order: OrderDetailOut
    skipped: list[str]
    remaining: list[str]
    notified: list[str]


class PersonCountOut(Out):
    user_id: int
    name: str
    count: int


class ReasonCountOut(Out):
    reason: str
    count: int


class StepCountOut(Out):
    name: str
    count: int


class ExpediteReportOut(Out):
    since: date
    until: date
    orders_created: int
    expedited: int
    by_person: list[PersonCountOut]
    by_reason: list[ReasonCountOut]
    skipped_steps: list[StepCountOut]


# --- chat archive ----------------------------------------------------------------------------


class ArchiveImportIn(Strict):
    """The export file is the multipart part `file`; no other field."""


class ArchiveRejection(Out):
    line: int = Field(description="文件中的行号（从 1 开始）")
    reason: str = Field(description="无法识别的原因")


class ArchiveImportOut(Out):
    stored: int = Field(description="新存入的消息数；随后由后台生成跟进")
    duplicates: int = Field(description="已经导入过的消息数（按 msgid 去重）")
    rejected: int = Field(description="无法识别的行数")
    rejections: list[ArchiveRejection] = Field(description="前 20 个无法识别的行及原因")


# --- analytics -------------------------------------------------------------------------------


class FunnelQuery(Strict):
    start: date = Field(description="统计期第一天（北京时间）")
    end: date = Field(description="统计期结束日，不含当天：3 月整月为 start=03-01&end=04-01")
    compare_start: date | None = Field(default=None, description="对比期第一天（可选）")
    compare_end: date | None = Field(default=None, description="对比期结束日，不含当天")
    region: Annotated[str, Field(max_length=64)] | None = None
    source: Annotated[str, Field(max_length=32)] | None = None
    category: Category | None = None
    grade: Grade | None = None
    team_id: Id | None = Field(default=None, description="只看一个团队（主管只能是本组）")


class FunnelStageOut(Out):
    stage: Stage
    now: int = Field(description="此刻处于该阶段的客户数")
    entered: int = Field(description="统计期内进入该阶段的客户数（去重）")


class FunnelStepOut(Out):
    from_stage: Stage
    to_stage: Stage
    base: int = Field(description="统计期内进入前一阶段的客户数")
    converted: int = Field(description="其中在统计期结束前进入下一阶段的客户数")
    rate: float | None = Field(description="转化率 converted / base；base 为 0 时为空")


class FunnelDwellOut(Out):
    stage: Stage
    stays: int = Field(description="统计期内结束的停留次数（仍在该阶段的不计）")
    average_days: float | None
    median_days: float | None


class FunnelFiguresOut(Out):
    stages: list[FunnelStageOut]
    steps: list[FunnelStepOut]
    dwell: list[FunnelDwellOut]
    weakest_step: FunnelStepOut | None = Field(
        description="转化率最低的一步（只比较基数足够的步骤）"
    )


class TeamFunnelOut(Out):
    team_id: int | None
    name: str | None
    funnel: FunnelFiguresOut


class RepFunnelOut(Out):
    user_id: int
    name: str
    team_id: int | None
    funnel: FunnelFiguresOut


class FunnelPeriodOut(Out):
    start: date
    end: date
    total: FunnelFiguresOut
    teams: list[TeamFunnelOut]
    reps: list[RepFunnelOut] = Field(description="按当前负责人；公海客户只计入团队和合计")


class FunnelOut(Out):
    period: FunnelPeriodOut
    compare: FunnelPeriodOut | None


class ForecastQuery(Strict):
    team_id: Id | None = Field(default=None, description="只看一个团队（主管只能是本组）")
    backtest_months: int = Field(
        default=12, ge=0, le=12, description="回测的过去月数（最多 12；历史不足的月份不计）"
    )


class RevenueIntervalOut(Out):
    p10: float = Field(description="十分之一的可能低于此值")
    p50: float = Field(description="中位数")
    p90: float = Field(description="十分之一的可能高于此值")
    width: float = Field(description="区间宽度 P90 - P10")


class ForecastWindowOut(Out):
    start: datetime
    end: datetime
    open_deals: int = Field(description="预测时处于潜在、意向、报价的客户数")
    open_amount: float = Field(description="这些客户的预计金额合计")
    revenue: RevenueIntervalOut


class BacktestMonthOut(Out):
    month: date = Field(description="被回测的月份（第一天）")
    anchors: int = Field(description="当时可学习的历史月数")
    open_deals: int
    revenue: RevenueIntervalOut = Field(description="月初按当时已知的数据给出的预测")
    actual: float = Field(description="该月实际成交金额")
    covered: bool = Field(description="实际值是否落在 P10–P90 之内")


class BacktestOut(Out):
    months: list[BacktestMonthOut]
    covered: int
    coverage: float | None = Field(description="落在 P10–P90 之内的月份占比")
    p50_mape: float | None = Field(description="P50 的平均绝对百分比误差")
    mean_width: float | None = Field(description="区间平均宽度（元）")
    mean_relative_width: float | None = Field(description="区间平均宽度 / 月均实际成交金额")


class ForecastOut(Out):
    as_of: datetime
    this_month_won: float = Field(description="本月截至此刻已成交金额")
    this_month_remaining: ForecastWindowOut = Field(description="本月剩余时间的成交金额预测")
    next_month: ForecastWindowOut = Field(description="下月成交金额预测")
    backtest: BacktestOut


class KpiQuery(Strict):
    start: date = Field(description="统计期第一天（北京时间）")
    end: date = Field(description="统计期结束日，不含当天：3 月整月为 start=03-01&end=04-01")
    compare_start: date | None = Field(default=None, description="对比期第一天（可选）")
    compare_end: date | None = Field(default=None, description="对比期结束日，不含当天")
    team_id: Id | None = Field(default=None, description="只看一个团队（主管只能是本组）")


class KpiValueOut(Out):
    key: str = Field(description="稳定的指标代码，如 win_rate")
    name: str = Field(description="指标名，如 成单率")
    unit: Literal["ratio", "days", "customers"] = Field(
        description="ratio 为 0–1 的比例，days 为天数，customers 为客户数"
    )
    value: float | None = Field(description="没有可计算的基数时为空")
    base: int = Field(description="指标的基数：客户数、计划数、人数、待办数等，见定义")
    definition: str = Field(description="指标的口径")


class TeamKpisOut(Out):
    team_id: int | None
    name: str | None
    kpis: list[KpiValueOut]


class RepKpisOut(Out):
    user_id: int
    name: str
    team_id: int | None
    kpis: list[KpiValueOut]


class KpiPeriodOut(Out):
    start: date
    end: date
    total: list[KpiValueOut]
    teams: list[TeamKpisOut]
    reps: list[RepKpisOut] = Field(description="范围内每位在职销售，以及名下有客户的其他人")


class KpiOut(Out):
    period: KpiPeriodOut
    compare: KpiPeriodOut | None


class DataQualityQuery(Strict):
    month: Annotated[str, Field(pattern=r"^2\d{3}-(0[1-9]|1[0-2])$")] = Field(
        description="月份，如 2026-03"
    )
    team_id: Id | None = Field(default=None, description="只看一个团队（主管只能是本组）")


class QualityRowOut(Out):
    user_id: int
    name: str
    team_id: int | None
    profiles: int = Field(description="当月新建、现在在其名下的客户数")
    average: float = Field(description="这些客户的平均资料完整度（百分比）")
    is_eligible: bool = Field(description="新建客户数达到评奖门槛")


class DataQualityOut(Out):
    month: str
    start: date
    end: date
    ranking: list[QualityRowOut] = Field(description="按平均完整度从高到低，同分时客户多的在前")
    winner: QualityRowOut | None = Field(description="当月数据质量奖：达到门槛的第一名")


# --- the rep health score (crm/analytics/health.py) ----------------------------------------


class HealthQuery(Strict):
    month: Annotated[str, Field(pattern=r"^2\d{3}-(0[1-9]|1[0-2])$")] = Field(
        description="月份，如 2026-03"
    )
    team_id: Id | None = Field(default=None, description="只看一个团队（主管只能是本组）")


class RadarQuery(Strict):
    month: Annotated[str, Field(pattern=r"^2\d{3}-(0[1-9]|1[0-2])$")] = Field(
        description="月份，如 2026-03"
    )
    user_id: Id | None = Field(default=None, description="哪位销售（默认自己；须在可见范围内）")


class PartDefinitionOut(Out):
    key: str = Field(description="稳定的分项代码，如 customers_held")
    name: str
    unit: Literal["customers", "customers_per_day", "ratio", "points", "days"] = Field(
        description="原始值的单位：客户数、每天客户数、0–1 的比例、分、天"
    )
    definition: str = Field(description="原始值的口径，以及如何换算成 0–100 分")


class DimensionDefinitionOut(Out):
    key: Literal["efficiency", "quality", "growth"]
    name: str
    definition: str = Field(description="维度得分的口径")
    parts: list[PartDefinitionOut]


class PartScoreOut(Out):
    key: str
    name: str
    unit: str
    value: float | None = Field(description="原始值；没有可计算的基数时为空")
    score: float | None = Field(description="0–100 分；为空时不计入维度得分")
    team_median: float | None = Field(description="同组在职销售该项得分的中位数")


class DimensionScoreOut(Out):
    key: Literal["efficiency", "quality", "growth"]
    name: str
    score: float | None = Field(description="0–100：各分项得分的平均；没有任何分项时为空")
    team_median: float | None = Field(
        description="同组在职销售的中位数；销售本人查看且本组不足 3 人时为空"
    )
    parts: list[PartScoreOut]


class RadarOut(Out):
    dimensions: list[str] = Field(description="雷达图各轴的名称，顺序同 values")
    values: list[float | None] = Field(description="本人各维度得分（0–100）")
    team_medians: list[float | None] = Field(description="同组中位数（0–100）")


class ContactStatsOut(Out):
    days: int = Field(description="当月已取到企业微信统计的天数")
    chat_cnt: int = Field(description="聊天总数：成员主动发过消息的单聊数，按天相加")
    message_cnt: int = Field(description="成员在单聊中发送的消息数")
    reply_percentage: float | None = Field(
        description="已回复聊天占比（%）：客户主动发起的聊天中成员回复的比例，按有聊天的天平均"
    )
    avg_reply_time: float | None = Field(description="平均首次回复时长（分钟），按有聊天的天平均")
    new_contact_cnt: int = Field(description="新增客户数")
    negative_feedback_cnt: int = Field(description="删除或拉黑成员的客户数")


class RepHealthOut(Out):
    user_id: int
    name: str
    team_id: int | None
    dimensions: list[DimensionScoreOut]
    radar: RadarOut
    contact: ContactStatsOut | None = Field(
        description="企业微信联系客户统计（每日拉取）；当月一天也没有取到时为空"
    )


class HealthOut(Out):
    month: str
    start: date
    end: date
    definitions: list[DimensionDefinitionOut] = Field(description="三个维度及其分项的口径")
    reps: list[RepHealthOut] = Field(description="老板：全部在职销售；主管：本组；销售：只有自己")


# --- similar won deals and hints (crm/similar.py) ---------------------------------------------


class SimilarDealsQuery(Strict):
    limit: int = Field(default=5, ge=1, le=20, description="最多返回几个相似成交客户")


class HintsIn(Strict):
    description: Annotated[str, Field(max_length=similar.MAX_DESCRIPTION_CHARS)] = Field(
        description="新客户的情况，如「厂房面积5000平，生产陶瓷制品」"
    )


class PathStepOut(Out):
    stage: Stage
    entered_at: datetime
    days: float = Field(description="距上一步的天数（第一步为 0）")


class CountOut(Out):
    name: str
    count: int


class SimilarDealOut(Out):
    """A won customer, without its phone, email or owner: the path is what a rep learns from."""

    customer_id: int
    name: str
    company: str | None
    category: str | None
    region: str | None
    tags: list[str]
    score: float = Field(description="相似度（BM25），越大越相似")
    won_at: datetime
    days_to_win: float = Field(description="从建档到成交的天数")
    path: list[PathStepOut] = Field(description="成交前的阶段变化")
    methods: list[CountOut] = Field(description="成交前的跟进方式及次数")
    files: list[str] = Field(description="成交前发送过的附件")


class SimilarDealsOut(Out):
    items: list[SimilarDealOut]


class HintsOut(Out):
    deals: list[SimilarDealOut] = Field(description="最相似的成交客户")
    words: list[CountOut] = Field(
        description="这些成交客户跟进中常见、而成交客户总体中不那么常见的词（产品、需求），按客户数"
    )
    concerns: list[CountOut] = Field(description="跟进中命中的关键词类别（报价、合同…），按客户数")
    tags: list[CountOut] = Field(description="这些客户的常见标签")
