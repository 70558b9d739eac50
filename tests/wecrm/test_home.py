"""The root page: a newcomer's browser gets a Chinese page whose every link answers; a JSON
client gets the same links as JSON."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from wecrm.app import create_app
from wecrm.wiring import build_runtime

CONSOLE = "http://127.0.0.1:8801/"


@pytest.fixture
def configured_client(runtime):
    """An app whose WeCom console link is set and dev-login is on, as the demo runs it."""
    settings = runtime.settings.with_overrides(wecom_console_url=CONSOLE, dev_login=True)
    configured = build_runtime(settings, clock=runtime.clock)
    app: Flask = create_app(configured)
    app.config["TESTING"] = True
    yield app.test_client()
    configured.close()


def test_the_root_page_says_what_wecrm_is_and_every_local_link_answers(client):
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    html = page.get_data(as_text=True)

    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "销售 CRM" in html and "接口文档" in html
    links = re.findall(r'href="(/[^"]*)"', html)
    assert set(links) == {"/api/v1/docs", "/api/v1/openapi.json", "/healthz"}
    for link in links:
        assert client.get(link).status_code == 200, link
    assert "企业微信控制台" not in html  # not configured here
    assert "/auth/dev-login" not in html  # nor is dev-login


def test_a_configured_console_and_dev_login_show_on_the_page(configured_client):
    html = configured_client.get("/").get_data(as_text=True)

    assert f'href="{CONSOLE}"' in html and "企业微信控制台" in html
    assert "POST /api/v1/auth/dev-login" in html


def test_a_json_client_gets_the_links_as_json(configured_client):
    response = configured_client.get("/", headers={"Accept": "application/json"})

    assert response.status_code == 200 and response.is_json
    assert response.json["links"] == {
        "api_reference": "/api/v1/docs",
        "openapi": "/api/v1/openapi.json",
        "health": "/healthz",
        "login": "/api/v1/auth/login",
        "wecom_console": CONSOLE,
        "dev_login": "/api/v1/auth/dev-login",
    }
