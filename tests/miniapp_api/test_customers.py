"""The customer book through HTTP: create, find, read the timeline, change, move, reassign,
follow up with attachments — each change audited, each bad input a clear 4xx."""

from __future__ import annotations

import io

from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from models import AuditEntry, Customer, StageChange
from tests.factories import make_company, make_customer, sign_in

PDF = b"%PDF-1.4\n% quote\n"


def _error(response):
    return response.json["error"]


def test_rep_creates_a_customer_owned_by_themself(client, session, fake_wecom):
    company = make_company(session)
    rep = company.reps[0][0]
    headers = sign_in(client, fake_wecom, rep)
    response = client.post(
        "/api/v1/customers",
        headers=headers,
        json={
            "name": "长沙恒达装饰",
            "phone": "+86 138-0013-8000",
            "region": "长沙县",
            "category": "工程客户",
            "source": "展会获取",
            "expected_amount": 120000,
            "tags": ["需要安装", "需要安装", "竞品接触"],
        },
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["owner"]["id"] == rep.id and body["team_id"] == rep.team_id
    assert body["phone"] == "13800138000"
    assert body["tags"] == ["竞品接触", "需要安装"]
    assert body["stage"] == "潜在"
    assert 0 < body["completeness"] < 100
    history = session.scalars(
        select(StageChange).where(StageChange.customer_id == body["id"])
    ).all()
    assert [(h.from_stage, h.to_stage) for h in history] == [(None, "潜在")]
    audit = session.scalars(select(AuditEntry).where(AuditEntry.entity_id == body["id"])).one()
    assert audit.action == "create" and audit.actor_id == rep.id


def test_a_duplicate_phone_is_refused_without_saying_whose_it_is(
    client, session, fake_wecom, clock
):
    company = make_company(session)
    make_customer(session, company.reps[1][0], clock(), phone="13800138000")
    headers = sign_in(client, fake_wecom, company.reps[0][0])
    response = client.post(
        "/api/v1/customers", headers=headers, json={"name": "撞单客户", "phone": "138 0013 8000"}
    )
    assert response.status_code == 409
    assert _error(response)["code"] == "duplicate_phone"
    assert company.reps[1][0].name not in _error(response)["message"]


def test_validation_errors_name_the_field_in_chinese(client, session, fake_wecom):
    company = make_company(session)
    headers = sign_in(client, fake_wecom, company.reps[0][0])
    cases = [
        ({"phone": "12345"}, "phone"),
        ({"name": "x", "category": "批发客户"}, "category"),
        ({"name": "x", "phone": "12345"}, "phone"),
        ({"name": "x", "expected_amount": -5}, "expected_amount"),
        ({"name": "x", "unknown": 1}, "unknown"),
    ]
    for payload, field in cases:
        response = client.post("/api/v1/customers", headers=headers, json=payload)
        assert response.status_code == 422, payload
        error = _error(response)
        assert error["field"] in (field, "name"), (payload, error)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"])
    not_json = client.post(
        "/api/v1/customers", headers=headers, data="name=x", content_type="application/json"
    )
    assert not_json.status_code == 400 and _error(not_json)["code"] == "bad_json"
    form = client.post("/api/v1/customers", headers=headers, data={"name": "x"})
    assert form.status_code == 415


def test_list_searches_filters_sorts_and_paginates(client, session, fake_wecom, clock):
    company = make_company(session)
    rep = company.reps[0][0]
    make_customer(
        session,
        rep,
        clock(),
        name="恒达装饰",
        company="恒达公司",
        phone="13911112222",
        region="浏阳市",
        tags=["老客户"],
    )
    clock.advance(minutes=1)
    make_customer(
        session, rep, clock(), name="美家建材", region="宁乡市", stage="潜在", expected_amount=5000
    )
    clock.advance(minutes=1)
    make_customer(
        session,
        rep,
        clock(),
        name="顺发工程",
        region="浏阳市",
        category="工程客户",
        expected_amount=90000,
    )
    headers = sign_in(client, fake_wecom, rep)

    def names(query):
        response = client.get(f"/api/v1/customers?{query}", headers=headers)
        assert response.status_code == 200, response.json
        return [c["name"] for c in response.json["items"]]

    assert names("") == ["顺发工程", "美家建材", "恒达装饰"]  # newest change first
    assert names("q=恒达") == ["恒达装饰"]
    assert names("q=1111") == ["恒达装饰"]  # part of a phone number
    assert names("region=浏阳市&sort=name") == sorted(["恒达装饰", "顺发工程"])
    assert names("category=工程客户") == ["顺发工程"]
    assert names("tag=老客户") == ["恒达装饰"]
    assert names("sort=-expected_amount&region=宁乡市") == ["美家建材"]
    page = client.get("/api/v1/customers?page_size=2&page=2", headers=headers).json
    assert page["total"] == 3 and [c["name"] for c in page["items"]] == ["恒达装饰"]
    assert names("q=100%25") == []  # a literal % is not a wildcard
    bad = client.get("/api/v1/customers?sort=phone", headers=headers)
    assert bad.status_code == 422 and _error(bad)["field"] == "sort"


def test_update_records_before_and_after_in_the_audit_trail(client, session, fake_wecom, clock):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), company="旧公司")
    headers = sign_in(client, fake_wecom, rep)
    response = client.patch(
        f"/api/v1/customers/{customer.id}",
        headers=headers,
        json={"company": "新公司", "has_budget": True, "reason": "客户改名"},
    )
    assert response.status_code == 200, response.json
    assert response.json["company"] == "新公司" and response.json["has_budget"] is True
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "update")).one()
    assert entry.before == {"company": "旧公司", "has_budget": False}
    assert entry.after == {"company": "新公司", "has_budget": True}
    assert entry.reason == "客户改名" and entry.actor_id == rep.id
    grade = client.patch(f"/api/v1/customers/{customer.id}", headers=headers, json={"grade": "A"})
    assert grade.status_code == 403  # grades come from rules or a manager
    null_name = client.patch(
        f"/api/v1/customers/{customer.id}", headers=headers, json={"name": None}
    )
    assert null_name.status_code == 422 and _error(null_name)["field"] == "name"


def test_stage_moves_follow_the_table_and_are_recorded(client, session, fake_wecom, clock):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock())
    headers = sign_in(client, fake_wecom, rep)
    url = f"/api/v1/customers/{customer.id}/stage"
    skip = client.post(url, headers=headers, json={"stage": "成交"})
    assert skip.status_code == 422 and _error(skip)["code"] == "stage_move_not_allowed"
    clock.advance(days=3)
    moved = client.post(url, headers=headers, json={"stage": "意向", "cause": "客户来店看样"})
    assert moved.status_code == 200 and moved.json["stage"] == "意向"
    assert moved.json["stage_entered_at"].startswith(clock().date().isoformat())
    same = client.post(url, headers=headers, json={"stage": "意向"})
    assert same.status_code == 409
    detail = client.get(f"/api/v1/customers/{customer.id}", headers=headers).json
    changes = [e["stage_change"] for e in detail["timeline"] if e["kind"] == "stage_change"]
    assert [(c["from_stage"], c["to_stage"], c["cause"]) for c in changes] == [
        ("潜在", "意向", "客户来店看样"),
        (None, "潜在", "新建客户"),
    ]
    assert changes[0]["actor"]["id"] == rep.id


def test_manager_reassigns_within_the_team_only(client, session, fake_wecom, clock):
    company = make_company(session)
    rep, teammate = company.reps[0]
    outsider = company.reps[1][0]
    customer = make_customer(session, rep, clock())
    manager = sign_in(client, fake_wecom, company.managers[0])
    url = f"/api/v1/customers/{customer.id}/reassign"
    outside = client.post(url, headers=manager, json={"owner_id": outsider.id, "reason": "调岗"})
    assert outside.status_code == 404
    moved = client.post(url, headers=manager, json={"owner_id": teammate.id, "reason": "离职交接"})
    assert moved.status_code == 200 and moved.json["owner"]["id"] == teammate.id
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "reassign")).one()
    assert entry.before["owner_id"] == rep.id and entry.after["owner_id"] == teammate.id
    assert entry.reason == "离职交接"
    rep_headers = sign_in(client, fake_wecom, rep)
    assert client.get(f"/api/v1/customers/{customer.id}", headers=rep_headers).status_code == 404
    assert (
        client.post(
            url, headers=rep_headers, json={"owner_id": rep.id, "reason": "抢回"}
        ).status_code
        == 403
    )
    teammate.is_active = False
    session.commit()
    inactive = client.post(url, headers=manager, json={"owner_id": teammate.id, "reason": "x"})
    assert inactive.status_code == 422


def test_follow_up_with_a_pdf_lands_on_the_timeline_and_downloads(
    client, session, fake_wecom, clock, runtime
):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock())
    headers = sign_in(client, fake_wecom, rep)
    clock.advance(hours=2)
    response = client.post(
        f"/api/v1/customers/{customer.id}/follow-ups",
        headers=headers,
        data={
            "method": "微信",
            "summary": "已发送正式报价单",
            "next_follow_up_on": "2026-03-09",
            "files": [(io.BytesIO(PDF), "报价单.pdf")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    attachment = response.json["attachments"][0]
    assert (
        attachment["filename"] == "报价单.pdf" and attachment["content_type"] == "application/pdf"
    )
    session.expire_all()
    assert session.get(Customer, customer.id).last_follow_up_at == clock()
    detail = client.get(f"/api/v1/customers/{customer.id}", headers=headers).json
    assert detail["timeline"][0]["kind"] == "follow_up"
    assert detail["timeline"][0]["follow_up"]["summary"] == "已发送正式报价单"
    download = client.get(
        f"/api/v1/customers/{customer.id}/attachments/{attachment['id']}", headers=headers
    )
    assert download.status_code == 200 and download.data == PDF
    download.close()
    json_follow_up = client.post(
        f"/api/v1/customers/{customer.id}/follow-ups",
        headers=headers,
        json={"method": "电话", "summary": "约了周五量房"},
    )
    assert json_follow_up.status_code == 201


def test_bad_attachments_are_refused_and_nothing_is_written(
    client, session, fake_wecom, clock, runtime
):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock())
    headers = sign_in(client, fake_wecom, rep)
    url = f"/api/v1/customers/{customer.id}/follow-ups"
    too_big = b"%PDF" + b"0" * runtime.settings.max_attachment_bytes
    cases = [
        ([(io.BytesIO(b"MZ\x90\x00"), "tool.exe")], "bad_attachment_type"),
        ([(io.BytesIO(b"MZ\x90\x00"), "quote.pdf")], "bad_attachment_type"),  # renamed binary
        ([(io.BytesIO(b""), "empty.pdf")], "empty_attachment"),
        ([(io.BytesIO(too_big), "big.pdf")], "attachment_too_large"),
    ]
    for files, code in cases:
        # Encoded in memory: the test client would spool a large body to a file it never closes.
        parts = [FileStorage(stream, filename=name) for stream, name in files]
        boundary, body = encode_multipart({"method": "电话", "summary": "附件", "files": parts})
        response = client.post(
            url,
            headers=headers,
            data=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        )
        assert response.status_code == 422, (code, response.json)
        assert _error(response)["code"] == code
    detail = client.get(f"/api/v1/customers/{customer.id}", headers=headers).json
    assert [e["kind"] for e in detail["timeline"]] == ["stage_change"]
    stored = list(runtime.store.root.glob("*/*")) if runtime.store.root.exists() else []
    assert stored == []
    future = client.post(
        url,
        headers=headers,
        json={"method": "电话", "summary": "x", "happened_at": "2030-01-01T00:00:00+08:00"},
    )
    assert future.status_code == 422 and _error(future)["field"] == "happened_at"


def test_detail_lists_the_missing_required_fields(client, session, fake_wecom, clock):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), phone="13800138000", region="醴陵市")
    headers = sign_in(client, fake_wecom, rep)
    detail = client.get(f"/api/v1/customers/{customer.id}", headers=headers).json
    assert "phone" not in detail["missing_fields"] and "region" not in detail["missing_fields"]
    assert "company" in detail["missing_fields"]
    assert detail["customer"]["completeness"] == round(100 * 3 / 9)


def test_a_nul_character_is_a_422_not_a_database_error(client, session, fake_wecom):
    company = make_company(session)
    headers = sign_in(client, fake_wecom, company.reps[0][0])
    response = client.post("/api/v1/customers", headers=headers, json={"name": "恒达\u0000装饰"})
    assert response.status_code == 422
    assert _error(response)["field"] == "name"
    tags = client.post("/api/v1/customers", headers=headers, json={"name": "x", "tags": ["a\x01"]})
    assert tags.status_code == 422 and _error(tags)["field"] == "tags"
