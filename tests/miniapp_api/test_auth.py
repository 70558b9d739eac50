"""Signing in and out: WeCom's jscode2session through the real client, signed expiring tokens,
logout, revoke-all and deactivation refusing tokens at once."""

from __future__ import annotations

from sqlalchemy import select

from crm import users
from miniapp_api import auth
from models import AuditEntry, User
from models.users import Role
from tests.factories import make_company, sign_in
from wecrm.wiring import build_runtime


def test_login_with_a_wecom_code_returns_a_token_for_that_user(client, session, fake_wecom):
    company = make_company(session)
    fake_wecom.register_code("abc", company.reps[0][0].wecom_userid)
    response = client.post("/api/v1/auth/login", json={"code": "abc"})
    assert response.status_code == 200
    assert response.json["user"]["wecom_userid"] == company.reps[0][0].wecom_userid
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {response.json['token']}"})
    assert me.json["id"] == company.reps[0][0].id


def test_a_code_is_good_for_one_login_only(client, session, fake_wecom):
    company = make_company(session)
    fake_wecom.register_code("once", company.boss.wecom_userid)
    assert client.post("/api/v1/auth/login", json={"code": "once"}).status_code == 200
    again = client.post("/api/v1/auth/login", json={"code": "once"})
    assert again.status_code == 401
    assert again.json["error"]["code"] == "bad_code"
    assert "登录码" in again.json["error"]["message"]


def test_a_wecom_member_without_a_wecrm_account_is_told_so(client, session, fake_wecom):
    make_company(session)
    fake_wecom.register_code("stranger", "not-a-user")
    response = client.post("/api/v1/auth/login", json={"code": "stranger"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unknown_user"


def test_login_while_wecom_is_down_answers_503_not_500(client, session, fake_wecom):
    make_company(session)
    fake_wecom.set_unreachable(True)
    response = client.post("/api/v1/auth/login", json={"code": "x"})
    assert response.status_code == 503
    assert response.json["error"]["code"] == "wecom_unavailable"


def test_token_expires_after_its_ttl(client, session, fake_wecom, clock, runtime):
    company = make_company(session)
    headers = sign_in(client, fake_wecom, company.boss)
    clock.advance(seconds=runtime.settings.token_ttl_seconds - 60)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    clock.advance(seconds=120)
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_expired"


def test_tampered_or_missing_tokens_are_refused(client, session, fake_wecom):
    company = make_company(session)
    headers = sign_in(client, fake_wecom, company.boss)
    forged = {"Authorization": headers["Authorization"][:-2] + "xx"}
    assert client.get("/api/v1/customers", headers=forged).json["error"]["code"] == "token_invalid"
    assert client.get("/api/v1/customers").json["error"]["code"] == "unauthenticated"
    basic = {"Authorization": "Basic Zm9vOmJhcg=="}
    assert client.get("/api/v1/customers", headers=basic).status_code == 401


def test_a_deactivated_user_is_signed_out(client, session, fake_wecom):
    company = make_company(session)
    rep = company.reps[0][0]
    headers = sign_in(client, fake_wecom, rep)
    rep.is_active = False
    session.commit()
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "user_inactive"


def test_a_member_the_boss_deactivates_is_signed_out_at_once_and_cannot_sign_in(
    client, session, fake_wecom
):
    company = make_company(session)
    rep = company.reps[0][0]
    rep_headers = sign_in(client, fake_wecom, rep)
    manager_headers = sign_in(client, fake_wecom, company.managers[0])
    boss_headers = sign_in(client, fake_wecom, company.boss)

    refused = client.post(f"/api/v1/users/{rep.id}/deactivate", headers=manager_headers)
    assert refused.status_code == 403
    assert client.get("/api/v1/me", headers=rep_headers).status_code == 200

    done = client.post(f"/api/v1/users/{rep.id}/deactivate", headers=boss_headers)
    assert done.status_code == 200 and done.json["is_active"] is False
    assert client.get("/api/v1/me", headers=rep_headers).status_code == 401
    code = "code-of-a-leaver"
    fake_wecom.register_code(code, rep.wecom_userid)
    signed_in = client.post("/api/v1/auth/login", json={"code": code})
    assert (signed_in.status_code, signed_in.json["error"]["code"]) == (401, "unknown_user")
    myself = client.post(f"/api/v1/users/{company.boss.id}/deactivate", headers=boss_headers)
    assert myself.status_code == 409
    assert (
        client.post("/api/v1/users/2000000000/deactivate", headers=boss_headers).status_code == 404
    )


def test_dev_login_exists_only_when_the_demo_turns_it_on(client, session, app, runtime):
    make_company(session)
    refused = client.post("/api/v1/auth/dev-login", json={"userid": "boss"})
    assert refused.status_code == 404
    app.extensions["wecrm"] = build_runtime(
        runtime.settings.with_overrides(dev_login=True), clock=runtime.clock
    )
    try:
        allowed = client.post("/api/v1/auth/dev-login", json={"userid": "boss"})
    finally:
        app.extensions["wecrm"].close()
        app.extensions["wecrm"] = runtime
    assert allowed.status_code == 200
    assert allowed.json["user"]["role"] == "boss"


# --- signing out ---------------------------------------------------------------------------------


def _me(client, headers):
    return client.get("/api/v1/me", headers=headers)


def test_logout_refuses_that_token_at_once_and_only_that_one(client, session, fake_wecom, runtime):
    company = make_company(session)
    phone = sign_in(client, fake_wecom, company.boss)
    laptop = sign_in(client, fake_wecom, company.boss)

    assert client.post("/api/v1/auth/logout", headers=phone).status_code == 204

    refused = _me(client, phone)
    assert refused.status_code == 401
    assert refused.json["error"]["code"] == "token_revoked"
    assert "重新登录" in refused.json["error"]["message"]
    assert client.post("/api/v1/auth/logout", headers=phone).status_code == 401
    assert _me(client, laptop).status_code == 200
    # Redis forgets the logout when the token would have expired anyway.
    (key,) = runtime.redis.keys("wecrm:logged-out:*")
    assert 0 < runtime.redis.ttl(key) <= runtime.settings.token_ttl_seconds


def test_revoke_all_refuses_every_token_of_that_person_and_nobody_elses(
    client, session, fake_wecom
):
    company = make_company(session)
    rep, teammate = company.reps[0]
    devices = [sign_in(client, fake_wecom, rep) for _ in range(2)]
    teammate_headers = sign_in(client, fake_wecom, teammate)
    boss = sign_in(client, fake_wecom, company.boss)

    response = client.post(f"/api/v1/users/{rep.id}/sessions/revoke", headers=boss)

    assert response.status_code == 204
    for headers in devices:
        assert _me(client, headers).json["error"]["code"] == "token_revoked"
    assert _me(client, teammate_headers).status_code == 200
    assert _me(client, boss).status_code == 200
    assert _me(client, sign_in(client, fake_wecom, rep)).status_code == 200  # may sign in again
    entry = session.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "revoke_sessions", AuditEntry.entity_id == rep.id
        )
    )
    assert entry.actor_id == company.boss.id


def test_who_may_sign_whom_out_everywhere_follows_the_org_chart(client, session, fake_wecom):
    company = make_company(session)
    boss, (manager0, manager1) = company.boss, company.managers
    (rep00, rep01), (rep10, _) = company.reps
    cases = [
        (rep00, rep00, 204),
        (rep00, rep01, 404),  # another rep is out of a rep's sight
        (rep00, manager0, 404),
        (manager0, manager0, 204),
        (manager0, rep01, 204),
        (manager0, rep10, 404),  # another team's rep
        (manager0, manager1, 404),
        (manager0, boss, 404),
        (boss, manager1, 204),
        (boss, boss, 204),
    ]
    for caller, target, expected in cases:
        target_headers = sign_in(client, fake_wecom, target)
        caller_headers = sign_in(client, fake_wecom, caller)
        response = client.post(f"/api/v1/users/{target.id}/sessions/revoke", headers=caller_headers)
        assert response.status_code == expected, (caller.wecom_userid, target.wecom_userid)
        still_valid = _me(client, target_headers).status_code == 200
        assert still_valid is (expected != 204), (caller.wecom_userid, target.wecom_userid)


def test_a_manager_may_not_sign_out_a_fellow_manager_of_their_team(client, session, fake_wecom):
    company = make_company(session)
    manager = company.managers[0]
    fellow = User(
        wecom_userid="manager0b",
        name="副主管",
        role=Role.MANAGER,
        team_id=manager.team_id,
        is_active=True,
    )
    session.add(fellow)
    session.commit()
    fellow_headers = sign_in(client, fake_wecom, fellow)

    response = client.post(
        f"/api/v1/users/{fellow.id}/sessions/revoke", headers=sign_in(client, fake_wecom, manager)
    )

    assert response.status_code == 403
    assert _me(client, fellow_headers).status_code == 200


def test_a_manager_without_a_team_may_still_sign_themself_out_everywhere(
    client, session, fake_wecom
):
    make_company(session)
    loner = User(wecom_userid="loner", name="待分组主管", role=Role.MANAGER, is_active=True)
    session.add(loner)
    session.commit()
    headers = sign_in(client, fake_wecom, loner)

    response = client.post(f"/api/v1/users/{loner.id}/sessions/revoke", headers=headers)

    assert response.status_code == 204
    assert _me(client, headers).json["error"]["code"] == "token_revoked"


def _directory(company, *, leaving: User | None = None):
    """WeCom's directory for make_company (team departments 2 and 3 under the root 1)."""
    departments = [{"id": 1, "name": "湘瓷建材", "parentid": 0}] + [
        {"id": t.wecom_department_id, "name": t.name, "parentid": 1} for t in company.teams
    ]
    department_of = {t.id: t.wecom_department_id for t in company.teams}
    members = []
    for user in company.everyone:
        if user is leaving:
            continue
        department = department_of.get(user.team_id, 1)
        leads = user.role in (Role.BOSS, Role.MANAGER)
        members.append(
            {
                "userid": user.wecom_userid,
                "name": user.name,
                "department": [department],
                "is_leader_in_dept": [int(leads)],
                "status": 1,
            }
        )
    return departments, members


def test_a_member_deactivated_by_the_directory_sync_is_signed_out_for_good(
    client, session, fake_wecom, clock
):
    company = make_company(session)
    rep = company.reps[0][0]
    headers = sign_in(client, fake_wecom, rep)

    departments, members = _directory(company, leaving=rep)
    users.sync_directory(session, departments=departments, members=members, now=clock())
    session.commit()
    assert _me(client, headers).json["error"]["code"] == "user_inactive"

    departments, members = _directory(company)  # back again: the old token stays dead
    users.sync_directory(session, departments=departments, members=members, now=clock())
    session.commit()
    assert _me(client, headers).json["error"]["code"] == "token_revoked"
    assert _me(client, sign_in(client, fake_wecom, rep)).status_code == 200


def test_a_token_without_generation_and_id_is_refused(app, client, session, fake_wecom):
    """Tokens issued before sign-out existed cannot be logged out, so they sign in again."""
    company = make_company(session)
    with app.test_request_context():
        old = auth._serializer().dumps({"uid": company.boss.id})

    response = _me(client, {"Authorization": f"Bearer {old}"})

    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_invalid"


def test_while_redis_is_unreachable_tokens_work_and_logout_says_so(
    app, client, runtime, session, fake_wecom
):
    company = make_company(session)
    headers = sign_in(client, fake_wecom, company.boss)
    app.extensions["wecrm"] = build_runtime(
        runtime.settings.with_overrides(redis_url="unix:///nonexistent/redis.sock"),
        clock=runtime.clock,
    )
    try:
        me = _me(client, headers)
        logout = client.post("/api/v1/auth/logout", headers=headers)
    finally:
        app.extensions["wecrm"].close()
        app.extensions["wecrm"] = runtime
    assert me.status_code == 200
    assert logout.status_code == 503
    assert logout.json["error"]["code"] == "session_store_unavailable"


def test_only_sign_in_documents_429_with_its_retry_after_header(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/auth/login", "/auth/dev-login"):
        assert "Retry-After" in paths[path]["post"]["responses"]["429"]["headers"]
    assert "429" not in paths["/me"]["get"]["responses"]
