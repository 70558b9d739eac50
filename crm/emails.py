"""Email templates managers keep, and the emails reps send with them from a customer's profile.

Templates follow the org chart: the company's (team None) are the boss's to write, a team's are
its manager's. Everyone sees, and sends with, the company's active templates and their own team's;
another team's template answers like a missing one. Templates hold placeholders ({客户}, {销售},
{公司}, …) and files (a product brochure PDF). `send` renders a template for a
customer in the actor's scope and writes an OutgoingEmail row in the caller's transaction; a job
(workers/mail.py) hands it to the SMTP server with the state changes below and, once the server
took it, logs a 邮件 follow-up on the customer's timeline. The rows live like the WeCom outbox's:
pending → sending (a lease) → sent, back to pending with a back-off after a failure, failed after
MAX_ATTEMPTS, and pending again when the sender or a manager retries. This module never talks to
SMTP, Redis or RQ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session, selectinload

from crm import after_commit, audit, delivery, followups, placeholders
from crm.actors import Actor, customer_scope
from crm.customers import get_customer
from crm.delivery import DeliveryStatus
from crm.email_addresses import normalise_email
from crm.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from crm.storage import FileStore
from crm.text import check_text
from crm.vocab import ContactMethod, FollowUpSource
from models import (
    Customer,
    EmailTemplate,
    EmailTemplateAttachment,
    FollowUp,
    OutgoingEmail,
    Team,
    User,
)
from models.users import Role

# An email goes through the WeCom outbox's states, with its attempt limit and back-off.
EmailStatus = DeliveryStatus

PLACEHOLDERS = {
    "客户": "客户名称",
    "客户公司": "客户公司",
    "销售": "发件人姓名",
    "销售手机": "发件人手机",
    "销售邮箱": "发件人邮箱",
    "公司": "我司名称",
}
TEMPLATE_FIELDS = ("name", "subject", "body", "is_active")
MAX_NAME_CHARS = 64
MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 20000
MAX_TEMPLATE_ATTACHMENTS = 5
# Brochures, price lists and product photos; the follow-up checks (size, magic bytes) apply.
ATTACHMENT_TYPES = {
    suffix: content_type
    for suffix, content_type in followups.ALLOWED_ATTACHMENT_TYPES.items()
    if suffix in (".pdf", ".jpg", ".jpeg", ".png", ".docx", ".xlsx")
}
LIST_LIMIT = 100


class EmailNotConfigured(DomainError):
    """No SMTP server is configured, so nothing could be delivered."""

    code = "email_not_configured"

    def __init__(self) -> None:
        super().__init__("尚未配置邮件服务器（WECRM_SMTP_URL），暂时不能发送邮件，请联系管理员")


@dataclass(frozen=True)
class Rendered:
    """A template filled in for one customer, as it would be sent now."""

    subject: str
    body: str
    to_address: str | None
    attachments: list[EmailTemplateAttachment]


# --- templates ----------------------------------------------------------------------------------


def template_scope(actor: Actor) -> ColumnElement[bool]:
    """The templates an actor may see: all for the boss, else the company's and their team's."""
    if actor.role is Role.BOSS:
        return true()
    company = EmailTemplate.team_id.is_(None)
    return or_(company, EmailTemplate.team_id == actor.team_id) if actor.team_id else company


def list_templates(
    session: Session, *, actor: Actor, include_inactive: bool = False
) -> list[EmailTemplate]:
    """Active templates in scope by name; managers and the boss may ask for deactivated ones."""
    query = (
        select(EmailTemplate)
        .where(template_scope(actor))
        .options(selectinload(EmailTemplate.attachments))
        .order_by(EmailTemplate.name, EmailTemplate.id)
    )
    if not (include_inactive and actor.can_manage):
        query = query.where(EmailTemplate.is_active)
    return list(session.scalars(query))


def get_template(session: Session, *, actor: Actor, template_id: int) -> EmailTemplate:
    """One template in scope; a deactivated one exists only for managers and the boss."""
    template = session.scalar(
        select(EmailTemplate)
        .where(EmailTemplate.id == template_id, template_scope(actor))
        .options(selectinload(EmailTemplate.attachments))
    )
    if template is None or not (template.is_active or actor.can_manage):
        raise NotFound("邮件模板")
    return template


def create_template(
    session: Session,
    *,
    actor: Actor,
    name: str,
    subject: str,
    body: str,
    now: datetime,
    team_id: int | None = None,
) -> EmailTemplate:
    """A new active template: a manager's is their team's; the boss's is the company's, or the
    team `team_id` names. Placeholders are checked now."""
    team_id = _team_to_write(session, actor, team_id)
    values = _clean_template({"name": name, "subject": subject, "body": body})
    _refuse_duplicate_name(session, values["name"], team_id=team_id, exclude_id=None)
    template = EmailTemplate(
        **values,
        team_id=team_id,
        is_active=True,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
        attachments=[],
    )
    session.add(template)
    session.flush()
    _audit(session, actor, template, "create", {}, {**values, "team_id": team_id}, now)
    return template


def update_template(
    session: Session,
    *,
    actor: Actor,
    template_id: int,
    changes: Mapping[str, Any],
    now: datetime,
) -> EmailTemplate:
    """Change a template's name, subject, body or whether it is active (its team's manager, or
    the boss)."""
    template = _template_to_write(session, actor, template_id)
    unknown = set(changes) - set(TEMPLATE_FIELDS)
    if unknown:
        raise Invalid(f"未知字段「{sorted(unknown)[0]}」", field=sorted(unknown)[0])
    values: dict[str, Any] = _clean_template({k: v for k, v in changes.items() if k != "is_active"})
    if "is_active" in changes:
        values["is_active"] = bool(changes["is_active"])
    if "name" in values and values["name"] != template.name:
        _refuse_duplicate_name(
            session, values["name"], team_id=template.team_id, exclude_id=template.id
        )
    before = {k: getattr(template, k) for k in values if getattr(template, k) != values[k]}
    if not before:
        return template
    for key, value in values.items():
        setattr(template, key, value)
    template.updated_at = now
    session.flush()
    _audit(session, actor, template, "update", before, {k: values[k] for k in before}, now)
    return template


def deactivate_template(
    session: Session, *, actor: Actor, template_id: int, now: datetime
) -> EmailTemplate:
    """Retire a template: reps no longer see it; sent emails keep what they were."""
    return update_template(
        session, actor=actor, template_id=template_id, changes={"is_active": False}, now=now
    )


def add_attachments(
    session: Session,
    *,
    actor: Actor,
    template_id: int,
    uploads: list[followups.Upload],
    store: FileStore,
    max_attachment_bytes: int,
    now: datetime,
) -> EmailTemplate:
    """Attach files every email from the template will carry; all are checked before any is
    stored."""
    template = _template_to_write(session, actor, template_id)
    if not uploads:
        raise Invalid("请选择要上传的附件", code="required", field="files")
    checked = [followups.check_upload(u, max_attachment_bytes, ATTACHMENT_TYPES) for u in uploads]
    if len(template.attachments) + len(checked) > MAX_TEMPLATE_ATTACHMENTS:
        raise Invalid(f"每个邮件模板最多{MAX_TEMPLATE_ATTACHMENTS}个附件", field="files")
    for upload, suffix, content_type in checked:
        key, digest = store.save(upload.data, suffix=suffix)
        template.attachments.append(
            EmailTemplateAttachment(
                filename=upload.filename,
                content_type=content_type,
                size_bytes=len(upload.data),
                sha256=digest,
                storage_key=key,
            )
        )
    template.updated_at = now
    session.flush()
    names = [upload.filename for upload, _, _ in checked]
    _audit(session, actor, template, "attachments_added", {}, {"files": names}, now)
    return template


def remove_attachment(
    session: Session, *, actor: Actor, template_id: int, attachment_id: int, now: datetime
) -> EmailTemplate:
    """Take a file off a template. The stored file stays while emails waiting to go out or
    follow-ups still name it; the orphan sweep (workers/jobs.py) removes it after that."""
    template = _template_to_write(session, actor, template_id)
    attachment = next((a for a in template.attachments if a.id == attachment_id), None)
    if attachment is None:
        raise NotFound("附件")
    template.attachments.remove(attachment)
    template.updated_at = now
    session.flush()
    _audit(session, actor, template, "attachment_removed", {"file": attachment.filename}, {}, now)
    return template


def _clean_template(values: Mapping[str, Any]) -> dict[str, str]:
    cleaned = {}
    for name, raw in values.items():
        text = check_text(raw if isinstance(raw, str) else "", field=name)
        if name in ("name", "subject"):
            text = text.strip()
        label, limit = {
            "name": ("模板名称", MAX_NAME_CHARS),
            "subject": ("邮件主题", MAX_SUBJECT_CHARS),
            "body": ("邮件正文", MAX_BODY_CHARS),
        }[name]
        if not text.strip():
            raise Invalid(f"{label}不能为空", code="required", field=name)
        if len(text) > limit:
            raise Invalid(f"{label}不能超过{limit}字", field=name)
        if name == "subject" and ("\n" in text or "\r" in text):
            raise Invalid("邮件主题不能换行", field=name)
        if name != "name":
            problem = placeholders.problem(text, PLACEHOLDERS)
            if problem:
                raise Invalid(f"{label}{problem}", code="bad_placeholder", field=name)
        cleaned[name] = text
    return cleaned


def _refuse_duplicate_name(
    session: Session, name: str, *, team_id: int | None, exclude_id: int | None
) -> None:
    """A name is unique among the templates one person picks from: a company template's among
    all (the boss sees all), a team's among the company's and that team's."""
    query = select(EmailTemplate.id).where(EmailTemplate.name == name)
    if team_id is not None:
        query = query.where(or_(EmailTemplate.team_id.is_(None), EmailTemplate.team_id == team_id))
    if exclude_id is not None:
        query = query.where(EmailTemplate.id != exclude_id)
    if session.scalar(query.limit(1)) is not None:
        raise Conflict(f"已有名为「{name}」的邮件模板", code="duplicate_template")


def _team_to_write(session: Session, actor: Actor, team_id: int | None) -> int | None:
    """The scope a new template goes to: the manager's own team, or what the boss names."""
    if actor.role is Role.BOSS:
        if team_id is not None and session.get(Team, team_id) is None:
            raise NotFound("团队")
        return team_id
    if actor.role is not Role.MANAGER or actor.team_id is None:
        raise Forbidden("只有主管和老板可以编辑邮件模板")
    if team_id not in (None, actor.team_id):
        raise Forbidden("主管只能为本团队新建邮件模板")
    return actor.team_id


def _template_to_write(session: Session, actor: Actor, template_id: int) -> EmailTemplate:
    """A template the actor may change: any for the boss, their team's for a manager."""
    if not actor.can_manage:
        raise Forbidden("只有主管和老板可以编辑邮件模板")
    template = get_template(session, actor=actor, template_id=template_id)
    if actor.role is not Role.BOSS and template.team_id != actor.team_id:
        raise Forbidden("公司的邮件模板只有老板可以修改")
    return template


def _audit(
    session: Session,
    actor: Actor,
    template: EmailTemplate,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    now: datetime,
) -> None:
    audit.record(
        session,
        actor=actor,
        entity="email_template",
        entity_id=template.id,
        action=action,
        before=before,
        after=after,
        now=now,
    )


# --- rendering and sending ----------------------------------------------------------------------


def render(
    template: EmailTemplate, *, customer: Customer, sender: User, company_name: str
) -> Rendered:
    """The template filled in for `customer` as `sender` would send it."""
    values = {
        "客户": customer.name,
        "客户公司": customer.company or "",
        "销售": sender.name,
        "销售手机": sender.mobile or "",
        "销售邮箱": sender.email or "",
        "公司": company_name,
    }
    # One line, whatever a customer's name holds: a line break would end the Subject header.
    subject = " ".join(template.subject.format_map(values).split())[:MAX_SUBJECT_CHARS]
    return Rendered(
        subject=subject,
        body=template.body.format_map(values),
        to_address=customer.email,
        attachments=list(template.attachments),
    )


def preview(
    session: Session, *, actor: Actor, template_id: int, customer_id: int, company_name: str
) -> Rendered:
    """What sending the template to a customer in scope would send."""
    customer = get_customer(session, actor=actor, customer_id=customer_id)
    template = get_template(session, actor=actor, template_id=template_id)
    return render(
        template, customer=customer, sender=_user(session, actor), company_name=company_name
    )


def send(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    template_id: int,
    now: datetime,
    company_name: str,
    is_configured: bool,
    to: str | None = None,
) -> OutgoingEmail:
    """Render a template for a customer in scope and queue it; the edge enqueues delivery after
    its commit. The recipient is `to`, else the customer's email."""
    customer = get_customer(session, actor=actor, customer_id=customer_id)
    if not is_configured:
        raise EmailNotConfigured()
    template = get_template(session, actor=actor, template_id=template_id)
    if not template.is_active:
        raise Conflict(f"邮件模板「{template.name}」已停用", code="template_inactive")
    address = normalise_email(to, field="to") if to else customer.email
    if not address:
        raise Invalid(
            f"客户「{customer.name}」没有登记邮箱，请填写收件人或先补充客户邮箱",
            code="no_recipient",
            field="to",
        )
    rendered = render(
        template, customer=customer, sender=_user(session, actor), company_name=company_name
    )
    email = OutgoingEmail(
        template_id=template.id,
        customer_id=customer.id,
        sender_id=actor.user_id,
        to_address=address,
        subject=rendered.subject,
        body=rendered.body,
        # What the follow-up's attachment rows need, so they can point at the same stored files.
        attachments=[
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size_bytes": a.size_bytes,
                "sha256": a.sha256,
                "storage_key": a.storage_key,
            }
            for a in rendered.attachments
        ],
        status=EmailStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(email)
    session.flush()
    after_commit.start(session, after_commit.MAIL)
    return email


def list_emails(session: Session, *, actor: Actor, customer_id: int) -> list[OutgoingEmail]:
    """The emails sent to a customer in scope, newest first, with their delivery status."""
    customer = get_customer(session, actor=actor, customer_id=customer_id)
    return list(
        session.scalars(
            select(OutgoingEmail)
            .where(OutgoingEmail.customer_id == customer.id)
            .order_by(OutgoingEmail.id.desc())
            .limit(LIST_LIMIT)
        )
    )


def retry(
    session: Session, *, actor: Actor, email_id: int, now: datetime, is_configured: bool
) -> OutgoingEmail:
    """Send a failed email again with a fresh set of attempts (its sender, managers, the boss)."""
    email = session.scalar(
        select(OutgoingEmail)
        .join(Customer, Customer.id == OutgoingEmail.customer_id)
        .where(OutgoingEmail.id == email_id, customer_scope(actor))
    )
    if email is None:
        raise NotFound("邮件")
    if email.sender_id != actor.user_id and not actor.can_manage:
        raise Forbidden("只有发件人、主管和老板可以重发邮件")
    if email.status != EmailStatus.FAILED:
        raise Conflict("只有发送失败的邮件可以重发", code="not_failed")
    if not is_configured:
        raise EmailNotConfigured()
    delivery.retry(email, now=now)
    session.flush()
    after_commit.start(session, after_commit.MAIL)
    return email


def _user(session: Session, actor: Actor) -> User:
    user = session.get(User, actor.user_id)
    assert user is not None  # an actor is a signed-in user
    return user


# --- delivery: the state changes the worker makes, each in its own short transaction ----------


def claim_due(
    session: Session, *, now: datetime, limit: int, lease_until: datetime
) -> list[OutgoingEmail]:
    """Lease up to `limit` due emails, oldest first, so that no other worker takes them."""
    return delivery.claim_due(session, OutgoingEmail, now=now, limit=limit, lease_until=lease_until)


def mark_sent(session: Session, *, email_id: int, now: datetime) -> FollowUp | None:
    """The server took the email: mark it sent and log it on the customer's timeline as a 邮件
    follow-up by its sender, with its files, running the follow-up triggers."""
    email = session.get(OutgoingEmail, email_id)
    if email is None or email.status == EmailStatus.SENT:
        return None  # the customer was deleted meanwhile, or a second worker got here first
    customer = session.get(Customer, email.customer_id, with_for_update=True)
    sender = session.get(User, email.sender_id)
    assert customer is not None and sender is not None  # both are foreign keys of the row
    follow_up = followups.add_follow_up(
        session,
        actor=Actor.of(sender),
        customer=customer,
        method=ContactMethod.EMAIL,
        summary=f"发送邮件《{email.subject}》至 {email.to_address}",
        happened_at=now,
        now=now,
        files=[followups.StoredFile(**file) for file in email.attachments],
        source=FollowUpSource.EMAIL,
    )
    email.status = EmailStatus.SENT
    email.sent_at = now
    email.follow_up_id = follow_up.id
    session.flush()
    return follow_up


def defer(session: Session, *, email_id: int, until: datetime) -> None:
    """Put a claimed email back, untried, until `until` (the server was down for another)."""
    email = session.get(OutgoingEmail, email_id)
    if email is not None:
        delivery.defer(email, until=until)
        session.flush()


def record_error(
    session: Session, *, email_id: int, now: datetime, error: str, permanent: bool = False
) -> datetime | None:
    """Delivery failed: retry after a back-off, and fail after MAX_ATTEMPTS tries (or at once
    when the server refused it for good); returns when it is tried next, None when failed."""
    email = session.get(OutgoingEmail, email_id)
    if email is None:
        return None
    delivery.record_error(email, now=now, error=error, permanent=permanent)
    session.flush()
    return None if email.status == EmailStatus.FAILED else email.next_attempt_at


def referenced_storage_keys(session: Session) -> set[str]:
    """Stored files email needs: templates' attachments and those of emails not yet sent (a sent
    email's files are named by its follow-up's attachments)."""
    keys = set(session.scalars(select(EmailTemplateAttachment.storage_key)))
    unsent = session.scalars(
        select(OutgoingEmail.attachments).where(OutgoingEmail.status != EmailStatus.SENT)
    )
    keys |= {file["storage_key"] for files in unsent for file in files}
    return keys
