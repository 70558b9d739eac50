"""The fault suite (issue 10): real processes on 127.0.0.1 — gunicorn (`bench.servers`, as
`wecrm serve` runs it), `wecrm worker`, `wecrm scheduler`, a fake WeCom (`python -m fake_wecom`),
a private `redis-server` on a free port and, for PostgreSQL, a private cluster (initdb/pg_ctl in a
temporary folder) — and one fault at a time done to them while signed WeCom callbacks flow:

  worker_kill       kill -9 of the worker mid-burst, then a new worker
  redis_restart     kill -9 of redis-server mid-burst, restarted on the same port after 8 s
  postgres_restart  the private PostgreSQL stopped mid-burst, started again (never the machine's)
  wecom_down        the fake WeCom stopped for a minute (`--wecom-down`), then back
  web_kill          kill -9 of gunicorn during API follow-up POSTs and callbacks (SQLite)
  import_load       a 20k-row import during API writes and callbacks (SQLite), beside a baseline
  triple            every callback delivered three times at once

Each message is a member's `#跟进#` command for a customer of its own, so its effects can be
counted: the inbound row, one follow-up, one reply at the fake WeCom. Each fault prints sent /
stored / processed / duplicated / stuck, and notes what else happened (a process that exited,
requests that failed, the secret found in a log). It measures; where today's code fails a fault
the figure shows it. It exits non-zero only when the harness itself fails.

    python -m bench.faults [--db auto|sqlite|postgres|both] [--only worker_kill,triple]

`--db auto` (the default, 7–10 minutes) runs each fault once: the Redis restart on
PostgreSQL, where issue 10 saw it fail, the PostgreSQL restart on PostgreSQL, the rest on SQLite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis
import requests
from sqlalchemy import Engine, func, insert, select

from bench.customer_book import machine_facts
from bench.seed import RESULTS_DIR
from bench.servers import REPO, Served, free_port
from crm.vocab import Stage
from fake_wecom.callback import CallbackApp, new_aes_key, new_token
from models import Customer, Database, FollowUp, InboundMessage, OutboxMessage, Team, User
from models.users import Role

FAULTS = (
    "worker_kill",
    "redis_restart",
    "postgres_restart",
    "wecom_down",
    "web_kill",
    "import_load",
    "triple",
)
BACKENDS = ("sqlite", "postgres")
# Where a fault can run: the web-server kill and the import are the embedded default's faults.
POSSIBLE_BACKENDS = {
    "web_kill": ("sqlite",),
    "import_load": ("sqlite",),
    "postgres_restart": ("postgres",),
}
# Where it runs with `--db auto` (the default, about ten minutes): once each, the Redis restart
# where issue 10 saw it fail (PostgreSQL + Redis), the others on the embedded default.
AUTO_BACKENDS = {"redis_restart": ("postgres",), "postgres_restart": ("postgres",)}
DOC_PATH = REPO / "docs" / "reliability.md"
WORK_DIR = RESULTS_DIR / "faults"
CORP_ID = "wwfaultcorp"
AGENT_ID = 1000002
WECOM_SECRET = "fault-suite-secret-do-not-log-7f3a9c"
REPS = 50
CUSTOMER_PREFIX = "客户F"
CONTACT_PREFIX = "wmfault"
FOLLOW_UP_MARK = "故障演练第"
API_MARK = "接口跟进第"
# WeCom retries a callback that got no answer within 5 s, three times.
WECOM_RETRIES = 3
WECOM_RETRY_PAUSE_SECONDS = 5
HTTP_TIMEOUT_SECONDS = 60
CLIENT_RETRY_PAUSE_SECONDS = 1.0
PROCESS_STOP_SECONDS = 20
POLL_SECONDS = 1.0


# --- processes ---------------------------------------------------------------------------------


class Process:
    """A command in its own process group with its output in a log file; stops only its group."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Process:
        """Start the command in a new session, its output appended to the log."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        return self

    @property
    def is_alive(self) -> bool:
        """Whether the process is still running."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9 of the group and every descendant (an RQ work horse has a group of its own)."""
        if self.is_alive:
            assert self.process is not None
            horses = psutil.Process(self.process.pid).children(recursive=True)
            os.killpg(self.process.pid, signal.SIGKILL)
            for horse in horses:
                with suppress(psutil.NoSuchProcess):
                    horse.send_signal(signal.SIGKILL)
            self.process.wait()
            psutil.wait_procs(horses, timeout=PROCESS_STOP_SECONDS)

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL after 20 s."""
        if not self.is_alive:
            return
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(PROCESS_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()

    def exit_note(self) -> str | None:
        """How it ended, when it ended by itself; None while it runs."""
        if self.process is None or self.is_alive:
            return None
        tail = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        last = tail[-1][:160] if tail else ""
        return f"{self.name} exited with {self.process.returncode} ({last})"


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `check` until it holds; raise when `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {seconds} s")


class PrivateRedis:
    """A redis-server of the suite's own on a free port, without persistence: a restart empties
    it, as a crashed Redis without a disk copy would."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
        self.process = Process("redis-server", argv, env={}, log=folder / "redis.log")

    def start(self) -> None:
        """Start redis-server; return when it answers PING."""
        self.process.start()
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: bool(client.ping()), 20, "redis-server")
        client.close()


class PrivatePostgres:
    """A PostgreSQL cluster of the suite's own (initdb into a temporary folder, a free port),
    owned by the `postgres` user when the suite runs as root. The machine's server is never
    touched."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not binaries:
            raise RuntimeError("no /usr/lib/postgresql/*/bin/pg_ctl")
        self.bin = binaries[-1].parent
        self.data = folder / "data"

    def _run(self, *argv: str) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if os.geteuid() == 0:  # initdb refuses root: run as the cluster's owner
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        """initdb into the folder and start the cluster."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def start(self) -> None:
        """Start the cluster (pg_ctl -w waits until it accepts connections)."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = str(self.folder / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster: `fast` disconnects everyone, `immediate` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def fresh_database(self, name: str) -> str:
        """An empty database `name` on the cluster; its URL."""
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        """Stop the cluster and delete its folder."""
        with suppress(subprocess.CalledProcessError):  # already down
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class FakeWeComProcess:
    """`python -m fake_wecom` on a fixed port; what it received survives its restarts here."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/cgi-bin/"
        argv = [sys.executable, "-m", "fake_wecom", "--port", str(self.port)]
        argv += ["--corp-id", CORP_ID, "--secret", WECOM_SECRET, "--agent-id", str(AGENT_ID)]
        self.process = Process("fake WeCom", argv, env={}, log=folder / "fake_wecom.log")
        self.earlier: list[dict[str, Any]] = []  # received before a stop

    def start(self) -> None:
        """Start the fake WeCom; return when it answers."""
        self.process.start()
        wait_until(lambda: self._fetch() is not None, 30, "fake WeCom")

    def _fetch(self) -> list[dict[str, Any]]:
        answer = requests.get(f"http://127.0.0.1:{self.port}/_fake/messages", timeout=10)
        answer.raise_for_status()
        return list(answer.json()["messages"])

    def stop(self) -> None:
        """Keep what it received, then stop it."""
        self.earlier += self._fetch()
        self.process.stop()

    def messages(self) -> list[dict[str, Any]]:
        """Every message/send the fake WeCom accepted, across its restarts."""
        return self.earlier + (self._fetch() if self.process.is_alive else [])


# --- the stack ---------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one fault run counted; `duplicated` and `stuck` are what should be 0."""

    fault: str
    backend: str
    run: int = 0  # which of `--repeat` runs; 0 when there is one
    sent: int = 0  # distinct callbacks posted (the suite plays WeCom, retries and all)
    answered: int = 0  # of those, answered 2xx
    stored: int = 0  # inbound rows
    processed: int = 0  # inbound rows done
    failed: int = 0  # inbound rows failed for good
    replies: int = 0  # distinct replies the fake WeCom received
    duplicated: int = 0  # follow-ups beyond one per message + replies beyond one per message
    stuck: int = 0  # inbound still pending + replies not yet sent, at the end
    settle_seconds: float = 0.0
    secret_in_logs: int = 0  # lines of the suite's logs holding WECOM_SECRET
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """The fault's name, with the run's number when there are several."""
        return f"{self.fault} #{self.run}" if self.run else self.fault


class Stack:
    """One fault's world: a fresh database seeded with 50 reps and a customer per message, a
    private Redis, the fake WeCom, gunicorn, one `wecrm worker` and `wecrm scheduler`."""

    def __init__(
        self,
        fault: str,
        backend: str,
        args: argparse.Namespace,
        pg: PrivatePostgres | None,
        run: int = 0,
    ) -> None:
        self.fault, self.backend, self.args, self.pg, self.run = fault, backend, args, pg, run
        self.folder = WORK_DIR / f"{fault}-{backend}" / (f"run{run}" if run else "")
        self.app = CallbackApp(
            token=new_token(), aes_key=new_aes_key(), corp_id=CORP_ID, agent_id=AGENT_ID
        )
        self.workers: list[Process] = []
        self.scheduler: Process | None = None
        self.web: Served | None = None
        self.webs = 0
        self.cleanup = ExitStack()  # stops what started, last first, however far it got

    def __enter__(self) -> Stack:
        try:
            return self._start()
        except BaseException:
            self.cleanup.close()
            raise

    def _start(self) -> Stack:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        if self.backend == "sqlite":
            self.url = f"sqlite:///{self.folder / 'wecrm.sqlite3'}"
        else:
            assert self.pg is not None
            self.url = self.pg.fresh_database("wecrm_faults")
        self.db = Database(self.url)
        self.cleanup.callback(self.db.dispose)
        self.db.upgrade()
        self.customer_ids = seed(self.db.engine, customers_needed(self.fault, self.args))
        self.redis = PrivateRedis(self.folder)
        self.cleanup.callback(self.redis.process.stop)
        self.redis.start()
        self.wecom = FakeWeComProcess(self.folder)
        self.cleanup.callback(self.wecom.process.stop)
        self.wecom.start()
        self.env = {
            "WECRM_DATA_DIR": str(self.folder / "data"),
            "WECRM_DATABASE_URL": self.url,
            "WECRM_REDIS_URL": self.redis.url,
            "WECRM_SECRET_KEY": "fault-suite-signing-key-" + self.app.token,
            "WECRM_DEV_LOGIN": "1",
            # Every rep signs in from this one address at the start: not a flood to throttle.
            "WECRM_SIGN_IN_LIMIT_PER_CLIENT": f"{10 * REPS}/minute",
            "WECOM_CORP_ID": CORP_ID,
            "WECOM_AGENT_ID": str(AGENT_ID),
            "WECOM_SECRET": WECOM_SECRET,
            "WECOM_TOKEN": self.app.token,
            "WECOM_AES_KEY": self.app.aes_key,
            "WECOM_API_BASE": self.wecom.base_url,
        }
        self.cleanup.callback(self._stop_processes)
        self.start_web()
        self.start_worker()
        self.scheduler = Process(
            "scheduler",
            [sys.executable, "-m", "wecrm.cli", "scheduler"],
            env=self.env,
            log=self.folder / "scheduler.log",
        ).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup.close()

    def _stop_processes(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process is not None:
                process.stop()
        if self.web is not None:
            self.web.stop()

    def start_web(self) -> None:
        """gunicorn on a new free port, ready when every worker answers."""
        self.webs += 1
        self.web = Served(
            "wecrm",
            env=self.env,
            workers=2,
            threads=4,
            log_path=self.folder / f"gunicorn-{self.webs}.log",
        )
        self.web.__enter__()

    def kill_web(self) -> None:
        """kill -9 of gunicorn's master and workers."""
        assert self.web is not None and self.web.process is not None
        os.killpg(self.web.process.pid, signal.SIGKILL)
        self.web.process.wait()

    def start_worker(self) -> Process:
        """One more `wecrm worker`."""
        worker = Process(
            f"worker {len(self.workers) + 1}",
            [sys.executable, "-m", "wecrm.cli", "worker"],
            env=self.env,
            log=self.folder / f"worker-{len(self.workers) + 1}.log",
        ).start()
        self.workers.append(worker)
        return worker

    @property
    def base_url(self) -> str:
        """Where the current gunicorn listens."""
        assert self.web is not None
        return self.web.base_url

    # -- counting --------------------------------------------------------------------------------

    def inbound_counts(self) -> Counter[str]:
        """Inbound rows by status."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
            )
            return Counter({status: int(n) for status, n in rows})

    def outbox_unsent(self) -> int:
        """Replies still pending or being sent."""
        with self.db.engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status.in_(("pending", "sending")))
                )
                or 0
            )

    def settle(self, sent: int, seconds: float) -> float:
        """Wait until every stored message is processed and every reply sent, at most `seconds`;
        returns how long it took (the whole window when it never settled)."""
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            try:
                counts = self.inbound_counts()
                if (
                    counts["pending"] == 0
                    and sum(counts.values()) >= sent
                    and self.outbox_unsent() == 0
                ):
                    return round(time.monotonic() - started, 1)
            except Exception:  # the database restarting
                pass
            time.sleep(POLL_SECONDS)
        return round(time.monotonic() - started, 1)

    def figures(self, burst: Burst | None, settle_seconds: float) -> Figures:
        """Count what became of the messages, and what else went wrong."""
        figures = Figures(
            fault=self.fault, backend=self.backend, run=self.run, settle_seconds=settle_seconds
        )
        counts = self.inbound_counts()
        figures.stored = sum(counts.values())
        figures.processed = counts["done"]
        figures.failed = counts["failed"]
        if burst is not None:
            figures.sent = len(burst.results)
            figures.answered = sum(1 for r in burst.results.values() if r.answered)
            answered_ids = {f"msg:{m}" for m, r in burst.results.items() if r.answered}
            with self.db.engine.connect() as conn:
                stored_ids = set(conn.scalars(select(InboundMessage.dedupe_key)))
            lost = len(answered_ids - stored_ids)
            if lost:
                figures.notes.append(f"{lost} callbacks answered 200 but not stored")
        with self.db.engine.connect() as conn:
            summaries = Counter(
                conn.scalars(
                    select(FollowUp.summary).where(FollowUp.summary.startswith(FOLLOW_UP_MARK))
                )
            )
        replies = Counter(
            m["text"]["content"]
            for m in self.wecom.messages()
            if m["msgtype"] == "text" and CUSTOMER_PREFIX in m["text"]["content"]
        )
        figures.replies = len(replies)
        follow_up_copies = sum(n - 1 for n in summaries.values())
        reply_copies = sum(n - 1 for n in replies.values())
        figures.duplicated = follow_up_copies + reply_copies
        if figures.duplicated:
            figures.notes.append(
                f"duplicates: {follow_up_copies} follow-ups, {reply_copies} replies"
            )
        unsent = self.outbox_unsent()
        figures.stuck = counts["pending"] + unsent
        if figures.stuck:
            pending = counts["pending"]
            figures.notes.append(f"stuck: {pending} inbound pending, {unsent} replies unsent")
        for process in [*self.workers, self.scheduler]:
            note = process.exit_note() if process is not None else None
            if note:
                figures.notes.append(note)
        # The fake WeCom's own access log holds gettoken's query, as WeCom's would: not ours.
        figures.secret_in_logs = sum(
            log.read_text(errors="replace").count(WECOM_SECRET)
            for log in self.folder.glob("*.log")
            if log != self.wecom.process.log
        )
        with self.db.engine.connect() as conn:
            stored_errors = sum(
                int(conn.scalar(select(func.count()).where(column.contains(WECOM_SECRET))) or 0)
                for column in (InboundMessage.last_error, OutboxMessage.last_error)
            )
        if stored_errors:
            figures.notes.append(f"WECOM_SECRET in {stored_errors} stored errors")
        return figures


def seed(engine: Engine, customers: int) -> list[int]:
    """A team of 50 reps and `customers` customers named 客户F000001…, owned in turn."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        team_id = conn.execute(
            insert(Team).values(name="故障演练组").returning(Team.id)
        ).scalar_one()
        reps = [
            conn.execute(
                insert(User)
                .values(
                    wecom_userid=f"rep{n:02d}", name=f"销售{n:02d}", role=Role.REP, team_id=team_id
                )
                .returning(User.id)
            ).scalar_one()
            for n in range(REPS)
        ]
        conn.execute(
            insert(Customer),
            [
                {
                    "name": f"{CUSTOMER_PREFIX}{n:06d}",
                    "stage": Stage.INTEREST,
                    "owner_id": reps[n % REPS],
                    "team_id": team_id,
                    "custom_values": {},
                    "stage_entered_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(customers)
            ],
        )
        return list(conn.scalars(select(Customer.id).order_by(Customer.id)))


# --- the load ----------------------------------------------------------------------------------


@dataclass
class Delivery:
    answered: bool = False
    statuses: list[str] = field(default_factory=list)
    latency_ms: float = 0.0  # the first try's


class Burst:
    """Callbacks posted at a steady rate from a thread pool, each retried like WeCom retries;
    `copies` posts of the same envelope at once model a triple delivery. Members' `#跟进#`
    commands, or with `contacts` reps adding WeChat contacts (events that make the worker ask
    WeCom for the contact's profile)."""

    def __init__(
        self,
        stack: Stack,
        *,
        count: int,
        rate: float,
        first: int = 0,
        copies: int = 1,
        retries: int = WECOM_RETRIES,
        contacts: bool = False,
    ) -> None:
        self.stack, self.count, self.rate, self.copies, self.retries = (
            stack,
            count,
            rate,
            copies,
            retries,
        )
        self.contacts = contacts
        self.numbers = range(first, first + count)
        self.results: dict[str, Delivery] = {}
        self.stopping = threading.Event()
        self.local = threading.local()
        self.thread = threading.Thread(target=self._run, name="burst", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> Burst:
        """Start posting in the background."""
        self.thread.start()
        return self

    def join(self) -> None:
        """Wait for every post to finish; re-raise the burst's own error."""
        self.thread.join()
        if self.error is not None:
            raise self.error

    @property
    def posted(self) -> int:
        """Messages posted so far (each once, however many copies and retries)."""
        return len(self.results)

    @property
    def answered(self) -> int:
        """Messages answered 2xx at some try."""
        return sum(1 for delivery in self.results.values() if delivery.answered)

    def stop(self) -> None:
        """Post nothing more; what is in flight finishes (see join)."""
        self.stopping.set()

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def _run(self) -> None:
        try:
            with ThreadPoolExecutor(max_workers=8 * self.copies) as pool:
                started = time.monotonic()
                futures = []
                for index, number in enumerate(self.numbers):
                    if self.stopping.is_set():
                        break
                    pause = started + index / self.rate - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    key, fields = self._message(number)
                    delivery = self.results.setdefault(key, Delivery())
                    for _ in range(self.copies):
                        futures.append(pool.submit(self._deliver, fields, delivery))
                for future in futures:
                    future.result()
        except BaseException as error:  # surfaced by join()
            self.error = error

    def _message(self, number: int) -> tuple[str, dict[str, Any]]:
        """The message numbered `number`: its key (MsgId, or the contact's id) and fields."""
        rep = f"rep{number % REPS:02d}"
        if self.contacts:
            external_userid = f"{CONTACT_PREFIX}{number:06d}"
            added: dict[str, Any] = {
                "Event": "change_external_contact",
                "ChangeType": "add_external_contact",
                "UserID": rep,
                "ExternalUserID": external_userid,
                "WelcomeCode": f"welcome-{number}",
            }
            return external_userid, self.stack.app.event("sys", **added)
        content = f"#跟进# {CUSTOMER_PREFIX}{number:06d} 电话 {FOLLOW_UP_MARK}{number}条"
        msg_id = 7_000_000_000_000_000_000 + number
        return str(msg_id), self.stack.app.text(rep, content, msg_id=msg_id)

    def _deliver(self, fields: dict[str, Any], delivery: Delivery) -> None:
        for attempt in range(1 + self.retries):
            # A retry is a new request: WeCom signs it again with a new timestamp and nonce.
            envelope = self.stack.app.envelope(fields)
            started = time.perf_counter()
            try:
                answer = self._session().post(
                    f"{self.stack.base_url}/wecom/callback",
                    params=envelope.params,
                    data=envelope.body,
                    headers={"Content-Type": "text/xml"},
                    timeout=WECOM_RETRY_PAUSE_SECONDS,
                )
                status = str(answer.status_code)
            except requests.RequestException as error:
                status = type(error).__name__
            if attempt == 0:
                delivery.latency_ms = (time.perf_counter() - started) * 1000
            delivery.statuses.append(status)
            if status.startswith("2"):
                delivery.answered = True
                return
            time.sleep(WECOM_RETRY_PAUSE_SECONDS)


class ApiWriter:
    """Reps logging follow-ups through the API, one closed loop per thread, until stopped; each
    answer's status and latency is kept with its marker."""

    def __init__(self, stack: Stack, *, threads: int, pause_seconds: float) -> None:
        self.stack, self.threads, self.pause = stack, threads, pause_seconds
        self.tokens = {
            rep: requests.post(
                f"{stack.base_url}/api/v1/auth/dev-login",
                json={"userid": f"rep{rep:02d}"},
                timeout=HTTP_TIMEOUT_SECONDS,
            ).json()["token"]
            for rep in range(REPS)
        }
        self.calls: list[tuple[str, str, float, float]] = []  # marker, status, at, ms
        self.stopping = threading.Event()
        self.numbers = iter(range(10**9))
        self.lock = threading.Lock()
        self.pool: list[threading.Thread] = []

    def start(self) -> ApiWriter:
        """Start the writers."""
        self.pool = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.threads)]
        for thread in self.pool:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop the writers after their current request."""
        self.stopping.set()
        for thread in self.pool:
            thread.join()

    def _loop(self) -> None:
        session = requests.Session()
        while not self.stopping.is_set():
            with self.lock:
                number = next(self.numbers)
            rep = number % REPS
            customer_id = self.stack.customer_ids[rep]  # owned by rep `rep`: seeded in turn
            marker = f"{API_MARK}{number}条"
            started = time.perf_counter()
            try:
                answer = session.post(
                    f"{self.stack.base_url}/api/v1/customers/{customer_id}/follow-ups",
                    json={"method": "电话", "summary": marker},
                    headers={"Authorization": f"Bearer {self.tokens[rep]}"},
                    timeout=HTTP_TIMEOUT_SECONDS,
                )
                status = str(answer.status_code)
            except requests.RequestException as error:
                status = type(error).__name__
                session = requests.Session()
            self.calls.append(
                (marker, status, time.monotonic(), (time.perf_counter() - started) * 1000)
            )
            # A client that got no answer waits a moment before its next write, as an app would.
            time.sleep(self.pause if status[0] in "2345" else CLIENT_RETRY_PAUSE_SECONDS)


def latency(calls: list[float]) -> dict[str, float]:
    """p50, p95 and max of latencies in milliseconds."""
    if not calls:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(calls)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(int(len(ordered) * 0.95) - 1, 0)], 1),
        "max_ms": round(ordered[-1], 1),
    }


def failures(statuses: Iterable[str]) -> str:
    """The answers that were not 2xx, counted: "4 × 500, 1 × ReadTimeout"."""
    counts = Counter(s for s in statuses if not s.startswith("2"))
    return ", ".join(f"{n} × {status}" for status, n in counts.most_common()) or "none"


def wait_processed(stack: Stack, share: float, burst: Burst, seconds: float = 60) -> int:
    """Wait until `share` of the burst is processed (or the burst ended); how many are."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = stack.inbound_counts()["done"]
        if done >= burst.count * share or not burst.thread.is_alive():
            return done
        time.sleep(0.2)
    return stack.inbound_counts()["done"]


# --- the faults --------------------------------------------------------------------------------


def worker_kill(stack: Stack, args: argparse.Namespace) -> Figures:
    """kill -9 of the worker (and its work horse) a third into the burst, a new one 2 s later."""
    burst = Burst(stack, count=args.messages, rate=args.rate).start()
    done = wait_processed(stack, 1 / 3, burst)
    stack.workers.pop(0).kill()  # its exit is the fault, not a finding
    time.sleep(2)
    stack.start_worker()
    burst.join()
    figures = stack.figures(burst, stack.settle(burst.answered, args.settle))
    figures.notes.insert(0, f"worker killed after {done} processed; a new one started")
    return figures


def redis_restart(stack: Stack, args: argparse.Namespace) -> Figures:
    """kill -9 of redis-server a third into the burst; the same port again after 8 s."""
    burst = Burst(stack, count=args.messages, rate=args.rate).start()
    done = wait_processed(stack, 1 / 3, burst)
    stack.redis.process.kill()
    time.sleep(args.redis_down)
    stack.redis.start()
    burst.join()
    figures = stack.figures(burst, stack.settle(burst.answered, args.settle))
    figures.notes.insert(
        0, f"redis-server killed after {done} processed, back after {args.redis_down:g} s"
    )
    return figures


def postgres_restart(stack: Stack, args: argparse.Namespace) -> Figures:
    """The private cluster stopped (fast) a third into the burst, started after `--pg-down` s."""
    assert stack.pg is not None
    burst = Burst(stack, count=args.messages, rate=args.rate).start()
    done = wait_processed(stack, 1 / 3, burst)
    stack.pg.stop("fast")
    time.sleep(args.pg_down)
    stack.pg.start()
    burst.join()
    figures = stack.figures(burst, stack.settle(burst.answered, args.settle))
    figures.notes.insert(
        0, f"PostgreSQL stopped after {done} processed, back after {args.pg_down:g} s"
    )
    return figures


def wecom_down(stack: Stack, args: argparse.Namespace) -> Figures:
    """The fake WeCom stopped as the burst starts, for `--wecom-down` s, then on its port again:
    every reply must arrive once."""
    stack.wecom.stop()
    burst = Burst(stack, count=args.messages, rate=args.rate).start()
    # Reps adding WeChat contacts meanwhile: their processing asks WeCom for the profile.
    contacts = Burst(stack, count=args.contact_events, rate=1, contacts=True).start()
    time.sleep(args.wecom_down)
    stack.wecom.start()
    burst.join()
    contacts.join()
    # The outbox's back-off after a minute down is up to two minutes, its sweep runs each minute.
    settle = stack.settle(burst.answered + contacts.answered, max(args.settle, 180))
    figures = stack.figures(burst, settle)
    figures.sent += contacts.posted
    figures.answered += contacts.answered
    with stack.db.engine.connect() as conn:
        created = conn.scalar(
            select(func.count()).where(Customer.external_userid.startswith(CONTACT_PREFIX))
        )
    figures.notes[:0] = [
        f"fake WeCom down for {args.wecom_down:g} s from the burst's start",
        f"{contacts.posted} of the messages sent are reps adding WeChat contacts (not counted "
        f"in replies): {created} customers created from them",
    ]
    return figures


def web_kill(stack: Stack, args: argparse.Namespace) -> Figures:
    """kill -9 of gunicorn (master and workers) during follow-up POSTs and callbacks; a new one
    1 s later. Whatever was answered 2xx must be stored, and the file stay whole."""
    writer = ApiWriter(stack, threads=4, pause_seconds=0.02).start()
    burst = Burst(stack, count=args.messages, rate=args.rate).start()
    time.sleep(burst.count / burst.rate / 3)
    stack.kill_web()
    time.sleep(1)
    stack.start_web()
    burst.join()
    writer.stop()
    figures = stack.figures(burst, stack.settle(burst.answered, args.settle))
    with stack.db.engine.connect() as conn:
        stored = Counter(
            conn.scalars(select(FollowUp.summary).where(FollowUp.summary.startswith(API_MARK)))
        )
    answered = {m for m, status, _, _ in writer.calls if status.startswith("2")}
    unanswered = {m for m, status, _, _ in writer.calls if not status.startswith("2")}
    file = stack.url.removeprefix("sqlite:///")
    with sqlite3.connect(file) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        foreign = len(conn.execute("PRAGMA foreign_key_check").fetchall())
    figures.extra = {
        "api_posts": len(writer.calls),
        "api_answered_2xx": len(answered),
        "api_answered_not_stored": len(answered - stored.keys()),
        "api_unanswered": len(unanswered),
        "api_unanswered_but_stored": len(unanswered & stored.keys()),
        "api_stored_twice": sum(n - 1 for n in stored.values()),
        "integrity_check": integrity,
        "foreign_key_violations": foreign,
    }
    figures.notes.insert(0, "gunicorn killed a third into the burst, a new one 1 s later")
    return figures


def import_csv(path: Path, rows: int) -> None:
    """A CSV of `rows` new customers, each with its own phone number."""
    lines = ["客户名称,电话,公司"]
    lines += [f"导入客户{n:06d},139{n:08d},导入公司{n % 500}" for n in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def import_load(stack: Stack, args: argparse.Namespace) -> Figures:
    """API follow-up POSTs and callbacks for `--phase-seconds` without an import (the baseline),
    then the same during a 20k-row import by a rep, until it ends."""
    writer = ApiWriter(stack, threads=2, pause_seconds=0.1).start()
    baseline = Burst(stack, count=int(args.phase_seconds * 10), rate=10).start()
    baseline.join()
    baseline_end = time.monotonic()
    csv_path = stack.folder / "import.csv"
    import_csv(csv_path, args.import_rows)
    with csv_path.open("rb") as file:
        answer = requests.post(
            f"{stack.base_url}/api/v1/imports",
            files={"file": ("客户名单.csv", file, "text/csv")},
            data={"on_duplicate": "skip"},
            headers={"Authorization": f"Bearer {writer.tokens[0]}"},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
    if answer.status_code != 202:
        raise RuntimeError(f"import upload answered {answer.status_code}: {answer.text[:300]}")
    import_id = answer.json()["id"]
    import_started = time.monotonic()
    during = Burst(
        stack, count=int(args.import_timeout * 10), rate=10, first=baseline.count
    ).start()
    status = "queued"
    while time.monotonic() - import_started < args.import_timeout:
        job = requests.get(
            f"{stack.base_url}/api/v1/imports/{import_id}",
            headers={"Authorization": f"Bearer {writer.tokens[0]}"},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
        status = job.json().get("status", "?") if job.ok else f"HTTP {job.status_code}"
        if status in ("done", "failed"):
            break
        time.sleep(POLL_SECONDS)
    import_seconds = round(time.monotonic() - import_started, 1)
    during.stop()  # the import is over
    during_end = time.monotonic()
    writer.stop()
    during.join()
    answered = baseline.answered + during.answered
    figures = stack.figures(None, stack.settle(answered, args.settle))
    figures.sent = baseline.posted + during.posted
    figures.answered = answered

    def phase(calls: list[tuple[str, str, float, float]], burst: Burst) -> dict[str, Any]:
        """One phase's API and callback figures."""
        first_tries = [r.statuses[0] for r in burst.results.values() if r.statuses]
        return {
            "api_writes": len(calls),
            "api_non_2xx": sum(1 for c in calls if not c[1].startswith("2")),
            "api_failures": failures(c[1] for c in calls),
            "api": latency([c[3] for c in calls]),
            "callbacks": burst.posted,
            "callbacks_first_try_failed": sum(1 for s in first_tries if s != "200"),
            "callback_failures": failures(first_tries),
            "callback": latency([r.latency_ms for r in burst.results.values() if r.statuses]),
        }

    figures.extra = {
        "import_rows": args.import_rows,
        "import_status": status,
        "import_seconds": import_seconds,
        "baseline": phase([c for c in writer.calls if c[2] <= baseline_end], baseline),
        "during_import": phase(
            [c for c in writer.calls if import_started <= c[2] <= during_end], during
        ),
    }
    figures.notes.insert(0, f"import of {args.import_rows:,} rows: {status} in {import_seconds} s")
    return figures


def triple(stack: Stack, args: argparse.Namespace) -> Figures:
    """Every callback posted three times at once."""
    burst = Burst(stack, count=args.messages, rate=args.rate, copies=3).start()
    burst.join()
    figures = stack.figures(burst, stack.settle(burst.answered, args.settle))
    figures.notes.insert(0, "each callback posted 3 times at once")
    return figures


RUNNERS: dict[str, Callable[[Stack, argparse.Namespace], Figures]] = {
    "worker_kill": worker_kill,
    "redis_restart": redis_restart,
    "postgres_restart": postgres_restart,
    "wecom_down": wecom_down,
    "web_kill": web_kill,
    "import_load": import_load,
    "triple": triple,
}


def customers_needed(fault: str, args: argparse.Namespace) -> int:
    """A customer per message the fault can send (the import's phases send ten a second)."""
    if fault == "import_load":
        return int((args.phase_seconds + args.import_timeout) * 10)
    return int(args.messages)


# --- the report --------------------------------------------------------------------------------

COLUMNS = ("sent", "answered", "stored", "processed", "failed", "replies", "duplicated", "stuck")


def fmt(figures: Figures) -> str:
    """One fault's counts on one line."""
    counts = ", ".join(f"{name} {getattr(figures, name)}" for name in COLUMNS)
    return (
        f"{counts}; settled in {figures.settle_seconds} s; secret in logs {figures.secret_in_logs}"
    )


def skipped(fault: str, backend: str, why: str) -> Figures:
    """The figures of a fault that did not run, saying why."""
    return Figures(fault=fault, backend=backend, notes=[f"skipped: {why}"])


def markdown(results: list[Figures], facts: dict[str, dict[str, str]], command: str) -> str:
    """The table and notes for docs/reliability.md."""
    lines = [f"Command: `{command}`", ""]
    for backend, f in facts.items():
        lines.append(
            f"- {backend}: measured {f['date']} on {f['cpu']}, {f['memory']} RAM; Python "
            f"{f['python']}, {f['database']}; code at {f['code']}."
        )
    lines += [
        "",
        "| fault | database | sent | answered | stored | processed | failed | replies "
        "| duplicated | stuck | settled in | secret in logs |",
        "|---|---|" + "---:|" * 10,
    ]
    for r in results:
        if r.notes and r.notes[0].startswith("skipped"):
            lines.append(f"| {r.title} | {r.backend} | {r.notes[0]} |" + " |" * 9)
            continue
        cells = [str(getattr(r, name)) for name in COLUMNS]
        lines.append(
            f"| {r.title} | {r.backend} | {' | '.join(cells)} | {r.settle_seconds} s "
            f"| {r.secret_in_logs} |"
        )
    lines += ["", "What else each run saw:", ""]
    for r in results:
        if r.notes and r.notes[0].startswith("skipped"):
            continue
        details = list(r.notes)
        if r.fault == "web_kill" and r.extra:
            e = r.extra
            details.append(
                f"API follow-ups: {e['api_posts']} posted, {e['api_answered_2xx']} answered 2xx, "
                f"{e['api_answered_not_stored']} of those not stored, {e['api_unanswered']} "
                f"unanswered ({e['api_unanswered_but_stored']} of them stored anyway), "
                f"{e['api_stored_twice']} stored twice; integrity_check {e['integrity_check']}, "
                f"{e['foreign_key_violations']} foreign-key violations"
            )
        if r.fault == "import_load" and r.extra:
            for name in ("baseline", "during_import"):
                p = r.extra[name]
                details.append(
                    f"{name.replace('_', ' ')}: API follow-up POST p50 {p['api']['p50_ms']} ms, "
                    f"p95 {p['api']['p95_ms']} ms, max {p['api']['max_ms']} ms over "
                    f"{p['api_writes']} writes (not 2xx: {p['api_failures']}); callback p50 "
                    f"{p['callback']['p50_ms']} ms, p95 {p['callback']['p95_ms']} ms, max "
                    f"{p['callback']['max_ms']} ms over {p['callbacks']} "
                    f"(first tries not 2xx: {p['callback_failures']})"
                )
        lines.append(f"- **{r.title}** ({r.backend}): " + "; ".join(details))
    return "\n".join(lines) + "\n"


def write_doc_block(name: str, body: str) -> None:
    """Rewrite the block between `<!-- name:start -->` and `<!-- name:end -->` (appended if
    missing) in docs/reliability.md; everything else stays."""
    document = DOC_PATH.read_text() if DOC_PATH.exists() else "# Reliability\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in document:
        document = document.rstrip("\n") + f"\n\n{start}\n{end}\n"
    head, rest = document.split(start, 1)
    _, tail = rest.split(end, 1)
    DOC_PATH.write_text(f"{head}{start}\n{body}{end}{tail}")


# --- the run -----------------------------------------------------------------------------------


def backends_for(fault: str, db: str) -> tuple[str, ...]:
    """The databases `fault` runs on for `--db`; empty when it cannot run on any of them."""
    if db == "auto":
        return AUTO_BACKENDS.get(fault, ("sqlite",))
    wanted = BACKENDS if db == "both" else (db,)
    return tuple(b for b in wanted if b in POSSIBLE_BACKENDS.get(fault, BACKENDS))


def run_fault(
    fault: str, backend: str, args: argparse.Namespace, pg: PrivatePostgres | None, run: int
) -> tuple[Figures, dict[str, str]]:
    """One fault on a fresh stack: its figures and the machine's facts."""
    with Stack(fault, backend, args, pg, run) as stack:
        facts = machine_facts(stack.db.engine)
        return RUNNERS[fault](stack, args), facts


def main() -> None:
    """Run the selected faults, print the figures and record them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgres", "both", "auto"),
        default="auto",
        help="auto: each fault once, on the database where it matters most",
    )
    parser.add_argument("--only", default=",".join(FAULTS), help="comma-separated faults")
    parser.add_argument("--messages", type=int, default=300, help="callbacks per burst")
    parser.add_argument("--rate", type=float, default=30, help="callbacks a second in a burst")
    parser.add_argument(
        "--settle", type=float, default=90, help="seconds to wait for the backlog afterwards"
    )
    parser.add_argument("--redis-down", type=float, default=8, help="seconds Redis stays down")
    parser.add_argument("--pg-down", type=float, default=8, help="seconds PostgreSQL is down")
    parser.add_argument(
        "--wecom-down", type=float, default=60, help="seconds WeCom is unreachable (try 300)"
    )
    parser.add_argument(
        "--contact-events", type=int, default=20, help="contacts added while WeCom is down"
    )
    parser.add_argument("--import-rows", type=int, default=20000)
    parser.add_argument(
        "--phase-seconds", type=float, default=20, help="the import fault's baseline length"
    )
    parser.add_argument(
        "--import-timeout", type=float, default=300, help="the longest the import may take"
    )
    parser.add_argument(
        "--label", default="latest", help="the docs block to write (before / after a fix)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each fault (timing decides some faults)"
    )
    parser.add_argument("--no-doc", action="store_true", help="print, do not touch the docs")
    args = parser.parse_args()
    selected = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = set(selected) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; choose from {', '.join(FAULTS)}")
    plan = {fault: backends_for(fault, args.db) for fault in selected}
    results: list[Figures] = []
    facts: dict[str, dict[str, str]] = {}
    harness_errors = 0
    with ExitStack() as cleanup:
        pg, pg_error = None, ""
        if any("postgres" in backends for backends in plan.values()):
            try:
                pg = PrivatePostgres(Path(tempfile.mkdtemp(prefix="wecrm-faults-pg-")))
                cleanup.callback(pg.close)
                pg.init()
            except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                pg, pg_error = None, f"no private PostgreSQL cluster ({error})"
        for fault, backends in plan.items():
            if not backends:
                where = " or ".join(POSSIBLE_BACKENDS[fault])
                results.append(skipped(fault, args.db, f"runs on {where} only"))
                print(f"== {fault}: skipped, runs on {where} only")
            runs = range(1, args.repeat + 1) if args.repeat > 1 else (0,)
            for backend, run in ((b, r) for b in backends for r in runs):
                print(f"== {fault} on {backend}" + (f", run {run}" if run else ""), flush=True)
                started = time.monotonic()
                if backend == "postgres" and pg is None:
                    figures = skipped(fault, backend, pg_error)
                else:
                    try:
                        figures, facts[backend] = run_fault(fault, backend, args, pg, run)
                    except Exception:
                        harness_errors += 1
                        traceback.print_exc()
                        figures = skipped(fault, backend, "harness error (see the output)")
                results.append(figures)
                print(f"   {fmt(figures)}; {time.monotonic() - started:.0f} s in all")
                for note in figures.notes:
                    print(f"   {note}")
    command = "python -m bench.faults " + " ".join(sys.argv[1:])
    (WORK_DIR / f"faults-{args.label}.json").write_text(
        json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=2)
    )
    report = markdown(results, facts, command.strip())
    print()
    print(report)
    if not args.no_doc:
        write_doc_block(f"faults:{args.label}", report)
        print(f"wrote {DOC_PATH.relative_to(REPO)}")
    if harness_errors:
        sys.exit(f"{harness_errors} fault runs failed in the harness")


if __name__ == "__main__":
    main()
