"""/email-templates and a customer's emails: managers keep templates, reps send them, a worker
delivers them over SMTP (workers/mail.py)."""

from __future__ import annotations

from typing import Any

from crm import emails, followups
from miniapp_api import api
from miniapp_api.context import actor, now, runtime, session
from miniapp_api.routing import operation, uploaded_files
from miniapp_api.schemas import (
    EmailAttachmentsIn,
    EmailPreviewOut,
    EmailPreviewQuery,
    EmailSendIn,
    EmailTemplateIn,
    EmailTemplateList,
    EmailTemplateOut,
    EmailTemplatePatch,
    EmailTemplateQuery,
    OutgoingEmailList,
    OutgoingEmailOut,
)


@operation(
    api,
    "GET",
    "/email-templates",
    summary="邮件模板列表（含可用占位符）",
    tag="emails",
    query=EmailTemplateQuery,
    response=EmailTemplateList,
)
def list_email_templates(query: EmailTemplateQuery) -> Any:
    templates = emails.list_templates(
        session(), actor=actor(), include_inactive=query.include_inactive
    )
    return {"items": templates, "placeholders": emails.PLACEHOLDERS}


@operation(
    api,
    "POST",
    "/email-templates",
    summary="新建邮件模板（老板：公司或指定团队；主管：本团队）",
    tag="emails",
    body=EmailTemplateIn,
    response=EmailTemplateOut,
    status=201,
)
def create_email_template(body: EmailTemplateIn) -> Any:
    return emails.create_template(session(), actor=actor(), now=now(), **body.model_dump())


@operation(
    api,
    "GET",
    "/email-templates/{template_id}",
    summary="邮件模板详情",
    tag="emails",
    response=EmailTemplateOut,
)
def get_email_template(template_id: int) -> Any:
    return emails.get_template(session(), actor=actor(), template_id=template_id)


@operation(
    api,
    "PATCH",
    "/email-templates/{template_id}",
    summary="修改邮件模板（公司模板归老板，团队模板归本团队主管）",
    tag="emails",
    body=EmailTemplatePatch,
    response=EmailTemplateOut,
)
def update_email_template(template_id: int, body: EmailTemplatePatch) -> Any:
    return emails.update_template(
        session(),
        actor=actor(),
        template_id=template_id,
        changes=body.model_dump(exclude_unset=True),
        now=now(),
    )


@operation(
    api,
    "DELETE",
    "/email-templates/{template_id}",
    summary="停用邮件模板（公司模板归老板，团队模板归本团队主管）",
    tag="emails",
    response=EmailTemplateOut,
)
def deactivate_email_template(template_id: int) -> Any:
    return emails.deactivate_template(session(), actor=actor(), template_id=template_id, now=now())


@operation(
    api,
    "POST",
    "/email-templates/{template_id}/attachments",
    summary="上传邮件模板附件（PDF、图片、Word、Excel）",
    tag="emails",
    body=EmailAttachmentsIn,
    files="files",
    response=EmailTemplateOut,
    status=201,
)
def add_email_template_attachments(template_id: int, body: EmailAttachmentsIn) -> Any:
    uploads = [followups.Upload(filename=name, data=data) for name, data in uploaded_files()]
    return emails.add_attachments(
        session(),
        actor=actor(),
        template_id=template_id,
        uploads=uploads,
        store=runtime().store,
        max_attachment_bytes=runtime().settings.max_attachment_bytes,
        now=now(),
    )


@operation(
    api,
    "DELETE",
    "/email-templates/{template_id}/attachments/{attachment_id}",
    summary="删除邮件模板附件（公司模板归老板，团队模板归本团队主管）",
    tag="emails",
    response=EmailTemplateOut,
)
def remove_email_template_attachment(template_id: int, attachment_id: int) -> Any:
    return emails.remove_attachment(
        session(), actor=actor(), template_id=template_id, attachment_id=attachment_id, now=now()
    )


@operation(
    api,
    "GET",
    "/email-templates/{template_id}/preview",
    summary="预览发给某个客户的邮件",
    tag="emails",
    query=EmailPreviewQuery,
    response=EmailPreviewOut,
)
def preview_email(template_id: int, query: EmailPreviewQuery) -> Any:
    return emails.preview(
        session(),
        actor=actor(),
        template_id=template_id,
        customer_id=query.customer_id,
        company_name=runtime().settings.company_name,
    )


@operation(
    api,
    "POST",
    "/customers/{customer_id}/emails",
    summary="用模板给客户发邮件（后台发送，成功后记入跟进）",
    tag="emails",
    body=EmailSendIn,
    response=OutgoingEmailOut,
    status=202,
)
def send_email(customer_id: int, body: EmailSendIn) -> Any:
    settings = runtime().settings
    email = emails.send(
        session(),
        actor=actor(),
        customer_id=customer_id,
        template_id=body.template_id,
        to=body.to,
        now=now(),
        company_name=settings.company_name,
        is_configured=settings.email_configured,
    )
    return email


@operation(
    api,
    "GET",
    "/customers/{customer_id}/emails",
    summary="发给客户的邮件及发送状态",
    tag="emails",
    response=OutgoingEmailList,
)
def list_customer_emails(customer_id: int) -> Any:
    return {"items": emails.list_emails(session(), actor=actor(), customer_id=customer_id)}


@operation(
    api,
    "POST",
    "/emails/{email_id}/retry",
    summary="重发发送失败的邮件（发件人、主管、老板）",
    tag="emails",
    response=OutgoingEmailOut,
)
def retry_email(email_id: int) -> Any:
    email = emails.retry(
        session(),
        actor=actor(),
        email_id=email_id,
        now=now(),
        is_configured=runtime().settings.email_configured,
    )
    return email
