"""Signing in: WeCom's jscode2session through the real client, signed expiring tokens."""

from __future__ import annotations

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
