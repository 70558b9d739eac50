"""What every operation does before its view runs: unknown query parameters are refused, once,
from the same declarations that build the OpenAPI document."""

from __future__ import annotations

import re

from miniapp_api.routing import OPERATIONS
from tests.factories import make_company, make_customer, sign_in


def test_an_unknown_query_parameter_is_refused_naming_it(client, session, fake_wecom, clock):
    company = make_company(session)
    rep = company.reps[0][0]
    make_customer(session, rep, clock(), name="小预算客户")
    headers = sign_in(client, fake_wecom, rep)

    response = client.get("/api/v1/customers?budget_wan=12&stage=意向", headers=headers)

    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["code"] == "unknown_parameter"
    assert error["field"] == "budget_wan"
    assert "「budget_wan」" in error["message"]
    assert "stage" in error["message"] and "page_size" in error["message"]  # what would work


def test_declared_parameters_and_custom_field_filters_still_filter(
    client, session, fake_wecom, clock
):
    company = make_company(session)
    headers = sign_in(client, fake_wecom, company.boss)  # fields are the company's: the boss's
    created = client.post(
        "/api/v1/custom-fields",
        headers=headers,
        json={"key": "level", "label": "意向强度", "kind": "enum", "options": ["强", "弱"]},
    )
    assert created.status_code == 201, created.json
    rep = company.reps[0][0]
    make_customer(session, rep, clock(), name="强意向", custom_values={"level": "强"})
    make_customer(session, rep, clock(), name="弱意向", custom_values={"level": "弱"})

    response = client.get("/api/v1/customers?custom=level:弱&page_size=5", headers=headers)

    assert response.status_code == 200, response.json
    assert [c["name"] for c in response.json["items"]] == ["弱意向"]


def test_an_operation_without_parameters_says_it_takes_none(client, session, fake_wecom):
    headers = sign_in(client, fake_wecom, make_company(session).reps[0][0])

    response = client.get("/api/v1/me/today?date=2026-03-02", headers=headers)

    assert response.status_code == 400, response.json
    assert response.json["error"]["field"] == "date"
    assert "不接受查询参数" in response.json["error"]["message"]


def test_every_operation_refuses_an_unknown_query_parameter(client, session, fake_wecom):
    """The check lives in the one wrapper every operation goes through: a new operation gets it
    without asking, and before its body is read or its record looked up."""
    headers = sign_in(client, fake_wecom, make_company(session).boss)
    for op in OPERATIONS:
        path = re.sub(r"\{[a-z_]+\}", "1", op.path)
        response = client.open(f"/api/v1{path}?budget_wan=12", method=op.method, headers=headers)
        assert response.status_code == 400, (op.method, op.path, response.json)
        assert response.json["error"]["code"] == "unknown_parameter", (op.method, op.path)
