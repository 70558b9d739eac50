"""Orders and the approval flow through the API: configuring the flow, creating, deciding,
expediting and the expedite report, for every role in and out of scope."""

from __future__ import annotations

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from models import AuditEntry, Order
from tests.factories import make_company, make_customer, sign_in
from workers import queues

MISSING = 2_000_000_000


@pytest.fixture
def company(session):
    return make_company(session)


@pytest.fixture
def login(client, fake_wecom):
    return lambda user: sign_in(client, fake_wecom, user)


def _create(client, headers, customer_id, number="SO-20260302-001", amount=86000):
    return client.post(
        "/api/v1/orders",
        headers=headers,
        json={"number": number, "customer_id": customer_id, "amount": amount},
    )


def _work(runtime, session) -> None:
    session.rollback()  # no SQLite snapshot of the test's may outlive the worker's writes
    SimpleWorker([queues.NOTIFICATIONS], connection=runtime.redis).work(burst=True)


def test_the_boss_sets_the_flow_others_read_it_and_mistakes_name_the_node(company, client, login):
    rep, manager, boss = (
        login(company.reps[0][0]),
        login(company.managers[0]),
        login(company.boss),
    )
    default = client.get("/api/v1/approval-flow", headers=rep).json
    assert default["is_default"] is True
    assert [
        (n["position"], n["name"], n["approver"], n["skippable"]) for n in default["nodes"]
    ] == [
        (1, "主管审批", "manager", True),
        (2, "财务审核", "boss", True),
        (3, "仓库排期", "boss", False),
    ]
    assert client.get("/api/v1/approval-flow", headers=manager).json == default
    nodes = [
        {"name": "主管审批", "approver": "manager", "skippable": True},
        {"name": "仓库排期", "approver": "boss"},
    ]
    # The flow, and which nodes #加急# may skip, is the company's: not a manager's to change.
    for headers in (rep, manager):
        refused = client.put("/api/v1/approval-flow", headers=headers, json={"nodes": nodes})
        assert (refused.status_code, refused.json["error"]["code"]) == (403, "forbidden")
        assert refused.json["error"]["message"] == "审批流程由老板设置，主管和销售只能查看"
    assert client.get("/api/v1/approval-flow", headers=rep).json == default

    duplicate = client.put(
        "/api/v1/approval-flow", headers=boss, json={"nodes": [*nodes, nodes[1]]}
    )
    assert (duplicate.status_code, duplicate.json["error"]["field"]) == (422, "nodes.2.name")
    assert "仓库排期" in duplicate.json["error"]["message"]
    empty = client.put("/api/v1/approval-flow", headers=boss, json={"nodes": []})
    assert (empty.status_code, empty.json["error"]["message"]) == (422, "审批流程至少需要一个节点")
    too_many = [{"name": f"节点{i}", "approver": "boss"} for i in range(11)]
    long = client.put("/api/v1/approval-flow", headers=boss, json={"nodes": too_many})
    assert long.status_code == 422
    bad_role = client.put(
        "/api/v1/approval-flow", headers=boss, json={"nodes": [{"name": "a", "approver": "rep"}]}
    )
    assert (bad_role.status_code, bad_role.json["error"]["field"]) == (422, "nodes.0.approver")

    saved = client.put("/api/v1/approval-flow", headers=boss, json={"nodes": nodes})
    assert saved.status_code == 200 and saved.json["is_default"] is False
    for headers in (rep, manager):
        assert [
            (n["name"], n["skippable"])
            for n in client.get("/api/v1/approval-flow", headers=headers).json["nodes"]
        ] == [("主管审批", True), ("仓库排期", False)]


def test_a_rep_opens_an_order_for_their_customer_and_sees_its_steps(
    company, client, login, session, clock
):
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), name="株洲神龙公寓")
    headers = login(rep)
    created = _create(client, headers, customer.id, number=" so-20260302-001 ", amount=86000.5)
    assert created.status_code == 201, created.json
    order = created.json
    assert (order["number"], order["amount"], order["status"]) == (
        "SO-20260302-001",
        86000.5,
        "pending",
    )
    assert order["customer"]["name"] == "株洲神龙公寓"
    assert order["created_by"] == {"id": rep.id, "name": rep.name}
    assert order["current_step"] == "主管审批"
    assert [(s["name"], s["status"]) for s in order["steps"]] == [
        ("主管审批", "pending"),
        ("财务审核", "pending"),
        ("仓库排期", "pending"),
    ]
    assert order["waiting_for"] == [{"id": company.managers[0].id, "name": "主管0"}]

    again = _create(client, headers, customer.id, number="SO-20260302-001")
    assert (again.status_code, again.json["error"]["code"]) == (409, "duplicate_number")
    bad = _create(client, headers, customer.id, number="SO/1")
    assert (bad.status_code, bad.json["error"]["field"]) == (422, "number")
    zero = _create(client, headers, customer.id, number="SO-2", amount=0)
    assert zero.status_code == 422
    assert client.get(f"/api/v1/orders/{order['id']}", headers=headers).json == order


def test_an_order_for_a_customer_out_of_scope_answers_like_a_missing_customer(
    company, client, login, session, clock
):
    customer = make_customer(session, company.reps[0][0], clock())
    for user in (company.reps[0][1], company.managers[1]):
        headers = login(user)
        hidden = _create(client, headers, customer.id)
        missing = _create(client, headers, MISSING)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json == missing.json
    assert session.scalar(select(Order.id)) is None


def test_the_chain_through_the_api_with_cards_at_wecom_and_a_stale_step_refused(
    company, client, login, session, clock, runtime, fake_wecom
):
    rep, manager, boss = company.reps[0][0], company.managers[0], company.boss
    customer = make_customer(session, rep, clock())
    order = _create(client, login(rep), customer.id).json
    as_manager, as_boss, as_rep = login(manager), login(boss), login(rep)
    path = f"/api/v1/orders/{order['id']}"

    by_rep = client.post(f"{path}/approve", headers=as_rep, json={})
    assert (by_rep.status_code, by_rep.json["error"]["code"]) == (403, "forbidden")
    by_boss = client.post(f"{path}/approve", headers=as_boss, json={})
    assert by_boss.status_code == 403  # 主管审批 belongs to the team's manager
    first = order["steps"][0]["id"]
    approved = client.post(
        f"{path}/approve", headers=as_manager, json={"step_id": first, "comment": "同意"}
    )
    assert approved.status_code == 200, approved.json
    assert approved.json["steps"][0]["decided_by"] == {"id": manager.id, "name": "主管0"}
    assert approved.json["current_step"] == "财务审核"
    assert approved.json["waiting_for"] == [{"id": boss.id, "name": "王总"}]
    stale = client.post(f"{path}/approve", headers=as_manager, json={"step_id": first})
    assert (stale.status_code, stale.json["error"]["code"]) == (409, "stale_step")

    no_reason = client.post(f"{path}/reject", headers=as_boss, json={"comment": ""})
    assert no_reason.status_code == 422
    rejected = client.post(f"{path}/reject", headers=as_boss, json={"comment": "低于底价"})
    assert rejected.json["status"] == "rejected"
    assert rejected.json["steps"][1]["comment"] == "低于底价"
    closed = client.post(f"{path}/approve", headers=as_boss, json={})
    assert (closed.status_code, closed.json["error"]["code"]) == (409, "order_closed")

    _work(runtime, session)
    sent = [(m["msgtype"], m["touser"]) for m in fake_wecom.messages]
    assert sent == [
        ("template_card", [manager.wecom_userid]),
        ("template_card", [boss.wecom_userid]),
        ("textcard", [rep.wecom_userid]),
    ]


def test_expedite_through_the_api_skips_notifies_and_is_refused_to_reps_and_twice(
    company, client, login, session, clock, runtime, fake_wecom
):
    rep, manager, boss = company.reps[0][0], company.managers[0], company.boss
    customer = make_customer(session, rep, clock())
    order = _create(client, login(rep), customer.id).json
    path = f"/api/v1/orders/{order['id']}/expedite"
    body = {"reason": "客户工地周五开工"}

    refused = client.post(path, headers=login(rep), json=body)
    assert (refused.status_code, refused.json["error"]["message"]) == (
        403,
        "只有销售主管或老板可以加急订单",
    )
    other_team = client.post(path, headers=login(company.managers[1]), json=body)
    assert other_team.status_code == 404

    done = client.post(path, headers=login(manager), json=body)
    assert done.status_code == 200, done.json
    result = done.json
    assert (result["skipped"], result["remaining"], result["notified"]) == (
        ["主管审批", "财务审核"],
        ["仓库排期"],
        ["王总"],
    )
    detail = result["order"]
    assert detail["expedited_by"] == {"id": manager.id, "name": "主管0"}
    assert detail["expedite_reason"] == "客户工地周五开工"
    assert [s["status"] for s in detail["steps"]] == ["skipped", "skipped", "pending"]
    assert detail["steps"][0]["comment"] == "客户工地周五开工"

    again = client.post(path, headers=login(boss), json=body)
    assert (again.status_code, again.json["error"]["code"]) == (409, "already_expedited")

    _work(runtime, session)
    to_boss = [m for m in fake_wecom.messages if m["touser"] == [boss.wecom_userid]]
    assert [m["msgtype"] for m in to_boss] == ["textcard", "template_card"]
    assert "客户工地周五开工" in to_boss[0]["textcard"]["description"]


def test_lists_filter_by_status_and_page_within_scope(company, client, login, session, clock):
    boss = login(company.boss)
    one_step = {"nodes": [{"name": "老板审批", "approver": "boss"}]}
    assert client.put("/api/v1/approval-flow", headers=boss, json=one_step).status_code == 200
    customers = [make_customer(session, team[0], clock()) for team in company.reps]
    rep_headers = login(company.reps[0][0])
    created = [
        _create(client, rep_headers, customers[0].id, number=f"SO-A{index}").json
        for index in range(3)
    ]
    _create(client, login(company.reps[1][0]), customers[1].id, number="SO-B0")
    first = client.get("/api/v1/orders?page_size=2", headers=rep_headers).json
    assert (first["total"], len(first["items"])) == (3, 2)
    assert [o["number"] for o in first["items"]] == ["SO-A2", "SO-A1"]  # newest first
    second = client.get("/api/v1/orders?page_size=2&page=2", headers=rep_headers).json
    assert [o["number"] for o in second["items"]] == ["SO-A0"]

    client.post(f"/api/v1/orders/{created[0]['id']}/approve", headers=boss, json={})
    client.post(f"/api/v1/orders/{created[1]['id']}/reject", headers=boss, json={"comment": "重复"})
    for status, numbers in (
        ("pending", ["SO-B0", "SO-A2"]),
        ("approved", ["SO-A0"]),
        ("rejected", ["SO-A1"]),
    ):
        listed = client.get(f"/api/v1/orders?status={status}", headers=boss).json
        assert [o["number"] for o in listed["items"]] == numbers, status
    by_customer = client.get(f"/api/v1/orders?customer_id={customers[1].id}", headers=boss).json
    assert [o["number"] for o in by_customer["items"]] == ["SO-B0"]
    assert client.get("/api/v1/orders?status=lost", headers=boss).status_code == 422


@pytest.mark.parametrize("role", ["rep", "manager", "boss"])
def test_every_role_reads_the_orders_in_scope_and_not_the_others(
    role, company, client, login, session, clock
):
    customers = {team: make_customer(session, company.reps[team][0], clock()) for team in (0, 1)}
    ids = {
        team: _create(client, login(company.reps[team][0]), c.id, number=f"SO-{team}").json["id"]
        for team, c in customers.items()
    }
    user = {"rep": company.reps[0][0], "manager": company.managers[0], "boss": company.boss}[role]
    headers = login(user)
    assert client.get(f"/api/v1/orders/{ids[0]}", headers=headers).status_code == 200
    hidden = client.get(f"/api/v1/orders/{ids[1]}", headers=headers)
    if role == "boss":
        assert hidden.status_code == 200
    else:
        missing = client.get(f"/api/v1/orders/{MISSING}", headers=headers)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json == missing.json


def test_the_expedite_report_through_the_api(company, client, login, session, clock):
    customer = make_customer(session, company.reps[0][0], clock())
    rep = login(company.reps[0][0])
    manager = login(company.managers[0])
    for number, reason in (
        ("SO-1", "客户工地周五开工"),
        ("SO-2", "客户工地周五开工"),
        ("SO-3", "月底冲量"),
    ):
        order = _create(client, rep, customer.id, number=number).json
        client.post(
            f"/api/v1/orders/{order['id']}/expedite", headers=manager, json={"reason": reason}
        )
    _create(client, rep, customer.id, number="SO-4")

    report = client.get(
        "/api/v1/orders/expedite-report?since=2026-03-01&until=2026-03-31", headers=manager
    )
    assert report.status_code == 200, report.json
    assert report.json == {
        "since": "2026-03-01",
        "until": "2026-03-31",
        "orders_created": 4,
        "expedited": 3,
        "by_person": [{"user_id": company.managers[0].id, "name": "主管0", "count": 3}],
        "by_reason": [
            {"reason": "客户工地周五开工", "count": 2},
            {"reason": "月底冲量", "count": 1},
        ],
        "skipped_steps": [{"name": "主管审批", "count": 3}, {"name": "财务审核", "count": 3}],
    }
    other_team = client.get(
        "/api/v1/orders/expedite-report?since=2026-03-01&until=2026-03-31",
        headers=login(company.managers[1]),
    ).json
    assert (other_team["expedited"], other_team["by_reason"]) == (0, [])
    reversed_period = client.get(
        "/api/v1/orders/expedite-report?since=2026-03-31&until=2026-03-01", headers=manager
    )
    assert (reversed_period.status_code, reversed_period.json["error"]["field"]) == (422, "until")
    missing = client.get("/api/v1/orders/expedite-report?since=2026-03-01", headers=manager)
    assert missing.status_code == 422
    audits = session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "order")).all()
    assert sorted(audits) == ["create"] * 4 + ["expedite"] * 3
