"""The bot's fixtures: an app whose callback is configured, and WeCom's side of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient

from fake_wecom.callback import new_aes_key, new_token
from fake_wecom.server import FakeWeCom
from tests.bot.wecom_side import WeComSide
from wecrm.app import create_app
from wecrm.runtime import Runtime
from wecrm.wiring import build_runtime


@pytest.fixture
def callback_client(runtime: Runtime) -> Iterator[Callable[..., FlaskClient]]:
    """Make a test client for an app whose WeCom settings are overridden (token, AES key, corp
    id); it shares the suite's database, Redis and clock."""
    made: list[Runtime] = []

    def make(**wecom: str) -> FlaskClient:
        configured = build_runtime(runtime.settings.with_overrides(**wecom), clock=runtime.clock)
        made.append(configured)
        app = create_app(configured)
        app.config["TESTING"] = True
        return app.test_client()

    yield make
    for configured in made:
        configured.close()


@pytest.fixture
def wecom_side(
    runtime: Runtime, callback_client: Callable[..., FlaskClient], fake_wecom: FakeWeCom
) -> WeComSide:
    """WeCom's side of the callback: a generated token and AES key, the fake WeCom's corp id."""
    wecom = {
        "wecom_token": new_token(),
        "wecom_aes_key": new_aes_key(),
        "wecom_corp_id": fake_wecom.corp_id,
    }
    client = callback_client(**wecom)
    return WeComSide(
        client,
        settings=runtime.settings.with_overrides(**wecom),
        clock=runtime.clock,
        connection=runtime.redis,
        fake_wecom=fake_wecom,
    )
