"""Three-level scope through every endpoint: a customer outside the caller's scope answers
exactly like one that does not exist, and nothing about it changes or leaks into a list."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from crm import customer_changes
from crm import orders as order_service
from crm.actors import Actor
from miniapp_api.routing import OPERATIONS
from models import AuditEntry, Customer, FollowUp, Order, OrderStep
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
}
# Endpoints that touch nothing customer-scoped.
UNSCOPED = {
    "login",
    "dev_login",
    "me",
    "list_teams",
    "create_team",
    "create_user",
    "list_fields",
    "create_field",
    "change_field",
    "create_customer",
    "upload_import",
    "get_import",
    "retry_notification",  # scoped by recipient; tests/miniapp_api/test_notifications_api.py
}
# Rule sets are company-wide and for managers; their previews are scoped
# (tests/miniapp_api/test_rules_api.py).
UNSCOPED |= {
    "list_rule_sets",
    "rule_vocabulary",
    "validate_rules",
    "preview_rules",
    "create_rule_draft",
    "get_rule_draft",
    "update_rule_draft",
    "delete_rule_draft",
    "preview_rule_draft",
    "publish_rule_draft",
    "rule_history",
    "rollback_rules",
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
# Email templates are company-wide; a preview names its customer in the query and a retry is
# scoped by the email's customer: tests/miniapp_api/test_emails_api.py walks both.
UNSCOPED |= {
    "list_email_templates",
    "create_email_template",
    "get_email_template",
    "update_email_template",
    "deactivate_email_template",
    "add_email_template_attachments",
    "remove_email_template_attachment",
    "preview_email",
    "retry_email",
}
# The approval flow is company-wide; an order's customer is checked on creation
# (tests/miniapp_api/test_orders_api.py). Endpoints with an order id are walked below.
UNSCOPED |= {"get_approval_flow", "set_approval_flow", "create_order"}
WALKED = ("{customer_id}", "{order_id}")


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
    from crm import followups

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
        walked = any(name in op.path for name in WALKED)
        assert walked or op.handler.__name__ in COLLECTIONS | UNSCOPED, op.path


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

    people = client.get("/api/v1/users", headers=headers).json["items"]
    if role == "rep":
        assert [p["id"] for p in people] == [user.id]
    elif role == "manager":
        assert {p["team_id"] for p in people} == {user.team_id}
    else:
        assert len(people) == len(company.everyone)
