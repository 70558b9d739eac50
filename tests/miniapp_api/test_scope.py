"""Three-level scope through every endpoint: a customer outside the caller's scope answers
exactly like one that does not exist, and nothing about it changes or leaks into a list."""

from __future__ import annotations

import functools
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from crm import custom_fields, customer_changes, followups
from crm import emails as email_service
from crm import orders as order_service
from crm.actors import Actor
from crm.rules import publisher
from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from miniapp_api.routing import OPERATIONS
from models import (
    ApprovalNode,
    AuditEntry,
    Customer,
    CustomField,
    EmailTemplate,
    FollowUp,
    Order,
    OrderStep,
    RuleSetVersion,
)
from tests.factories import make_company, make_customer, sign_in

MISSING_ID = 2_000_000_000
PDF = b"%PDF-1.4 quote"

# Endpoints with no customer id that return customers or people: checked for leaks below.
COLLECTIONS = {
    "list_customers",
    "export_customers",
    "completeness_summary",
    "list_users",
    "list_notifications",
    "list_orders",
    "expedite_report",
    "team_funnel",
    "revenue_forecast",
    "kpi_panel",
    "data_quality",
    "rep_health",
    "rep_radar",
}
# Endpoints that touch nothing customer-scoped.
UNSCOPED = {
    "login",
    "dev_login",
    "me",
    "list_teams",
    "create_team",
    "create_user",
    "create_customer",
    "upload_import",
    "get_import",
    "upload_archive",  # the boss's; tests/miniapp_api/test_archive_api.py
    "retry_notification",  # scoped by recipient; tests/miniapp_api/test_notifications_api.py
    "logout",
    "revoke_sessions",  # people by the org chart; tests/miniapp_api/test_auth.py walks it
    "deactivate_user",  # the boss's; tests/miniapp_api/test_auth.py
}
# Tasks are scoped by their own rule (assignee and cc); tests/miniapp_api/test_tasks_api.py
# walks them. The pool's list has its own scope, checked in test_pool_api.py.
UNSCOPED |= {
    "my_today",
    "list_tasks",
    "add_task",
    "complete_task",
    "snooze_task",
    "reassign_task",
    "list_pool",
    "auto_assign_pool",
}
# A retry is scoped by the email's customer (tests/miniapp_api/test_emails_api.py); an order's
# customer is checked on creation (test_orders_api.py). Endpoints with an order id are walked.
UNSCOPED |= {"retry_email", "create_order"}
# Hints name won deals in the caller's scope; tests/miniapp_api/test_similar_api.py walks them
# with won deals in both teams (this world has none).
UNSCOPED |= {"analytics_hints"}
WALKED = ("{customer_id}", "{order_id}")

# Settings objects follow the org chart (PRODUCT.md, roles and data scope). Every operation under
# these paths is classified below; one that names a settings object by id is walked with another
# team's object (or one only the boss may change), the others are called reaching for it.
SETTINGS_PATHS = ("/email-templates", "/rule-sets", "/custom-fields", "/approval-flow")
SETTINGS_PATHS += ("/capture/preview",)  # tries the keyword dictionary of a scope
SETTINGS_WALKED = ("{template_id}", "{draft_id}", "{field_id}")
# Without an id: (status for a rep, status for another team's manager). A request names team 1
# where the operation takes a team, so "allowed" means the caller's own scope, checked for leaks
# in test_settings_lists_hold_only_what_the_role_may_see.
SETTINGS_WITHOUT_ID = {
    "list_email_templates": (200, 200),
    "create_email_template": (403, 403),
    "list_rule_sets": (403, 403),
    "rule_vocabulary": (403, 200),
    "validate_rules": (403, 200),
    "preview_rules": (403, 403),
    "create_rule_draft": (403, 403),
    "rule_history": (403, 403),
    "rollback_rules": (403, 403),
    "preview_capture": (403, 403),
    "list_fields": (200, 200),
    "create_field": (403, 403),
    "get_approval_flow": (200, 200),
    "set_approval_flow": (403, 403),  # the company's flow is the boss's
}


@pytest.fixture
def world(session, clock, runtime):
    """Two teams, a customer per rep, one unowned customer per team, a PDF and an order on
    each (the orders in company.extra["orders"], by customer id)."""
    company = make_company(session)
    owned = {}
    for team_reps in company.reps:
        for rep in team_reps:
            owned[rep.id] = make_customer(session, rep, clock(), phone=None)
    pool = []
    for manager in company.managers:
        pool.append(
            customer_changes.create_customer(
                session,
                actor=Actor.of(manager),
                values={"name": f"{manager.name}的公海客户"},
                now=clock(),
            )
        )
    session.commit()
    for customer in [*owned.values(), *pool]:
        followups.log_follow_up(
            session,
            actor=Actor.of(company.boss),
            customer_id=customer.id,
            method="电话",
            summary="发了报价",
            now=clock(),
            store=runtime.store,
            max_attachment_bytes=10**6,
            uploads=[followups.Upload("报价单.pdf", PDF)],
        )
    company.extra["orders"] = {
        customer.id: order_service.create_order(
            session,
            actor=Actor.of(company.boss),
            number=f"SO-{customer.id}",
            customer_id=customer.id,
            amount="1000",
            now=clock(),
        )
        for customer in [*owned.values(), *pool]
    }
    session.commit()
    return company, owned, pool


def _visible(company, owned, pool, user):
    """The customer ids a user may see, from the rules (not from the code under test)."""
    everything = {c.id for c in [*owned.values(), *pool]}
    if user.role == "boss":
        return everything
    if user.role == "manager":
        return {c.id for c in [*owned.values(), *pool] if c.team_id == user.team_id}
    return {owned[user.id].id}


def _body(op, company, user):
    name = op.body.__name__ if op.body else None
    in_team_rep = (
        next(r for team in company.reps for r in team if r.team_id == user.team_id)
        if user.team_id
        else company.reps[0][0]
    )
    return {
        "CustomerPatch": {"company": "越权修改"},
        "StageIn": {"stage": "意向", "cause": "越权"},
        "ReassignIn": {"owner_id": in_team_rep.id, "reason": "越权"},
        "FollowUpIn": {"method": "电话", "summary": "越权跟进"},
        "PoolAssignIn": {"owner_id": in_team_rep.id, "reason": "越权"},
        "ReleaseIn": {"reason": "越权"},
        "EmailSendIn": {"template_id": 1, "to": "yuequan@example.com"},
        "OrderApproveIn": {"comment": "越权同意"},
        "OrderRejectIn": {"comment": "越权驳回"},
        "ExpediteIn": {"reason": "越权加急"},
        None: None,
    }[name]


def _call(client, op, path, headers, body):
    method = getattr(client, op.method.lower())
    return method(f"/api/v1{path}", headers=headers, json=body)


def test_every_operation_is_classified_for_the_scope_walk():
    for op in OPERATIONS:
        name = op.handler.__name__
        if op.path.startswith(SETTINGS_PATHS):
            walked = any(param in op.path for param in SETTINGS_WALKED)
            assert walked or name in SETTINGS_WITHOUT_ID, op.path
            assert name not in UNSCOPED | COLLECTIONS, op.path
        else:
            walked = any(param in op.path for param in WALKED)
            assert walked or name in COLLECTIONS | UNSCOPED, op.path
        assert not any(param in op.path for param in SETTINGS_WALKED) or op.path.startswith(
            SETTINGS_PATHS
        ), f"{op.path}: a settings object outside SETTINGS_PATHS"


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_out_of_scope_customer_answers_like_a_missing_one_on_every_endpoint(
    role, world, client, session, fake_wecom
):
    company, owned, pool = world
    user = company.reps[0][0] if role == "rep" else company.managers[0]
    headers = sign_in(client, fake_wecom, user)
    hidden = [
        c for c in [*owned.values(), *pool] if c.id not in _visible(company, owned, pool, user)
    ]
    assert hidden
    audit_before = session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))
    for op in OPERATIONS:
        if not any(name in op.path for name in WALKED):
            continue
        for customer in hidden:
            claimable = customer in pool and customer.team_id in (user.team_id, None)
            if op.handler.__name__ == "claim_from_pool" and claimable:
                continue  # the public pool is every rep's to claim from (test_pool_api.py)
            attachment = session.scalars(
                select(FollowUp).where(FollowUp.customer_id == customer.id)
            ).first()
            session.refresh(attachment, ["attachments"])
            ids = {
                "customer_id": customer.id,
                "attachment_id": attachment.attachments[0].id,
                "order_id": company.extra["orders"][customer.id].id,
            }
            missing = {
                "customer_id": MISSING_ID,
                "attachment_id": attachment.attachments[0].id,
                "order_id": MISSING_ID,
            }
            body = _body(op, company, user)
            hidden_response = _call(client, op, op.path.format(**ids), headers, body)
            missing_response = _call(client, op, op.path.format(**missing), headers, body)
            assert hidden_response.status_code in (403, 404), (op.path, hidden_response.json)
            assert hidden_response.status_code == missing_response.status_code, op.path
            assert hidden_response.json == missing_response.json, op.path
    session.expire_all()
    for customer in hidden:
        fresh = session.get(Customer, customer.id)
        assert fresh.company is None and fresh.stage == "潜在"
        assert fresh.owner_id == customer.owner_id
        assert (
            session.scalar(
                select(FollowUp.id).where(
                    FollowUp.customer_id == customer.id, FollowUp.summary == "越权跟进"
                )
            )
            is None
        )
        order = session.get(Order, company.extra["orders"][customer.id].id)
        assert order.status == "pending" and order.expedited_at is None
        steps = session.scalars(select(OrderStep.status).where(OrderStep.order_id == order.id))
        assert set(steps) == {"pending"}
    audit_after = session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))
    assert audit_after == audit_before  # nothing was written, not even an audit line


@pytest.mark.parametrize("role", ["rep", "manager", "boss"])
def test_in_scope_customer_is_reachable_on_every_read(role, world, client, fake_wecom):
    company, owned, pool = world
    user = {"rep": company.reps[1][1], "manager": company.managers[1], "boss": company.boss}[role]
    headers = sign_in(client, fake_wecom, user)
    for customer_id in _visible(company, owned, pool, user):
        response = client.get(f"/api/v1/customers/{customer_id}", headers=headers)
        assert response.status_code == 200


@pytest.mark.parametrize("role", ["rep", "manager", "boss"])
def test_lists_exports_and_summaries_hold_only_what_the_role_may_see(
    role, world, client, fake_wecom
):
    company, owned, pool = world
    user = {"rep": company.reps[0][1], "manager": company.managers[0], "boss": company.boss}[role]
    visible = _visible(company, owned, pool, user)
    headers = sign_in(client, fake_wecom, user)

    listed = client.get("/api/v1/customers?page_size=100", headers=headers).json
    assert {c["id"] for c in listed["items"]} == visible
    assert listed["total"] == len(visible)
    for other in [r for team in company.reps for r in team]:
        filtered = client.get(f"/api/v1/customers?owner_id={other.id}", headers=headers).json
        expected = {owned[other.id].id} & visible
        assert {c["id"] for c in filtered["items"]} == expected

    export = client.get("/api/v1/customers/export?format=xlsx", headers=headers)
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(export.data)).worksheets[0]
    names = {row[0] for row in sheet.iter_rows(min_row=2, values_only=True)}
    all_customers = [*owned.values(), *pool]
    assert names == {c.name for c in all_customers if c.id in visible}

    summary = client.get("/api/v1/completeness", headers=headers).json
    assert summary["customers"] == len(visible)

    orders = client.get("/api/v1/orders?page_size=100", headers=headers).json
    assert {o["customer"]["id"] for o in orders["items"]} == visible
    assert orders["total"] == len(visible)

    funnel = client.get("/api/v1/analytics/funnel?start=2026-01-01&end=2026-04-01", headers=headers)
    if role == "rep":
        assert funnel.status_code == 403  # the funnel is the managers' and the boss's view
    else:
        assert sum(s["now"] for s in funnel.json["period"]["total"]["stages"]) == len(visible)
        assert sum(s["entered"] for s in funnel.json["period"]["total"]["stages"]) == len(visible)

    forecast = client.get("/api/v1/analytics/forecast", headers=headers)
    if role == "rep":
        assert forecast.status_code == 403  # like the funnel, the managers' and the boss's
    else:  # every visible customer is a new lead: an open deal
        assert forecast.json["next_month"]["open_deals"] == len(visible)
    kpis = client.get("/api/v1/analytics/kpi?start=2026-01-01&end=2026-04-01", headers=headers)
    quality = client.get("/api/v1/analytics/data-quality?month=2026-03", headers=headers)
    reps_in_scope = {
        r.id
        for team in company.reps
        for r in team
        if user.role == "boss" or r.team_id == user.team_id
    }
    if role == "rep":
        assert kpis.status_code == quality.status_code == 403  # managers' and the boss's views
    else:
        assert {r["user_id"] for r in kpis.json["period"]["reps"]} == reps_in_scope
        assert {r["user_id"] for r in quality.json["ranking"]} == reps_in_scope  # one each
    scores = client.get("/api/v1/analytics/health?month=2026-03", headers=headers)
    expected = {user.id} if role == "rep" else reps_in_scope  # a rep: their own score
    assert {r["user_id"] for r in scores.json["reps"]} == expected
    for rep in (r for team in company.reps for r in team):
        radar = client.get(
            f"/api/v1/analytics/health/radar.png?month=2026-03&user_id={rep.id}", headers=headers
        )
        if rep.id in expected:
            assert (radar.status_code, radar.mimetype) == (200, "image/png"), rep.name
            assert radar.data.startswith(b"\x89PNG")
        else:  # out of reach: like a missing rep
            assert radar.status_code == 404 and radar.json["error"]["code"] == "not_found"

    people = client.get("/api/v1/users", headers=headers).json["items"]
    if role == "rep":
        assert [p["id"] for p in people] == [user.id]
    elif role == "manager":
        assert {p["team_id"] for p in people} == {user.team_id}
    else:
        assert len(people) == len(company.everyone)


# --- settings objects ----------------------------------------------------------------------------


@pytest.fixture
def settings_world(world, session, clock, runtime):
    """On top of `world`: a template of the company's, of each team (team 1's with a file), a
    grading draft by each manager and the boss, and a company custom field."""
    company, owned, pool = world
    boss = Actor.of(company.boss)
    managers = [Actor.of(m) for m in company.managers]
    templates = {
        scope: email_service.create_template(
            session, actor=author, name=f"模板{scope}", subject="主题", body="正文", now=clock()
        )
        for scope, author in (("company", boss), (0, managers[0]), (1, managers[1]))
    }
    email_service.add_attachments(
        session,
        actor=managers[1],
        template_id=templates[1].id,
        uploads=[followups.Upload("手册.pdf", PDF)],
        store=runtime.store,
        max_attachment_bytes=10**6,
        now=clock(),
    )
    drafts = {
        scope: publisher.create_draft(
            session,
            actor=author,
            kind="grading",
            document=DEFAULT_DOCUMENTS["grading"],
            note=f"{scope}的草稿",
            now=clock(),
        )
        for scope, author in (("company", boss), (0, managers[0]), (1, managers[1]))
    }
    field = custom_fields.define_field(
        session,
        actor=boss,
        key="area_m2",
        label="厂房面积",
        kind="number",
        options=[],
        is_required=False,
        is_tag_dimension=False,
        now=clock(),
    )
    session.commit()
    company.extra.update(templates=templates, drafts=drafts, field=field)
    return company, owned, pool


def _settings_caller(company, role):
    """A rep or the manager of team 0; team 1's settings are out of their reach."""
    return company.reps[0][0] if role == "rep" else company.managers[0]


def _settings_call(client, op, path, headers, company, visible_customer_id):
    """Call a settings operation with a plausible request that, where the operation takes a team,
    names team 1."""
    other_team = company.teams[1].id
    grading = DEFAULT_DOCUMENTS["grading"]
    bodies = {
        "EmailTemplateIn": {
            "name": "越权",
            "subject": "越权",
            "body": "越权",
            "team_id": other_team,
        },
        "EmailTemplatePatch": {"subject": "越权修改"},
        "CustomFieldIn": {"key": "yuequan", "label": "越权", "kind": "text"},
        "CustomFieldPatch": {"label": "越权"},
        "RuleCheckIn": {"kind": "grading", "document": grading},
        "RulePreviewIn": {"kind": "grading", "document": grading},
        "DraftIn": {"kind": "grading", "document": grading},
        "DraftPatch": {"document": {"default": "D", "rules": []}},
        "PublishIn": {"reason": "越权"},
        "RollbackIn": {"kind": "grading", "version": 0, "reason": "越权"},
        "CapturePreviewIn": {"messages": ["已发送正式报价单"]},
        "ApprovalFlowIn": {"nodes": [{"name": "越权审批", "approver": "manager"}]},
    }
    queries = {
        "EmailTemplateQuery": {"include_inactive": "true"},
        "EmailPreviewQuery": {"customer_id": visible_customer_id},
        "HistoryQuery": {"kind": "grading"},
    }
    query = dict(queries.get(op.query.__name__, {})) if op.query else {}
    body = dict(bodies[op.body.__name__]) if op.body and not op.files else None
    for model, values in ((op.query, query), (op.body, body)):
        if model is not None and values is not None and "team_id" in model.model_fields:
            values["team_id"] = other_team
    method = getattr(client, op.method.lower())
    url = f"/api/v1{path}"
    if op.files:
        boundary, data = encode_multipart({op.files: [FileStorage(io.BytesIO(PDF), "越权.pdf")]})
        return method(
            url,
            headers=headers,
            query_string=query,
            data=data,
            content_type=f"multipart/form-data; boundary={boundary}",
        )
    return method(url, headers=headers, query_string=query, json=body)


def _settings_state(session):
    """Everything a settings call could change, to compare before and after."""
    session.expire_all()
    return {
        "templates": [
            (t.id, t.team_id, t.name, t.subject, t.is_active, len(t.attachments))
            for t in session.scalars(
                select(EmailTemplate).options(selectinload(EmailTemplate.attachments))
            )
        ],
        "rule_sets": [
            (r.id, r.kind, r.team_id, r.status, r.version, r.document)
            for r in session.scalars(select(RuleSetVersion).order_by(RuleSetVersion.id))
        ],
        "fields": [(f.id, f.label, f.is_active) for f in session.scalars(select(CustomField))],
        "flow": [(n.position, n.name) for n in session.scalars(select(ApprovalNode))],
        "audit": session.scalar(select(func.count()).select_from(AuditEntry)),
    }


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_another_teams_settings_answer_like_missing_ones_on_every_endpoint(
    role, settings_world, client, session, fake_wecom
):
    company, owned, _pool = settings_world
    user = _settings_caller(company, role)
    headers = sign_in(client, fake_wecom, user)
    extra = company.extra
    attachment_id = extra["templates"][1].attachments[0].id
    # Out of reach: team 1's template and manager 1's and the boss's drafts (a draft is its
    # author's), and for anyone but the boss every change to a company field.
    hidden = {
        "template_id": [extra["templates"][1].id],
        "draft_id": [extra["drafts"][1].id, extra["drafts"]["company"].id],
        "field_id": [extra["field"].id],
    }
    visible_customer = owned[company.reps[0][0].id].id
    before = _settings_state(session)
    walked = 0
    for op in OPERATIONS:
        params = [p for p in hidden if f"{{{p}}}" in op.path]
        if not params:
            continue
        (param,) = params
        for object_id in hidden[param]:
            ids = {param: object_id, "attachment_id": attachment_id}
            call = functools.partial(_settings_call, client, op, headers=headers, company=company)
            hidden_response = call(op.path.format(**ids), visible_customer_id=visible_customer)
            missing_response = call(
                op.path.format(**{**ids, param: MISSING_ID}), visible_customer_id=visible_customer
            )
            assert hidden_response.status_code in (403, 404), (op.path, hidden_response.json)
            assert hidden_response.status_code == missing_response.status_code, op.path
            assert hidden_response.json == missing_response.json, op.path
            walked += 1
    assert walked >= 15  # every template, draft and field operation, not a lucky subset
    assert _settings_state(session) == before  # nothing changed, not even an audit line


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_settings_without_an_id_refuse_what_is_not_the_callers(
    role, settings_world, client, session, fake_wecom
):
    company, owned, _pool = settings_world
    headers = sign_in(client, fake_wecom, _settings_caller(company, role))
    visible_customer = owned[company.reps[0][0].id].id
    before = _settings_state(session)
    index = 0 if role == "rep" else 1
    expected = {name: statuses[index] for name, statuses in SETTINGS_WITHOUT_ID.items()}
    answered = {
        op.handler.__name__: _settings_call(
            client, op, op.path, headers, company, visible_customer_id=visible_customer
        ).status_code
        for op in OPERATIONS
        if op.handler.__name__ in expected
    }
    assert answered == expected
    assert _settings_state(session) == before


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_only_the_boss_sets_the_approval_flow(role, settings_world, client, session, fake_wecom):
    company = settings_world[0]
    headers = sign_in(client, fake_wecom, _settings_caller(company, role))
    before = _settings_state(session)
    response = client.put(
        "/api/v1/approval-flow",
        headers=headers,
        json={"nodes": [{"name": "越权审批", "approver": "manager", "skippable": True}]},
    )
    assert response.status_code == 403
    assert _settings_state(session) == before


@pytest.mark.parametrize("role", ["rep", "manager", "boss"])
def test_settings_lists_hold_only_what_the_role_may_see(role, settings_world, client, fake_wecom):
    company, _owned, _pool = settings_world
    user = company.boss if role == "boss" else _settings_caller(company, role)
    headers = sign_in(client, fake_wecom, user)
    templates = client.get("/api/v1/email-templates?include_inactive=true", headers=headers).json[
        "items"
    ]
    expected = {"rep": ["模板0", "模板company"], "manager": ["模板0", "模板company"]}
    assert [t["name"] for t in templates] == expected.get(role, ["模板0", "模板1", "模板company"])
    overview = client.get("/api/v1/rule-sets", headers=headers)
    if role == "rep":
        assert overview.status_code == 403
        return
    drafts = {d["note"] for kind in overview.json["items"] for d in kind["drafts"]}
    assert drafts == ({"0的草稿"} if role == "manager" else {"company的草稿"})
    if role == "boss":  # a team's drafts, by whoever wrote them, under the team's scope
        team = client.get(f"/api/v1/rule-sets?team_id={company.teams[1].id}", headers=headers)
        assert {d["note"] for kind in team.json["items"] for d in kind["drafts"]} == {"1的草稿"}
