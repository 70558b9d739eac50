"""A manager changes the grading rules through the API: preview, publish, see it, roll back."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from models import AuditEntry, Customer, RuleSetVersion
from tests.factories import make_company, make_customer, sign_in

EXPO_RULE = {
    "name": "参加过展会",
    "when": {"fact": "attended_expo", "op": "==", "value": True},
    "grade": "B",
}


@pytest.fixture
def book(session, clock):
    """Per rep: a hot customer (A by the default rule), an expo visitor and a cold one."""
    company = make_company(session)
    for team in company.reps:
        for rep in team:
            make_customer(session, rep, clock(), inquiry_count=3, has_budget=True)
            make_customer(session, rep, clock(), attended_expo=True)
            make_customer(session, rep, clock())
    return company


def _grades(client, headers):
    items = client.get("/api/v1/customers?page_size=100", headers=headers).json["items"]
    return sorted(c["grade"] for c in items)


def _with_expo_rule():
    document = copy.deepcopy(DEFAULT_DOCUMENTS["grading"])
    document["rules"].append(EXPO_RULE)
    return document


def test_manager_previews_publishes_and_rolls_back_a_grading_rule(
    book, client, session, fake_wecom
):
    manager, rep = book.managers[0], book.reps[1][0]
    headers = sign_in(client, fake_wecom, manager)
    rep_headers = sign_in(client, fake_wecom, rep)
    assert _grades(client, rep_headers) == ["A", "C", "C"]

    preview = client.post(
        "/api/v1/rule-sets/preview",
        headers=headers,
        json={"kind": "grading", "document": _with_expo_rule()},
    ).json
    # The manager sees their own team only: 2 reps x 3 customers, 2 expo visitors move C -> B.
    assert (preview["valid"], preview["scope_customers"], preview["changed"]) == (True, 6, 2)
    assert preview["transitions"] == [{"from": "C", "to": "B", "customers": 2}]
    assert {s["owner"] for s in preview["sample"]} == {r.name for r in book.reps[0]}
    assert _grades(client, rep_headers) == ["A", "C", "C"]  # a preview changes nothing

    draft = client.post(
        "/api/v1/rule-sets/drafts",
        headers=headers,
        json={"kind": "grading", "document": _with_expo_rule(), "note": "淡季展会客户升级"},
    )
    assert draft.status_code == 201 and draft.json["problems"] == []
    published = client.post(
        f"/api/v1/rule-sets/drafts/{draft.json['id']}/publish",
        headers=headers,
        json={"reason": "淡季主推展会客户"},
    )
    assert published.status_code == 200, published.json
    assert published.json["version"] == 1
    assert published.json["regraded"] == {"total": 12, "changed": 4, "evaluated_in": "sql"}
    assert _grades(client, rep_headers) == ["A", "B", "C"]  # the rep's list, at once

    entry = session.scalars(select(AuditEntry).where(AuditEntry.entity == "rule_set")).one()
    assert (entry.actor_id, entry.action, entry.reason) == (
        manager.id,
        "publish",
        "淡季主推展会客户",
    )
    assert (entry.before["version"], entry.after["version"]) == (0, 1)
    grade_entries = session.scalars(
        select(AuditEntry).where(AuditEntry.entity == "customer", AuditEntry.action == "grade")
    ).all()
    assert {(e.before["grade"], e.after["grade"]) for e in grade_entries} == {("C", "B")}
    assert len(grade_entries) == 4 and all(e.actor_id == manager.id for e in grade_entries)

    rolled = client.post(
        "/api/v1/rule-sets/rollback",
        headers=headers,
        json={"kind": "grading", "version": 0, "reason": "旺季恢复默认"},
    )
    assert rolled.status_code == 200, rolled.json
    assert (rolled.json["version"], rolled.json["rolled_back_from"]) == (2, 0)
    assert _grades(client, rep_headers) == ["A", "C", "C"]

    history = client.get("/api/v1/rule-sets/history?kind=grading", headers=headers).json["items"]
    assert [(v["version"], v["status"]) for v in history] == [
        (2, "active"),
        (1, "superseded"),
        (0, "default"),
    ]
    again = client.post(
        "/api/v1/rule-sets/rollback",
        headers=headers,
        json={"kind": "grading", "version": 1, "reason": "还是要展会规则"},
    )
    assert again.json["version"] == 3 and _grades(client, rep_headers) == ["A", "B", "C"]
    session.rollback()  # end the test's read snapshot to see what the requests wrote since
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.entity == "rule_set").order_by(AuditEntry.id)
    ).all()
    assert actions == ["publish", "rollback", "rollback"]


def test_an_invalid_rule_is_refused_with_its_path_and_nothing_is_published(
    book, client, session, fake_wecom
):
    headers = sign_in(client, fake_wecom, book.managers[0])
    document = _with_expo_rule()
    document["rules"][1]["when"] = {"fact": "attended_expo", "op": ">=", "value": True}
    draft = client.post(
        "/api/v1/rule-sets/drafts", headers=headers, json={"kind": "grading", "document": document}
    ).json
    assert [p["path"] for p in draft["problems"]] == ["rules[1].when.op"]

    refused = client.post(
        f"/api/v1/rule-sets/drafts/{draft['id']}/publish", headers=headers, json={"reason": "试试"}
    )
    assert refused.status_code == 422
    error = refused.json["error"]
    assert (error["code"], error["field"]) == ("invalid_rule", "rules[1].when.op")
    assert "第2条规则「参加过展会」" in error["message"] and "「>=」" in error["message"]
    assert session.scalar(
        select(RuleSetVersion.status).where(RuleSetVersion.id == draft["id"])
    ) == ("draft")
    assert session.scalars(select(Customer.grade).where(Customer.grade == "B")).all() == []
    assert session.scalars(select(AuditEntry).where(AuditEntry.entity == "rule_set")).all() == []
    overview = client.get("/api/v1/rule-sets", headers=headers).json["items"]
    assert {s["kind"]: s["active_version"] for s in overview}["grading"] == 0

    checked = client.post(
        "/api/v1/rule-sets/validate",
        headers=headers,
        json={"kind": "grading", "document": document},
    ).json
    assert checked["valid"] is False and checked["problems"][0]["path"] == "rules[1].when.op"


def test_a_draft_is_edited_until_it_is_right(book, client, fake_wecom):
    headers = sign_in(client, fake_wecom, book.boss)
    draft = client.post(
        "/api/v1/rule-sets/drafts",
        headers=headers,
        json={"kind": "pool", "document": {"claims_per_day": 500}},
    ).json
    assert [p["path"] for p in draft["problems"]] == ["claims_per_day"]
    fixed = client.put(
        f"/api/v1/rule-sets/drafts/{draft['id']}",
        headers=headers,
        json={"document": {"claims_per_day": 3, "cooldown_days": 14}},
    ).json
    assert fixed["problems"] == []
    published = client.post(
        f"/api/v1/rule-sets/drafts/{draft['id']}/publish", headers=headers, json={"reason": "收紧"}
    )
    assert published.status_code == 200
    assert client.get(f"/api/v1/rule-sets/drafts/{draft['id']}", headers=headers).status_code == 404


def test_a_draft_belongs_to_its_author_and_the_boss(book, client, session, fake_wecom):
    author, other = (sign_in(client, fake_wecom, m) for m in book.managers)
    boss = sign_in(client, fake_wecom, book.boss)
    draft = client.post(
        "/api/v1/rule-sets/drafts",
        headers=author,
        json={"kind": "grading", "document": _with_expo_rule(), "note": "一组的草稿"},
    ).json
    url = f"/api/v1/rule-sets/drafts/{draft['id']}"
    missing = "/api/v1/rule-sets/drafts/2000000000"
    for method, suffix, body in [
        ("get", "", None),
        ("put", "", {"document": DEFAULT_DOCUMENTS["grading"]}),
        ("delete", "", None),
        ("post", "/preview", None),
        ("post", "/publish", {"reason": "抢先发布"}),
    ]:
        call = getattr(client, method)
        hidden, absent = (call(u + suffix, headers=other, json=body) for u in (url, missing))
        assert hidden.status_code == 404 and hidden.json == absent.json, (method, suffix)
    listed = client.get("/api/v1/rule-sets", headers=other).json["items"]
    assert all(kind["drafts"] == [] for kind in listed)

    assert client.get(url, headers=boss).json["note"] == "一组的草稿"
    by_boss = client.get("/api/v1/rule-sets", headers=boss).json["items"]
    assert [d["id"] for kind in by_boss for d in kind["drafts"]] == [draft["id"]]
    kept = session.get(RuleSetVersion, draft["id"])
    assert (kept.status, kept.document) == ("draft", _with_expo_rule())
    assert client.delete(url, headers=author).status_code == 204


def test_reps_cannot_read_or_change_rules(book, client, fake_wecom):
    headers = sign_in(client, fake_wecom, book.reps[0][0])
    body = {"kind": "grading", "document": _with_expo_rule()}
    for method, path, json in [
        ("get", "/api/v1/rule-sets", None),
        ("post", "/api/v1/rule-sets/preview", body),
        ("post", "/api/v1/rule-sets/drafts", body),
        ("post", "/api/v1/rule-sets/rollback", {"kind": "grading", "version": 0, "reason": "x"}),
    ]:
        response = getattr(client, method)(path, headers=headers, json=json)
        assert response.status_code == 403, path


def test_the_vocabulary_lists_custom_fields_next_to_built_in_facts(book, client, fake_wecom):
    headers = sign_in(client, fake_wecom, book.boss)
    client.post(
        "/api/v1/custom-fields",
        headers=headers,
        json={"key": "area", "label": "厂房面积", "kind": "number"},
    )
    vocabulary = client.get("/api/v1/rule-sets/vocabulary", headers=headers).json
    names = {f["name"]: f for f in vocabulary["facts"]}
    assert {"inquiry_count", "days_since_follow_up", "follow_up.text", "custom.area"} <= set(names)
    assert ">=" in names["custom.area"]["ops"]
    assert "release_to_pool" in {a["name"] for a in vocabulary["actions"]}
