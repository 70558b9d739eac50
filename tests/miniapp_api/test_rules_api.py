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


def _grades_by_team(session, book):
    session.rollback()  # end the test's read snapshot to see what the requests wrote since
    return {
        team.id: sorted(
            (c.id, c.grade)
            for c in session.scalars(select(Customer).where(Customer.team_id == team.id))
        )
        for team in book.teams
    }


def _changed(before, after):
    return {
        cid
        for team in before
        for (cid, old), (_, new) in zip(before[team], after[team], strict=True)
        if old != new
    }


def test_a_managers_publish_regrades_their_team_only_exactly_as_previewed(
    book, client, session, fake_wecom
):
    manager = book.managers[0]
    headers = sign_in(client, fake_wecom, manager)
    before = _grades_by_team(session, book)

    preview = client.post(
        "/api/v1/rule-sets/preview",
        headers=headers,
        json={"kind": "grading", "document": _with_expo_rule()},
    ).json
    # Their own team only: 2 reps x 3 customers, 2 expo visitors move C -> B.
    assert (preview["valid"], preview["scope_customers"], preview["changed"]) == (True, 6, 2)
    assert preview["team_id"] == manager.team_id
    assert preview["transitions"] == [{"from": "C", "to": "B", "customers": 2}]
    assert {s["owner"] for s in preview["sample"]} == {r.name for r in book.reps[0]}
    assert _grades_by_team(session, book) == before  # a preview changes nothing

    draft = client.post(
        "/api/v1/rule-sets/drafts",
        headers=headers,
        json={"kind": "grading", "document": _with_expo_rule(), "note": "淡季展会客户升级"},
    )
    assert draft.status_code == 201 and draft.json["team_id"] == manager.team_id
    published = client.post(
        f"/api/v1/rule-sets/drafts/{draft.json['id']}/publish",
        headers=headers,
        json={"reason": "淡季主推展会客户"},
    )
    assert published.status_code == 200, published.json
    assert (published.json["version"], published.json["team_id"]) == (1, manager.team_id)
    assert published.json["regraded"] == {"total": 6, "changed": 2, "evaluated_in": "sql"}
    after = _grades_by_team(session, book)
    other_team = book.teams[1].id
    assert after[other_team] == before[other_team]  # another team's customers are untouched
    assert _changed(before, after) == {s["id"] for s in preview["sample"]}  # preview == publish

    entry = session.scalars(select(AuditEntry).where(AuditEntry.entity == "rule_set")).one()
    assert (entry.actor_id, entry.action, entry.reason) == (
        manager.id,
        "publish",
        "淡季主推展会客户",
    )
    assert (entry.before["version"], entry.after["version"]) == (0, 1)
    assert entry.after["team_id"] == manager.team_id
    grade_entries = session.scalars(
        select(AuditEntry).where(AuditEntry.entity == "customer", AuditEntry.action == "grade")
    ).all()
    assert {(e.before["grade"], e.after["grade"]) for e in grade_entries} == {("C", "B")}
    assert len(grade_entries) == 2 and all(e.actor_id == manager.id for e in grade_entries)

    # The boss's company set now governs the other team only: team 0 keeps its own.
    boss = sign_in(client, fake_wecom, book.boss)
    company_preview = client.post(
        "/api/v1/rule-sets/preview",
        headers=boss,
        json={"kind": "grading", "document": _everyone_d()},
    ).json
    assert (company_preview["team_id"], company_preview["scope_customers"]) == (None, 6)
    company_draft = client.post(
        "/api/v1/rule-sets/drafts",
        headers=boss,
        json={"kind": "grading", "document": _everyone_d()},
    ).json
    client.post(
        f"/api/v1/rule-sets/drafts/{company_draft['id']}/publish",
        headers=boss,
        json={"reason": "公司统一降级"},
    )
    company_after = _grades_by_team(session, book)
    assert company_after[manager.team_id] == after[manager.team_id]
    assert {grade for _, grade in company_after[other_team]} == {"D"}
    assert _changed(after, company_after) == {
        cid for cid, grade in after[other_team] if grade != "D"
    }
    assert company_preview["changed"] == len(_changed(after, company_after))


def _everyone_d():
    return {"rules": [], "default": "D"}


def test_a_teams_rollback_and_history_leave_the_companys_set_alone(
    book, client, session, fake_wecom
):
    manager = book.managers[0]
    headers = sign_in(client, fake_wecom, manager)
    boss = sign_in(client, fake_wecom, book.boss)
    for who, document in ((boss, _everyone_d()), (headers, _with_expo_rule())):
        draft = client.post(
            "/api/v1/rule-sets/drafts",
            headers=who,
            json={"kind": "grading", "document": document},
        ).json
        published = client.post(
            f"/api/v1/rule-sets/drafts/{draft['id']}/publish", headers=who, json={"reason": "发布"}
        )
        assert published.status_code == 200, published.json
    team_grades = _grades_by_team(session, book)[manager.team_id]
    assert sorted(grade for _, grade in team_grades) == ["A", "A", "B", "B", "C", "C"]

    rolled = client.post(
        "/api/v1/rule-sets/rollback",
        headers=headers,
        json={"kind": "grading", "version": 0, "reason": "改回公司规则"},
    )
    assert rolled.status_code == 200, rolled.json
    assert (rolled.json["version"], rolled.json["team_id"]) == (0, manager.team_id)
    grades = _grades_by_team(session, book)
    assert {grade for team in grades.values() for _, grade in team} == {"D"}  # the company's
    team_history = client.get("/api/v1/rule-sets/history?kind=grading", headers=headers).json
    assert team_history["team_id"] == manager.team_id
    assert [(v["version"], v["status"]) for v in team_history["items"]] == [
        (2, "superseded"),
        (0, "active"),
    ]
    assert team_history["items"][-1]["document"] == _everyone_d()
    company_history = client.get("/api/v1/rule-sets/history?kind=grading", headers=boss).json
    assert [(v["version"], v["status"]) for v in company_history["items"]] == [
        (1, "active"),
        (0, "default"),
    ]
    # A company version is not the team's to roll back to; its own version 2 is.
    assert (
        client.post(
            "/api/v1/rule-sets/rollback",
            headers=headers,
            json={"kind": "grading", "version": 1, "reason": "试试公司的"},
        ).status_code
        == 404
    )
    again = client.post(
        "/api/v1/rule-sets/rollback",
        headers=headers,
        json={"kind": "grading", "version": 2, "reason": "还是要展会规则"},
    )
    assert (again.json["version"], again.json["rolled_back_from"]) == (3, 2)
    grades = _grades_by_team(session, book)
    assert {grade for _, grade in grades[book.teams[1].id]} == {"D"}
    assert sorted(grade for _, grade in grades[manager.team_id]) == ["A", "A", "B", "B", "C", "C"]
    overview = client.get("/api/v1/rule-sets", headers=boss).json["items"]
    grading_set = next(item for item in overview if item["kind"] == "grading")
    assert (grading_set["active_version"], grading_set["document"]) == (1, _everyone_d())
    mine = client.get("/api/v1/rule-sets", headers=headers).json["items"]
    assert next(i for i in mine if i["kind"] == "grading")["active_version"] == 3
    for_team = client.get(f"/api/v1/rule-sets?team_id={book.teams[1].id}", headers=boss).json[
        "items"
    ]
    assert next(i for i in for_team if i["kind"] == "grading")["inherited"] is True
    session.rollback()
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.entity == "rule_set").order_by(AuditEntry.id)
    ).all()
    assert actions == ["publish", "publish", "rollback", "rollback"]


def test_a_manager_cannot_reach_for_another_teams_or_the_companys_rule_sets(
    book, client, session, fake_wecom
):
    headers = sign_in(client, fake_wecom, book.managers[0])
    other = book.teams[1].id
    body = {"kind": "grading", "document": _with_expo_rule(), "team_id": other}
    for method, path, json in [
        ("get", f"/api/v1/rule-sets?team_id={other}", None),
        ("get", f"/api/v1/rule-sets/history?kind=grading&team_id={other}", None),
        ("post", "/api/v1/rule-sets/preview", body),
        ("post", "/api/v1/rule-sets/drafts", body),
        (
            "post",
            "/api/v1/rule-sets/rollback",
            {"kind": "grading", "version": 0, "reason": "越权", "team_id": other},
        ),
    ]:
        response = getattr(client, method)(path, headers=headers, json=json)
        assert response.status_code == 403, path
        assert response.json["error"]["message"] == "主管只能查看和修改本团队的规则"
    session.rollback()
    assert session.scalars(select(RuleSetVersion)).all() == []


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
    team = book.managers[0].team_id
    by_boss = client.get(f"/api/v1/rule-sets?team_id={team}", headers=boss).json["items"]
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


def test_the_keyword_dictionary_is_drafted_previewed_published_and_rolled_back_like_rules(
    book, client, session, fake_wecom
):
    headers = sign_in(client, fake_wecom, book.managers[0])
    document = copy.deepcopy(DEFAULT_DOCUMENTS["keywords"])
    document["categories"].append({"name": "样品", "words": ["样品", "寄样"]})
    listed = client.get("/api/v1/rule-sets", headers=headers).json["items"]
    dictionary = next(item for item in listed if item["kind"] == "keywords")
    assert (dictionary["label"], dictionary["active_version"]) == ("关键词词库", 0)
    assert dictionary["inherited"] is True
    grades = _grades_by_team(session, book)

    draft = client.post(
        "/api/v1/rule-sets/drafts",
        headers=headers,
        json={"kind": "keywords", "document": document, "note": "加样品"},
    ).json
    assert draft["problems"] == []
    preview = client.post(f"/api/v1/rule-sets/drafts/{draft['id']}/preview", headers=headers).json
    assert (preview["valid"], preview["changed"]) == (True, 0)
    assert preview["rules"] == [
        {"rule": "类别「样品」", "customers": 0, "added": ["样品", "寄样"], "removed": []}
    ]
    published = client.post(
        f"/api/v1/rule-sets/drafts/{draft['id']}/publish",
        headers=headers,
        json={"reason": "加样品"},
    ).json
    assert (published["kind"], published["version"], published["regraded"]) == ("keywords", 1, None)
    tried = client.post("/api/v1/capture/preview", headers=headers, json={"messages": ["寄样"]})
    assert tried.json["results"][0]["categories"] == ["样品"]

    history = client.get("/api/v1/rule-sets/history?kind=keywords", headers=headers).json
    assert [(v["version"], v["status"]) for v in history["items"]] == [
        (1, "active"),
        (0, "default"),
    ]
    rolled = client.post(
        "/api/v1/rule-sets/rollback",
        headers=headers,
        json={"kind": "keywords", "version": 0, "reason": "沿用公司词库"},
    )
    assert (rolled.status_code, rolled.json["version"]) == (200, 0)
    tried = client.post("/api/v1/capture/preview", headers=headers, json={"messages": ["寄样"]})
    assert tried.json["results"][0]["categories"] == []
    assert _grades_by_team(session, book) == grades  # a dictionary re-grades nobody
    audited = session.scalars(
        select(AuditEntry.after).where(AuditEntry.entity == "rule_set").order_by(AuditEntry.id)
    ).all()
    assert [(a["kind"], a["team_id"], a["version"]) for a in audited] == [
        ("keywords", book.teams[0].id, 1),
        ("keywords", book.teams[0].id, 0),
    ]
