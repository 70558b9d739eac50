"""The list and detail endpoints run a fixed number of SQL statements, however much data there
is, so an N+1 query cannot creep in as the book grows."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from crm import customer_changes, followups
from crm.actors import Actor
from crm.vocab import ContactMethod
from tests.factories import make_company, make_customer, sign_in

# auth user, count, page, tags of the page
LIST_STATEMENTS = 4
# auth user, customer (+owner), its tags, follow-ups (+authors), their attachments, their
# recordings, stage changes (+actors), tasks (+assignees), WeChat contact changes (+reps),
# required custom fields
DETAIL_STATEMENTS = 10
# auth user; per period: stages now, entries, steps, stays, team names, rep names
FUNNEL_STATEMENTS = 1 + 2 * 6
# auth user, customers in scope with their amounts, their stage history (the back-test too)
FORECAST_STATEMENTS = 3
# auth user; per period: customers held, outcomes, new profiles, follow-ups, plans, tasks, first
# deals, people, team names
KPI_STATEMENTS = 1 + 2 * 9
# auth user, new profiles, their reps
DATA_QUALITY_STATEMENTS = 3
# auth user; the month's and the three months before's KPI tallies (9 each); grades held, first
# deals, joining times, stored WeCom contact figures
HEALTH_STATEMENTS = 1 + 2 * 9 + 4
# auth user, the customer in scope, its terms, their document frequencies, the won documents
# count and average length, the postings; for the deals found: customers, tags, stage
# changes, follow-up methods, attachments
SIMILAR_DEALS_STATEMENTS = 11


@contextmanager
def count_statements(engine):
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        if statement not in ("BEGIN", "BEGIN IMMEDIATE"):  # transaction control, not queries
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("customers", [1, 30])
def test_customer_list_statement_count_does_not_grow_with_rows(
    customers, client, session, fake_wecom, clock, runtime
):
    company = make_company(session)
    rep = company.reps[0][0]
    for n in range(customers):
        make_customer(session, rep, clock(), tags=[f"标签{n}", "老客户"])
    headers = sign_in(client, fake_wecom, rep)
    with count_statements(runtime.db.engine) as statements:
        response = client.get(
            "/api/v1/customers?page_size=50&tag=老客户&stage=潜在", headers=headers
        )
    assert response.status_code == 200
    assert len(response.json["items"]) == customers
    assert len(statements) == LIST_STATEMENTS, statements


@pytest.mark.parametrize("follow_up_count", [1, 12])
def test_customer_detail_statement_count_does_not_grow_with_the_timeline(
    follow_up_count, client, session, fake_wecom, clock, runtime
):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), tags=["工地"])
    for n in range(follow_up_count):
        clock.advance(hours=1)
        followups.log_follow_up(
            session,
            actor=Actor.of(rep),
            customer_id=customer.id,
            method="电话",
            summary=f"第{n}次沟通",
            now=clock(),
            store=runtime.store,
            max_attachment_bytes=10**6,
            uploads=[
                followups.Upload(f"报价{n}.pdf", b"%PDF-1.4"),
                followups.Upload(f"通话{n}.amr", b"#!AMR\n"),
            ],
        )
    session.commit()
    headers = sign_in(client, fake_wecom, rep)
    with count_statements(runtime.db.engine) as statements:
        response = client.get(f"/api/v1/customers/{customer.id}", headers=headers)
    assert response.status_code == 200
    kinds = [item["kind"] for item in response.json["timeline"]]
    assert kinds.count("follow_up") == follow_up_count
    assert len(statements) == DETAIL_STATEMENTS, statements


@pytest.mark.parametrize("customers", [1, 30])
def test_funnel_statement_count_does_not_grow_with_customers_or_reps(
    customers, client, session, fake_wecom, clock, runtime
):
    company = make_company(session)
    reps = [rep for team in company.reps for rep in team]
    for n in range(customers):
        make_customer(session, reps[n % len(reps)], clock())
    headers = sign_in(client, fake_wecom, company.boss)
    with count_statements(runtime.db.engine) as statements:
        response = client.get(
            "/api/v1/analytics/funnel?start=2026-03-01&end=2026-04-01"
            "&compare_start=2026-02-01&compare_end=2026-03-01",
            headers=headers,
        )
    assert response.status_code == 200
    assert response.json["period"]["total"]["stages"][0]["entered"] == customers
    assert len(statements) == FUNNEL_STATEMENTS, statements


@pytest.mark.parametrize("customers", [1, 30])
def test_forecast_statement_count_does_not_grow_with_customers_or_history(
    customers, client, session, fake_wecom, clock, runtime
):
    company = make_company(session)
    reps = [rep for team in company.reps for rep in team]
    for n in range(customers):
        make_customer(session, reps[n % len(reps)], clock())
    headers = sign_in(client, fake_wecom, company.boss)
    with count_statements(runtime.db.engine) as statements:
        response = client.get("/api/v1/analytics/forecast?backtest_months=12", headers=headers)
    assert response.status_code == 200
    assert response.json["next_month"]["open_deals"] == customers
    assert len(statements) == FORECAST_STATEMENTS, statements


@pytest.mark.parametrize("customers", [1, 30])
def test_kpi_and_data_quality_statement_counts_do_not_grow_with_customers_or_reps(
    customers, client, session, fake_wecom, clock, runtime
):
    company = make_company(session)
    reps = [rep for team in company.reps for rep in team]
    for n in range(customers):
        customer = make_customer(session, reps[n % len(reps)], clock())
        followups.add_follow_up(
            session,
            actor=Actor.of(reps[n % len(reps)]),
            customer=customer,
            method=ContactMethod.PHONE,
            summary="电话沟通",
            happened_at=clock(),
            now=clock(),
        )
        session.commit()
    headers = sign_in(client, fake_wecom, company.boss)
    with count_statements(runtime.db.engine) as statements:
        response = client.get(
            "/api/v1/analytics/kpi?start=2026-03-01&end=2026-04-01"
            "&compare_start=2026-02-01&compare_end=2026-03-01",
            headers=headers,
        )
    assert response.status_code == 200
    completeness = response.json["period"]["total"][3]
    assert (completeness["key"], completeness["base"]) == ("profile_completeness", customers)
    assert len(statements) == KPI_STATEMENTS, statements
    with count_statements(runtime.db.engine) as statements:
        response = client.get("/api/v1/analytics/data-quality?month=2026-03", headers=headers)
    assert response.status_code == 200
    assert sum(r["profiles"] for r in response.json["ranking"]) == customers
    assert len(statements) == DATA_QUALITY_STATEMENTS, statements


@pytest.mark.parametrize("customers", [1, 30])
def test_health_statement_count_does_not_grow_with_customers_or_reps(
    customers, client, session, fake_wecom, clock, runtime
):
    company = make_company(session)
    reps = [rep for team in company.reps for rep in team]
    for n in range(customers):
        make_customer(session, reps[n % len(reps)], clock()).grade = "A"
    session.commit()
    headers = sign_in(client, fake_wecom, company.boss)
    with count_statements(runtime.db.engine) as statements:
        response = client.get("/api/v1/analytics/health?month=2026-03", headers=headers)
    assert response.status_code == 200
    held = [p for r in response.json["reps"] for d in r["dimensions"] for p in d["parts"]]
    assert sum(p["value"] for p in held if p["key"] == "customers_held") == customers
    assert len(statements) == HEALTH_STATEMENTS, statements


@pytest.mark.parametrize("won", [1, 6])
def test_similar_deals_statement_count_does_not_grow_with_the_deals_found(
    won, client, session, fake_wecom, clock, runtime
):
    company = make_company(session)
    rep = company.reps[0][0]
    for _ in range(won):
        deal = make_customer(session, rep, clock(), category="工程客户", region="醴陵市")
        for stage in ("意向", "报价", "成交"):
            customer_changes.move_stage(
                session,
                actor=Actor.of(rep),
                customer_id=deal.id,
                to_stage=stage,
                now=clock(),
                cause="测试",
            )
        session.commit()
    customer = make_customer(session, rep, clock(), category="工程客户", region="醴陵市")
    headers = sign_in(client, fake_wecom, rep)
    with count_statements(runtime.db.engine) as statements:
        response = client.get(
            f"/api/v1/customers/{customer.id}/similar-deals?limit=20", headers=headers
        )
    assert response.status_code == 200
    assert len(response.json["items"]) == won
    assert len(statements) == SIMILAR_DEALS_STATEMENTS, statements
