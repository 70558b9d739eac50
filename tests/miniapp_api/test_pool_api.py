"""The public pool through the API: what each role sees, claiming, assigning, releasing."""

from __future__ import annotations

import pytest

from crm import pool
from crm.actors import Actor
from crm.rules import publisher
from tests.factories import make_company, make_customer, sign_in


@pytest.fixture
def pooled(session, clock):
    """One released customer per team, and one imported without an owner or a team."""
    company = make_company(session)
    released = []
    for team in company.reps:
        customer = make_customer(
            session, team[0], clock(), phone="13900139000" if not released else None
        )
        pool.release(session, customer=customer, reason="30天未跟进，自动释放", now=clock())
        released.append(customer)
    session.commit()
    return company, released


def test_each_role_lists_the_pool_it_may_see(pooled, client, fake_wecom):
    company, released = pooled
    expected = {
        company.reps[0][1]: {released[0].id},
        company.managers[1]: {released[1].id},
        company.boss: {released[0].id, released[1].id},
    }
    for user, ids in expected.items():
        headers = sign_in(client, fake_wecom, user)
        page = client.get("/api/v1/pool", headers=headers).json
        assert {c["id"] for c in page["items"]} == ids and page["total"] == len(ids)
    rep_view = client.get("/api/v1/pool", headers=sign_in(client, fake_wecom, company.reps[0][1]))
    assert rep_view.json["items"][0]["phone"] == "139****9000"
    assert rep_view.json["items"][0]["release_reason"] == "30天未跟进，自动释放"


def test_a_rep_claims_and_the_customer_is_theirs(pooled, client, fake_wecom):
    company, released = pooled
    rep = company.reps[0][1]
    headers = sign_in(client, fake_wecom, rep)
    claimed = client.post(f"/api/v1/pool/{released[0].id}/claim", headers=headers)
    assert claimed.status_code == 200 and claimed.json["owner"]["id"] == rep.id
    assert client.get(f"/api/v1/customers/{released[0].id}", headers=headers).status_code == 200
    again = client.post(f"/api/v1/pool/{released[0].id}/claim", headers=headers)
    assert (again.status_code, again.json["error"]["code"]) == (409, "already_claimed")
    previous_owner = sign_in(client, fake_wecom, company.reps[1][0])
    cooling = client.post(f"/api/v1/pool/{released[1].id}/claim", headers=previous_owner)
    assert (cooling.status_code, cooling.json["error"]["code"]) == (409, "cooldown")


def test_a_manager_assigns_and_auto_assigns_and_releases(
    pooled, client, session, fake_wecom, clock
):
    company, released = pooled
    headers = sign_in(client, fake_wecom, company.managers[0])
    target = company.reps[0][1]
    assigned = client.post(
        f"/api/v1/pool/{released[0].id}/assign",
        headers=headers,
        json={"owner_id": target.id, "reason": "熟悉该区域"},
    )
    assert assigned.json["owner"]["id"] == target.id
    back = client.post(
        f"/api/v1/customers/{released[0].id}/release", headers=headers, json={"reason": "重新分配"}
    )
    assert back.status_code == 200 and back.json["owner"] is None
    auto = client.post(
        "/api/v1/pool/auto-assign", headers=headers, json={"strategy": "round_robin"}
    )
    assert auto.json["assigned"] == [
        {"customer_id": released[0].id, "owner_id": company.reps[0][0].id}
    ]
    other_team = client.post(
        "/api/v1/pool/auto-assign", headers=headers, json={"team_id": company.teams[1].id}
    )
    assert other_team.status_code == 404


def test_caps_and_roles_are_refused_with_stable_codes_and_chinese_messages(
    pooled, client, session, fake_wecom, clock
):
    company, released = pooled
    rep = company.reps[0][1]
    spare = make_customer(session, company.reps[0][0], clock())
    pool.release(session, customer=spare, reason="客户要求换人", now=clock())
    session.commit()
    publisher.publish(
        session,
        actor=Actor.of(company.boss),
        draft_id=publisher.create_draft(
            session,
            actor=Actor.of(company.boss),
            kind="pool",
            document={"claims_per_day": 1},
            note=None,
            now=clock(),
        ).id,
        reason="测试",
        now=clock(),
    )
    session.commit()
    headers = sign_in(client, fake_wecom, rep)
    assert client.post(f"/api/v1/pool/{released[0].id}/claim", headers=headers).status_code == 200
    capped = client.post(f"/api/v1/pool/{spare.id}/claim", headers=headers)
    assert (capped.status_code, capped.json["error"]["code"]) == (409, "claim_limit")
    assert "今天已领取 1 个客户" in capped.json["error"]["message"]

    for path, body in (
        (f"/api/v1/pool/{spare.id}/assign", {"owner_id": rep.id, "reason": "自己分"}),
        (f"/api/v1/customers/{released[0].id}/release", {"reason": "不想跟了"}),
        ("/api/v1/pool/auto-assign", {}),
    ):
        refused = client.post(path, headers=headers, json=body)
        assert (refused.status_code, refused.json["error"]["code"]) == (403, "forbidden"), path

    manager = sign_in(client, fake_wecom, company.managers[1])
    for other in company.reps[1]:
        other.is_active = False
    session.commit()
    nobody = client.post("/api/v1/pool/auto-assign", headers=manager, json={})
    assert (nobody.status_code, nobody.json["error"]["code"]) == (409, "no_active_rep")
    inactive = client.post(
        f"/api/v1/pool/{released[1].id}/assign",
        headers=manager,
        json={"owner_id": company.reps[1][1].id, "reason": "x"},
    )
    assert (inactive.status_code, inactive.json["error"]["field"]) == (422, "owner_id")
