"""GET /customers/{id}/similar-deals and POST /analytics/hints as each role: won deals in the
caller's scope only, no contact details, 404 for a customer out of scope, codes of bad input.
The ranking itself is checked in tests/crm/test_similar.py."""

from __future__ import annotations

import pytest

from crm import customer_changes
from crm.actors import Actor
from crm.followups import add_follow_up
from crm.vocab import ContactMethod, Stage
from tests.factories import make_company, make_customer, sign_in

MISSING = 2_000_000_000
DESCRIPTION = "厂房面积5000平，生产陶瓷制品"
CONTACT_KEYS = {"phone", "email", "owner", "owner_id", "owner_name", "external_userid"}


@pytest.fixture
def world(session, clock):
    """A won ceramics deal and an open ceramics customer for every rep of both teams."""
    company = make_company(session)
    for team in company.reps:
        for rep in team:
            actor = Actor.of(rep)
            won = make_customer(
                session,
                rep,
                clock(),
                name=f"{rep.name}的陶瓷厂",
                phone=f"1380000{rep.id:04d}",
                email=f"rep{rep.id}@example.com",
                category="工程客户",
            )
            add_follow_up(
                session,
                actor=actor,
                customer=won,
                method=ContactMethod.VISIT,
                summary="陶瓷厂新建厂房，需要防滑地砖，已签合同",
                happened_at=clock(),
                now=clock(),
            )
            for stage in (Stage.INTEREST, Stage.QUOTE, Stage.WON):
                clock.advance(days=2)
                customer_changes.move_stage(
                    session,
                    actor=actor,
                    customer_id=won.id,
                    to_stage=stage,
                    now=clock(),
                    cause="测试",
                )
            company.extra.setdefault("won", {})[rep.id] = won
            company.extra.setdefault("open", {})[rep.id] = make_customer(
                session, rep, clock(), name=f"{rep.name}的新客户", category="工程客户"
            )
            session.commit()
    return company


def _visible_won(company, user) -> set[int]:
    won = company.extra["won"].values()
    if user.role == "boss":
        return {c.id for c in won}
    if user.role == "manager":
        return {c.id for c in won if c.team_id == user.team_id}
    return {company.extra["won"][user.id].id}


@pytest.mark.parametrize("role", ["rep", "manager", "boss"])
def test_similar_deals_and_hints_hold_only_won_deals_the_role_may_see(
    role, world, client, fake_wecom
):
    user = {"rep": world.reps[0][1], "manager": world.managers[0], "boss": world.boss}[role]
    customer = world.extra["open"][world.reps[0][1].id]
    headers = sign_in(client, fake_wecom, user)

    deals = client.get(f"/api/v1/customers/{customer.id}/similar-deals?limit=20", headers=headers)
    hints = client.post(
        "/api/v1/analytics/hints", json={"description": DESCRIPTION}, headers=headers
    )

    assert deals.status_code == 200, deals.json
    assert hints.status_code == 200, hints.json
    expected = _visible_won(world, user)
    assert {d["customer_id"] for d in deals.json["items"]} == expected
    assert {d["customer_id"] for d in hints.json["deals"]} == expected
    for deal in [*deals.json["items"], *hints.json["deals"]]:
        assert not CONTACT_KEYS & set(deal), deal
        assert [step["stage"] for step in deal["path"]] == ["潜在", "意向", "报价", "成交"]
    assert {c["name"] for c in hints.json["concerns"]} == {"合同"}


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_a_customer_out_of_scope_answers_like_a_missing_one(role, world, client, fake_wecom):
    user = world.reps[0][0] if role == "rep" else world.managers[0]
    other = world.extra["open"][world.reps[1][0].id]
    headers = sign_in(client, fake_wecom, user)

    hidden = client.get(f"/api/v1/customers/{other.id}/similar-deals", headers=headers)
    missing = client.get(f"/api/v1/customers/{MISSING}/similar-deals", headers=headers)

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json == missing.json


@pytest.mark.parametrize(
    ("body", "code"),
    [({"description": "  "}, "required"), ({"description": "厂" * 501}, "validation_failed")],
)
def test_a_blank_or_overlong_description_is_refused(world, client, fake_wecom, body, code):
    headers = sign_in(client, fake_wecom, world.boss)
    response = client.post("/api/v1/analytics/hints", json=body, headers=headers)
    assert response.status_code == 422
    assert response.json["error"]["code"] == code
