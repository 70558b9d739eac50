"""Email templates and sending from a customer's profile, through HTTP, a real RQ worker and a
real SMTP server on 127.0.0.1 (aiosmtpd)."""

from __future__ import annotations

import io
from datetime import datetime

from rq import Queue, SimpleWorker
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from crm import emails
from models import Customer, EmailTemplate, FollowUp, OutgoingEmail, Task
from tests.conftest import SMTP_USER
from tests.factories import make_company, make_customer, sign_in
from wecrm.demo import seeding
from wecrm.demo.brochure import BROCHURE_FILENAME, brochure_pdf
from workers import queues

# Binary on purpose: a NUL, high bytes and CRLFs must arrive exactly as stored.
BROCHURE = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\r\n<< /Type /Catalog >>\x00\xff\nendobj\n%%EOF\n"
COMPANY = "湖南湘瓷建材有限公司"


def _work(runtime) -> None:
    SimpleWorker([queues.MAIL], connection=runtime.redis).work(burst=True)


def _mail_jobs(runtime) -> list[str]:
    return [j.func_name for j in Queue(queues.MAIL, connection=runtime.redis).get_jobs()]


def _create_template(client, headers, **values):
    body = {"name": "产品手册", "subject": "{客户}，您好：{公司}产品手册", "body": "正文"} | values
    response = client.post("/api/v1/email-templates", headers=headers, json=body)
    assert response.status_code == 201, response.json
    return response.json


def _upload(client, headers, template_id, *files):
    # Encoded in memory: the test client would spool a large body to a file it never closes.
    parts = [FileStorage(io.BytesIO(data), filename=name) for name, data in files]
    boundary, body = encode_multipart({"files": parts})
    return client.post(
        f"/api/v1/email-templates/{template_id}/attachments",
        headers=headers,
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def _rows(session, model):
    session.rollback()  # end the read transaction: a SQLite snapshot would hide the worker's writes
    session.expire_all()  # and forget rows loaded before the worker changed them
    return list(session.scalars(select(model).order_by(model.id)))


def test_a_rep_sends_the_brochure_template_and_it_arrives_filled_in_and_on_the_timeline(
    client, session, clock, fake_wecom, runtime, smtp_server, use_smtp
):
    company = make_company(session)
    manager, rep = company.managers[0], company.reps[0][0]
    rep.mobile, rep.email = "13975102231", "rep00@xiangci.example.com"
    session.commit()
    customer = make_customer(
        session, rep, clock(), name="刘建国", company="长沙恒达装饰工程有限公司"
    )
    manager_headers = sign_in(client, fake_wecom, manager)
    template = _create_template(
        client,
        manager_headers,
        subject="{客户}，您好：{公司}瓷砖产品手册",
        body="{客户}（{客户公司}）您好：\n附件是产品手册。\n{销售} {销售手机} {销售邮箱}\n{公司}",
    )
    uploaded = _upload(client, manager_headers, template["id"], ("湘瓷产品手册.pdf", BROCHURE))
    assert uploaded.status_code == 201, uploaded.json
    assert [(a["filename"], a["size_bytes"]) for a in uploaded.json["attachments"]] == [
        ("湘瓷产品手册.pdf", len(BROCHURE))
    ]

    headers = sign_in(client, fake_wecom, rep)
    patched = client.patch(
        f"/api/v1/customers/{customer.id}", headers=headers, json={"email": " Liu.JG@Example.COM "}
    )
    assert patched.status_code == 200 and patched.json["email"] == "Liu.JG@example.com"
    preview = client.get(
        f"/api/v1/email-templates/{template['id']}/preview?customer_id={customer.id}",
        headers=headers,
    )
    assert preview.status_code == 200, preview.json
    assert preview.json["subject"] == f"刘建国，您好：{COMPANY}瓷砖产品手册"
    assert preview.json["to_address"] == "Liu.JG@example.com"

    clock.advance(minutes=5)
    sent = client.post(
        f"/api/v1/customers/{customer.id}/emails",
        headers=headers,
        json={"template_id": template["id"]},
    )
    assert sent.status_code == 202, sent.json
    assert (sent.json["status"], sent.json["to_address"]) == ("pending", "Liu.JG@example.com")
    assert _mail_jobs(runtime) == ["workers.mail.send_mail"]
    assert smtp_server.envelopes == []  # nothing goes out inside the request
    _work(runtime)

    (envelope,) = smtp_server.envelopes
    assert (envelope.mail_from, envelope.rcpt_tos) == (SMTP_USER, ["Liu.JG@example.com"])
    (message,) = smtp_server.messages
    assert message["Subject"] == f"刘建国，您好：{COMPANY}瓷砖产品手册"
    assert message["From"].addresses[0].display_name == COMPANY
    assert message["From"].addresses[0].addr_spec == SMTP_USER
    assert message["To"] == "Liu.JG@example.com"
    assert message.get_body(("plain",)).get_content().splitlines() == [
        "刘建国（长沙恒达装饰工程有限公司）您好：",
        "附件是产品手册。",
        "销售00 13975102231 rep00@xiangci.example.com",
        COMPANY,
    ]
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "湘瓷产品手册.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == BROCHURE

    listed = client.get(f"/api/v1/customers/{customer.id}/emails", headers=headers)
    (item,) = listed.json["items"]
    assert (item["status"], item["attempts"]) == ("sent", 0)
    assert datetime.fromisoformat(item["sent_at"]) == clock()
    assert item["attachments"] == [
        {
            "filename": "湘瓷产品手册.pdf",
            "content_type": "application/pdf",
            "size_bytes": len(BROCHURE),
        }
    ]
    detail = client.get(f"/api/v1/customers/{customer.id}", headers=headers).json
    follow_up = detail["timeline"][0]["follow_up"]
    assert follow_up["id"] == item["follow_up_id"]
    assert (follow_up["method"], follow_up["source"]) == ("邮件", "email")
    assert follow_up["summary"] == (
        f"发送邮件《刘建国，您好：{COMPANY}瓷砖产品手册》至 Liu.JG@example.com"
    )
    assert follow_up["author"]["id"] == rep.id
    (brochure,) = follow_up["attachments"]
    download = client.get(
        f"/api/v1/customers/{customer.id}/attachments/{brochure['id']}", headers=headers
    )
    assert download.status_code == 200 and download.data == BROCHURE
    download.close()
    assert datetime.fromisoformat(detail["customer"]["last_follow_up_at"]) == clock()


def test_an_emailed_quote_runs_the_same_triggers_as_a_typed_follow_up(
    client, session, clock, fake_wecom, runtime, smtp_server, use_smtp
):
    company = make_company(session)
    manager, rep = company.managers[0], company.reps[0][0]
    customer = make_customer(session, rep, clock(), stage="意向", email="buyer@example.com")
    template = _create_template(
        client, sign_in(client, fake_wecom, manager), name="正式报价", subject="已发送正式报价单"
    )
    _upload(client, sign_in(client, fake_wecom, manager), template["id"], ("报价单.pdf", BROCHURE))

    headers = sign_in(client, fake_wecom, rep)
    client.post(
        f"/api/v1/customers/{customer.id}/emails",
        headers=headers,
        json={"template_id": template["id"]},
    )
    _work(runtime)

    assert len(smtp_server.envelopes) == 1
    (fresh,) = _rows(session, Customer)
    assert fresh.stage == "报价"  # the default trigger: "已发送正式报价单" with a PDF
    (task,) = _rows(session, Task)
    assert (task.assignee_id, task.origin) == (manager.id, "rule:正式报价单已发送")


def test_a_rep_cannot_email_another_reps_customer_and_nothing_is_written(
    client, session, clock, fake_wecom, runtime, use_smtp
):
    company = make_company(session)
    manager, rep, other = company.managers[0], company.reps[0][0], company.reps[0][1]
    theirs = make_customer(session, other, clock(), email="theirs@example.com")
    template = _create_template(client, sign_in(client, fake_wecom, manager))
    headers = sign_in(client, fake_wecom, rep)

    for response in (
        client.post(
            f"/api/v1/customers/{theirs.id}/emails",
            headers=headers,
            json={"template_id": template["id"]},
        ),
        client.get(f"/api/v1/customers/{theirs.id}/emails", headers=headers),
        client.get(
            f"/api/v1/email-templates/{template['id']}/preview?customer_id={theirs.id}",
            headers=headers,
        ),
    ):
        assert response.status_code == 404
        assert response.json["error"]["message"] == "客户不存在或无权访问"
    assert _rows(session, OutgoingEmail) == []
    assert _mail_jobs(runtime) == []


def test_sending_without_an_smtp_server_configured_is_refused_in_chinese(
    client, session, clock, fake_wecom, runtime
):
    assert not runtime.settings.email_configured
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), email="buyer@example.com")
    template = _create_template(client, sign_in(client, fake_wecom, company.boss))

    response = client.post(
        f"/api/v1/customers/{customer.id}/emails",
        headers=sign_in(client, fake_wecom, rep),
        json={"template_id": template["id"]},
    )

    assert response.status_code == 400
    assert response.json["error"]["code"] == "email_not_configured"
    assert "尚未配置邮件服务器" in response.json["error"]["message"]
    assert _rows(session, OutgoingEmail) == []


def test_the_recipient_is_the_typed_address_or_the_customers_and_must_be_an_address(
    client, session, clock, fake_wecom, runtime, smtp_server, use_smtp
):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), name="无邮箱客户")
    template = _create_template(client, sign_in(client, fake_wecom, company.boss))
    headers = sign_in(client, fake_wecom, rep)
    url = f"/api/v1/customers/{customer.id}/emails"

    missing = client.post(url, headers=headers, json={"template_id": template["id"]})
    assert missing.status_code == 422
    assert missing.json["error"] == {
        "code": "no_recipient",
        "message": "客户「无邮箱客户」没有登记邮箱，请填写收件人或先补充客户邮箱",
        "field": "to",
    }
    malformed = client.post(
        url, headers=headers, json={"template_id": template["id"], "to": "zhang@qq"}
    )
    assert malformed.status_code == 422
    assert malformed.json["error"]["message"] == "邮箱格式不正确：zhang@qq"
    bad_profile = client.patch(
        f"/api/v1/customers/{customer.id}", headers=headers, json={"email": "张三@qq.com"}
    )
    assert bad_profile.status_code == 422
    assert bad_profile.json["error"] == {
        "code": "invalid_email",
        "message": "邮箱格式不正确：张三@qq.com",
        "field": "email",
    }
    boss_headers = sign_in(client, fake_wecom, company.boss)
    retired = _create_template(client, boss_headers, name="旧版")
    client.delete(f"/api/v1/email-templates/{retired['id']}", headers=boss_headers)
    for who, status in ((headers, 404), (boss_headers, 409)):
        response = client.post(
            url, headers=who, json={"template_id": retired["id"], "to": "a@example.com"}
        )
        assert response.status_code == status  # reps no longer see it; managers are told
    assert _rows(session, OutgoingEmail) == []

    typed = client.post(
        url, headers=headers, json={"template_id": template["id"], "to": "ｂｕｙｅｒ＠ＱＱ.com"}
    )
    assert typed.status_code == 202 and typed.json["to_address"] == "buyer@qq.com"
    _work(runtime)
    assert [e.rcpt_tos for e in smtp_server.envelopes] == [["buyer@qq.com"]]


def test_template_placeholders_and_fields_are_checked_when_saved_with_chinese_messages(
    client, session, fake_wecom
):
    company = make_company(session)
    headers = sign_in(client, fake_wecom, company.managers[0])
    post = "/api/v1/email-templates"

    unknown = client.post(
        post, headers=headers, json={"name": "a", "subject": "您好", "body": "{客户名}您好"}
    )
    assert unknown.status_code == 422
    error = unknown.json["error"]
    assert (error["code"], error["field"]) == ("bad_placeholder", "body")
    assert error["message"].startswith(
        "邮件正文中的占位符「{客户名}」不认识，可用：{客户}（客户名称）"
    )
    braces = client.post(
        post, headers=headers, json={"name": "a", "subject": "优惠 {客户", "body": "x"}
    )
    assert braces.json["error"]["message"] == (
        "邮件主题中的花括号不成对（要写花括号本身请用 {{ 和 }}）"
    )
    positional = client.post(
        post, headers=headers, json={"name": "a", "subject": "{0}", "body": "x"}
    )
    assert "占位符「{0}」不认识" in positional.json["error"]["message"]
    blank = client.post(post, headers=headers, json={"name": "  ", "subject": "s", "body": "x"})
    assert blank.json["error"]["message"] == "模板名称不能为空"

    template = _create_template(client, headers, body="价格 {{含税}}，{销售}")
    duplicate = client.post(
        post, headers=headers, json={"name": "产品手册", "subject": "s", "body": "x"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json["error"]["message"] == "已有名为「产品手册」的邮件模板"
    patched = client.patch(
        f"{post}/{template['id']}", headers=headers, json={"subject": "{销售手机 }"}
    )
    assert (
        patched.status_code == 422 and "「{销售手机 }」不认识" in patched.json["error"]["message"]
    )
    assert len(_rows(session, EmailTemplate)) == 1


def test_reps_read_active_templates_of_the_company_and_their_team_but_never_edit_them(
    client, session, clock, fake_wecom, runtime
):
    company = make_company(session)
    manager, rep = company.managers[1], company.reps[1][0]
    boss_headers = sign_in(client, fake_wecom, company.boss)
    manager_headers = sign_in(client, fake_wecom, manager)
    house = _create_template(client, boss_headers, name="公司通用")
    kept = _create_template(client, manager_headers, name="常用")
    retired = _create_template(client, manager_headers, name="旧版")
    assert (house["team_id"], kept["team_id"]) == (None, manager.team_id)
    deleted = client.delete(f"/api/v1/email-templates/{retired['id']}", headers=manager_headers)
    assert deleted.status_code == 200 and deleted.json["is_active"] is False

    headers = sign_in(client, fake_wecom, rep)
    listed = client.get("/api/v1/email-templates?include_inactive=true", headers=headers).json
    assert [t["name"] for t in listed["items"]] == ["公司通用", "常用"]
    assert listed["placeholders"] == emails.PLACEHOLDERS
    assert client.get(f"/api/v1/email-templates/{kept['id']}", headers=headers).status_code == 200
    assert (
        client.get(f"/api/v1/email-templates/{retired['id']}", headers=headers).status_code == 404
    )
    managed = client.get("/api/v1/email-templates?include_inactive=true", headers=manager_headers)
    assert [t["name"] for t in managed.json["items"]] == ["公司通用", "常用", "旧版"]
    other_rep = sign_in(client, fake_wecom, company.reps[0][0])
    listed = client.get("/api/v1/email-templates", headers=other_rep).json["items"]
    assert [t["name"] for t in listed] == ["公司通用"]

    url = f"/api/v1/email-templates/{kept['id']}"
    refused = [
        client.post(
            "/api/v1/email-templates",
            headers=headers,
            json={"name": "x", "subject": "s", "body": "b"},
        ),
        client.patch(url, headers=headers, json={"subject": "改"}),
        client.delete(url, headers=headers),
        _upload(client, headers, kept["id"], ("手册.pdf", BROCHURE)),
    ]
    for response in refused:
        assert response.status_code == 403
        assert response.json["error"]["message"] == "只有主管和老板可以编辑邮件模板"
    (template,) = [t for t in _rows(session, EmailTemplate) if t.id == kept["id"]]
    assert (template.subject, template.is_active) == (kept["subject"], True)


def test_a_manager_edits_their_teams_templates_reads_the_companys_and_never_sees_another_teams(
    client, session, clock, fake_wecom, runtime
):
    company = make_company(session)
    boss = sign_in(client, fake_wecom, company.boss)
    ours, theirs = (sign_in(client, fake_wecom, m) for m in company.managers)
    house = _create_template(client, boss, name="公司通用")
    mine = _create_template(client, ours, name="一组报价")
    other = _create_template(client, theirs, name="二组报价")
    for_team = _create_template(client, boss, name="老板给二组", team_id=company.teams[1].id)
    assert for_team["team_id"] == company.teams[1].id

    listed = client.get("/api/v1/email-templates?include_inactive=true", headers=ours).json
    assert [t["name"] for t in listed["items"]] == ["一组报价", "公司通用"]
    hidden = f"/api/v1/email-templates/{other['id']}"
    missing = "/api/v1/email-templates/2000000000"
    for method, body in (("get", None), ("patch", {"subject": "改"}), ("delete", None)):
        call = getattr(client, method)
        answers = [call(url, headers=ours, json=body) for url in (hidden, missing)]
        assert answers[0].status_code == 404 and answers[0].json == answers[1].json
    assert _upload(client, ours, other["id"], ("手册.pdf", BROCHURE)).status_code == 404

    company_url = f"/api/v1/email-templates/{house['id']}"
    assert client.get(company_url, headers=ours).status_code == 200
    refused = client.patch(company_url, headers=ours, json={"subject": "改"})
    assert refused.status_code == 403
    assert refused.json["error"]["message"] == "公司的邮件模板只有老板可以修改"
    elsewhere = client.post(
        "/api/v1/email-templates",
        headers=ours,
        json={"name": "x", "subject": "s", "body": "b", "team_id": company.teams[1].id},
    )
    assert elsewhere.status_code == 403

    mine_url = f"/api/v1/email-templates/{mine['id']}"
    edited = client.patch(mine_url, headers=ours, json={"body": "新"})
    assert edited.status_code == 200 and edited.json["body"] == "新"
    # A team's name may repeat another team's, never the company's.
    assert _create_template(client, ours, name="二组报价")["team_id"] == company.teams[0].id
    clash = client.post(
        "/api/v1/email-templates",
        headers=ours,
        json={"name": "公司通用", "subject": "s", "body": "b"},
    )
    assert clash.status_code == 409
    by_id = {t.id: t for t in _rows(session, EmailTemplate)}
    assert by_id[other["id"]].subject == other["subject"] and by_id[other["id"]].is_active
    assert by_id[house["id"]].subject == house["subject"]


def test_template_files_are_checked_like_follow_up_uploads(client, session, fake_wecom, runtime):
    company = make_company(session)
    headers = sign_in(client, fake_wecom, company.boss)
    template = _create_template(client, headers)
    limit = runtime.settings.max_attachment_bytes

    cases = [
        (("手册.pdf", b"MZ\x90\x00 an exe"), "附件「手册.pdf」的内容与扩展名不符"),
        (
            ("录音.mp3", b"ID3 audio"),
            "附件「录音.mp3」类型不支持，只能上传：docx、jpeg、jpg、pdf、png、xlsx",
        ),
        (
            ("大.pdf", b"%PDF" + b"0" * limit),
            f"附件「大.pdf」超过 {limit // (1024 * 1024)} MB 上限",
        ),
    ]
    for file, message in cases:
        response = _upload(client, headers, template["id"], ("好.png", b"\x89PNG ok"), file)
        assert response.status_code == 422
        assert response.json["error"]["message"] == message
    assert _rows(session, EmailTemplate)[0].id == template["id"]
    refreshed = client.get(f"/api/v1/email-templates/{template['id']}", headers=headers).json
    assert refreshed["attachments"] == []
    assert not any(runtime.store.root.glob("*/*"))  # nothing stored for a refused upload

    added = _upload(client, headers, template["id"], ("图.png", b"\x89PNG ok")).json
    (picture,) = added["attachments"]
    removed = client.delete(
        f"/api/v1/email-templates/{template['id']}/attachments/{picture['id']}", headers=headers
    )
    assert removed.status_code == 200 and removed.json["attachments"] == []


def test_failed_email_is_retried_by_its_sender_or_a_manager_but_not_another_rep(
    client, session, clock, fake_wecom, runtime, smtp_server, use_smtp
):
    company = make_company(session)
    rep, other, manager = company.reps[0][0], company.reps[0][1], company.managers[0]
    customer = make_customer(session, rep, clock(), email="buyer@example.com")
    template = _create_template(client, sign_in(client, fake_wecom, manager))
    headers = sign_in(client, fake_wecom, rep)
    email = client.post(
        f"/api/v1/customers/{customer.id}/emails",
        headers=headers,
        json={"template_id": template["id"]},
    ).json
    url = f"/api/v1/emails/{email['id']}/retry"

    not_failed = client.post(url, headers=headers)
    assert not_failed.status_code == 409
    assert not_failed.json["error"]["message"] == "只有发送失败的邮件可以重发"
    session.execute(OutgoingEmail.__table__.update().values(status="failed", attempts=5))
    session.commit()
    assert client.post(url, headers=sign_in(client, fake_wecom, other)).status_code == 404
    retried = client.post(url, headers=sign_in(client, fake_wecom, manager))
    assert retried.status_code == 200
    assert (retried.json["status"], retried.json["attempts"]) == ("pending", 0)
    _work(runtime)
    assert len(smtp_server.envelopes) == 1
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 1


def test_the_demo_brochure_template_reaches_a_demo_customer_with_a_well_formed_pdf(
    client, session, clock, fake_wecom, runtime, smtp_server, use_smtp
):
    company = seeding.seed_company(session, now=clock(), customer_count=30)
    seeding.seed_email_templates(session, author=company.boss, store=runtime.store, now=clock())
    session.commit()
    customer = session.scalars(
        select(Customer).where(Customer.email.is_not(None), Customer.owner_id.is_not(None))
    ).first()
    assert customer.email.endswith("@example.com")
    owner = next(rep for rep in company.reps if rep.id == customer.owner_id)
    headers = sign_in(client, fake_wecom, owner)
    templates = client.get("/api/v1/email-templates", headers=headers).json["items"]
    assert [t["name"] for t in templates] == sorted(name for name, *_ in seeding.EMAIL_TEMPLATES)
    brochure = next(t for t in templates if t["attachments"])

    sent = client.post(
        f"/api/v1/customers/{customer.id}/emails",
        headers=headers,
        json={"template_id": brochure["id"]},
    )
    assert sent.status_code == 202, sent.json
    _work(runtime)

    (message,) = smtp_server.messages
    assert message["Subject"] == f"{customer.name}您好：{COMPANY}瓷砖卫浴产品手册"
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == BROCHURE_FILENAME
    pdf = attachment.get_content()
    assert pdf == brochure_pdf() and pdf.endswith(b"%%EOF\n")
    # Every cross-reference entry points at its object, as PDF readers require.
    xref = int(pdf.rsplit(b"startxref\n", 1)[1].split()[0])
    entries = pdf[xref:].split(b"\n")[3:8]
    for number, entry in enumerate(entries, start=1):
        offset = int(entry.split()[0])
        assert pdf[offset:].startswith(b"%d 0 obj" % number)
