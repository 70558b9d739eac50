"""The customer-book benchmark: a rep's list (first page and a filtered page), a customer's detail
with its timeline, and logging a follow-up, on 100k customers and 1M follow-ups.

Each operation is measured beside its baselines, in the same run:

* in process, through the Flask test client with a real token: wecrm's p50/p95, beside the raw
  SQL of the same requests (the statements wecrm ran, captured and replayed on the engine) and
  the bare Flask + SQLAlchemy app (`bench.bare_app`) answering the same requests;
* under load, wrk against gunicorn on 127.0.0.1: wecrm's throughput and p50/p99, beside the bare
  app served with the same gunicorn settings and hit by the same wrk script.

It prints a table and rewrites its section of docs/benchmarks.md. It measures; it asserts nothing
about timing (it does stop if an endpoint fails or the bare app answers with other rows).

    python -m bench.customer_book --db sqlite|postgres|both
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from sqlalchemy import Engine, bindparam, delete, event, func, select, text, update

from bench import seed
from bench.bare_app import create_bare_app
from bench.cpu import (
    CpuWindow,
    add_calm_options,
    apply_niceness,
    group_pids,
    postgres_pids,
    wait_for_quiet,
    with_application_name,
)
from bench.servers import Served
from config import Settings
from miniapp_api.auth import issue_token
from models import Base, Customer, FollowUp, User
from models.users import Role
from wecrm.app import create_app
from wecrm.wiring import build_runtime

REPO = Path(__file__).resolve().parent.parent
DOC_PATH = REPO / "docs" / "benchmarks.md"
RESULTS_DIR = seed.RESULTS_DIR
REDIS_URL = "redis://127.0.0.1:6379/14"  # a database of its own on the machine's Redis

TARGET_P95_MS = 5.0  # in process, list and detail
TARGET_SHARE_OF_BARE = 0.5  # under load, of the bare app's requests per second
SAMPLE_REPS = 20
DETAIL_CUSTOMERS_PER_REP = 10
CREATE_CUSTOMERS_PER_REP = 5
# A rep narrowing the list: two stages, two grades and a word of the company name.
FILTER = {"stage": ["意向", "报价"], "grade": ["A", "B"], "q": "建材"}
FOLLOW_UP = {"method": "电话", "summary": "电话：确认交货时间。客户态度积极，约下周签合同。"}


@dataclass(frozen=True)
class Call:
    """One HTTP request; everything ASCII, so the same call can go into a wrk script."""

    method: str
    url: str  # path and query
    token: str | None = None
    body: str | None = None  # JSON

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        return headers


@dataclass(frozen=True)
class Operation:
    key: str
    label: str
    wecrm: list[Call]
    bare: list[Call]
    status: int = 200
    is_write: bool = False
    has_target_p95: bool = False


@dataclass
class Timing:
    p50_ms: float
    p95_ms: float
    count: int

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        cuts = statistics.quantiles(seconds, n=100, method="inclusive")
        return cls(round(cuts[49] * 1000, 2), round(cuts[94] * 1000, 2), len(seconds))


@dataclass
class Load:
    requests_per_second: int
    p50_ms: float
    p99_ms: float
    requests: int
    failed: int  # non-2xx answers, socket errors and timeouts
    cpu_ms_per_request: float = 0.0  # the server's processes and their PostgreSQL backends
    others_cores: float = 0.0  # CPU the rest of the machine used meanwhile


@dataclass
class LoadFigures:
    """The best of the rounds (most requests per second), and the CPU per request over all."""

    best: Load
    rounds: list[Load]

    @property
    def cpu_ms_per_request(self) -> float:
        return round(statistics.median(r.cpu_ms_per_request for r in self.rounds), 2)


@dataclass
class OperationResult:
    key: str
    label: str
    statements: str  # how many SQL statements one request runs (a range if it varies)
    statement_texts: list[str]
    wecrm: Timing
    raw_sql: Timing
    bare: Timing
    others_cores: float  # CPU the rest of the machine used while these were taken
    wecrm_load: LoadFigures | None = None
    bare_load: LoadFigures | None = None


@dataclass
class Run:
    backend: str
    facts: dict[str, str]
    seed_seconds: float
    seed_reused: bool
    row_counts: dict[str, int]
    settings: dict[str, Any]
    operations: list[OperationResult] = field(default_factory=list)


# --- one backend, end to end -------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace) -> Run:
    url = seed.SQLITE_URL if backend == "sqlite" else args.pg_url
    seeded = seed.ensure_seeded(url, reseed=args.reseed)
    env = {
        "WECRM_DATA_DIR": str(RESULTS_DIR / f"data-{backend}"),
        "WECRM_DATABASE_URL": with_application_name(url, "bench_inprocess"),
        "WECRM_REDIS_URL": REDIS_URL,
        "WECRM_SECRET_KEY": secrets.token_urlsafe(32),  # tokens issued here verify in gunicorn
    }
    runtime = build_runtime(Settings.from_env(env))
    app = create_app(runtime)
    bare = create_bare_app(env["WECRM_DATABASE_URL"])
    engine = runtime.db.engine
    wanted = args.ops.split(",")
    operations = [op for op in build_operations(app, engine) if op.key in wanted]
    run = Run(
        backend=backend,
        facts=machine_facts(engine),
        seed_seconds=seeded.seconds,
        seed_reused=seeded.reused,
        row_counts=seeded.row_counts,
        settings={
            "iterations": args.iterations,
            "warmup": args.warmup,
            "workers": args.workers,
            "threads": args.threads,
            "connections": args.connections,
            "wrk_threads": args.wrk_threads,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
        },
    )
    touched = sorted(
        {int(c.url.split("/")[4]) for op in operations if op.is_write for c in op.wecrm}
    )
    print(f"\n== {backend}: in process ({args.iterations} requests per operation, interleaved)")
    with writes_undone(engine, touched):
        for op in operations:
            check_same_rows(app, bare, op)
            if args.skip_in_process:
                nothing = Timing(0, 0, 0)  # a load-only run (for trying server settings)
                run.operations.append(
                    OperationResult(op.key, op.label, "?", [], nothing, nothing, nothing, 0.0)
                )
                continue
            quiet(args)
            result = measure_in_process(app, bare, engine, op, args)
            run.operations.append(result)
            print(
                f"{op.label:34} {result.statements:>3} stmts  wecrm {fmt(result.wecrm)}  "
                f"raw SQL {fmt(result.raw_sql)}  bare {fmt(result.bare)}  "
                f"(others used {result.others_cores} cores)"
            )
    if not args.skip_load:
        measure_load(backend, url, env, engine, operations, run, touched, args)
    runtime.close()
    return run


def measure_load(
    backend: str,
    url: str,
    env: dict[str, str],
    engine: Engine,
    operations: list[Operation],
    run: Run,
    touched: list[int],
    args: argparse.Namespace,
) -> None:
    """wrk against wecrm and the bare app, both up at once and taken in turn, op by op."""
    print(
        f"\n== {backend}: under load (wrk -t{args.wrk_threads} -c{args.connections} "
        f"-d{args.duration}s, best of {args.rounds}; gunicorn {args.workers} workers x "
        f"{args.threads} threads)"
    )
    logs = RESULTS_DIR / "logs"
    servers = {
        kind: Served(
            kind,
            workers=args.workers,
            threads=args.threads,
            env={**env, "WECRM_DATABASE_URL": with_application_name(url, f"bench_{kind}")},
            log_path=logs / f"gunicorn-{kind}-{backend}.log",
        )
        for kind in ("wecrm", "bare")
    }
    with servers["wecrm"], servers["bare"]:
        for op, result in zip(operations, run.operations, strict=True):
            rounds: dict[str, list[Load]] = {"wecrm": [], "bare": []}
            for number in range(args.rounds):
                # Alternate who goes first, so neither always runs on the warmer machine.
                for kind in ("wecrm", "bare") if number % 2 == 0 else ("bare", "wecrm"):
                    server = servers[kind]
                    calls = op.wecrm if kind == "wecrm" else op.bare

                    def tracked(server: Served = server, kind: str = kind) -> list[int]:
                        assert server.process is not None
                        return group_pids(server.process.pid) + postgres_pids(
                            engine, f"bench_{kind}"
                        )

                    quiet(args)
                    with writes_undone(engine, touched):
                        rounds[kind].append(wrk(server.base_url, calls, op.key, tracked, args))
            result.wecrm_load, result.bare_load = (
                LoadFigures(max(rounds[k], key=lambda r: r.requests_per_second), rounds[k])
                for k in ("wecrm", "bare")
            )
            print(
                f"{op.label:34} wecrm {fmt_load(result.wecrm_load)}   "
                f"bare {fmt_load(result.bare_load)}"
            )


def quiet(args: argparse.Namespace) -> None:
    """Let other people's work on the machine calm down first, within reason."""
    if args.quiet_wait > 0:
        wait_for_quiet(max_cores=args.quiet_cores, timeout_seconds=args.quiet_wait)


def build_operations(app: Flask, engine: Engine) -> list[Operation]:
    """The calls each operation rotates over: 20 reps, their customers, real tokens."""
    with engine.connect() as conn:
        reps = (
            conn.execute(select(User.id).where(User.role == Role.REP).order_by(User.id))
            .scalars()
            .all()
        )
        # Every other rep from the smallest book to the largest: a spread of list sizes.
        step = max(len(reps) // SAMPLE_REPS, 1)
        chosen = list(reps[::step][:SAMPLE_REPS])
        owned = {
            rep: conn.execute(
                select(Customer.id)
                .where(Customer.owner_id == rep)
                .order_by(func.abs(Customer.id * 7919 % 1000003 - 500000))  # a fixed shuffle
                .limit(DETAIL_CUSTOMERS_PER_REP + CREATE_CUSTOMERS_PER_REP)
            )
            .scalars()
            .all()
            for rep in chosen
        }
    tokens: dict[int, str] = {}
    with app.app_context(), engine.connect() as conn:
        from sqlalchemy.orm import Session

        with Session(conn) as session:
            for rep in chosen:
                user = session.get(User, rep)
                assert user is not None
                tokens[rep] = issue_token(user).token
    query = urlencode(FILTER, doseq=True)
    body = json.dumps(FOLLOW_UP)  # ASCII escapes: safe inside a wrk script
    detail = [(rep, cid) for rep in chosen for cid in owned[rep][:DETAIL_CUSTOMERS_PER_REP]]
    create = [(rep, cid) for rep in chosen for cid in owned[rep][DETAIL_CUSTOMERS_PER_REP:]]
    return [
        Operation(
            "list",
            "customer list, first page",
            [Call("GET", "/api/v1/customers", tokens[r]) for r in chosen],
            [Call("GET", f"/bare/customers?owner_id={r}") for r in chosen],
            has_target_p95=True,
        ),
        Operation(
            "filtered",
            "customer list, stage+grade+search",
            [Call("GET", f"/api/v1/customers?{query}", tokens[r]) for r in chosen],
            [Call("GET", f"/bare/customers?owner_id={r}&{query}") for r in chosen],
            has_target_p95=True,
        ),
        Operation(
            "detail",
            "customer detail with timeline",
            [Call("GET", f"/api/v1/customers/{c}", tokens[r]) for r, c in detail],
            [Call("GET", f"/bare/customers/{c}?owner_id={r}") for r, c in detail],
            has_target_p95=True,
        ),
        Operation(
            "create",
            "log a follow-up",
            [Call("POST", f"/api/v1/customers/{c}/follow-ups", tokens[r], body) for r, c in create],
            [
                Call("POST", f"/bare/customers/{c}/follow-ups?owner_id={r}", None, body)
                for r, c in create
            ],
            status=201,
            is_write=True,
        ),
    ]


# --- in process --------------------------------------------------------------------------------


TRANSACTION_CONTROL = re.compile(r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


class StatementLog:
    """Every statement the engine sends while `capture` is on (SQLAlchemy's cursor event)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.current: list[tuple[str, Any]] | None = None
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(
        self,
        _conn: Any,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        # Transaction control is not a query (and the replay opens its own transaction).
        if self.current is not None and not TRANSACTION_CONTROL.match(statement):
            self.current.append((statement, parameters))

    @contextmanager
    def capture(self) -> Iterator[list[tuple[str, Any]]]:
        self.current = []
        try:
            yield self.current
        finally:
            self.current = None

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


def measure_in_process(
    app: Flask, bare: Flask, engine: Engine, op: Operation, args: argparse.Namespace
) -> OperationResult:
    """wecrm, the raw SQL of its requests and the bare app, interleaved request by request
    (in a rotating order) so that all three meet the same machine."""
    client, bare_client = app.test_client(), bare.test_client()
    log = StatementLog(engine)
    try:
        # One pass to warm up and capture each call's statements for the raw SQL replay.
        captured = []
        for call in op.wecrm:
            with log.capture() as statements:
                _send(client, call, op.status)
            captured.append(statements)
        times: dict[str, list[float]] = {"wecrm": [], "raw": [], "bare": []}
        counted: list[list[tuple[str, Any]]] = []

        def send_wecrm(index: int) -> None:
            with log.capture() as statements:
                _send(client, op.wecrm[index % len(op.wecrm)], op.status)
            counted.append(statements)

        steps: dict[str, Callable[[int], Any]] = {
            "wecrm": send_wecrm,
            "raw": lambda index: replay(engine, captured[index % len(captured)]),
            "bare": lambda index: _send(bare_client, op.bare[index % len(op.bare)], op.status),
        }
        orders = [("wecrm", "raw", "bare"), ("raw", "bare", "wecrm"), ("bare", "wecrm", "raw")]
        tracked = lambda: postgres_pids(engine, "bench_inprocess")  # noqa: E731
        with CpuWindow(tracked) as window:
            for index in range(args.warmup + args.iterations):
                for name in orders[index % len(orders)]:
                    started = time.perf_counter()
                    steps[name](index)
                    if index >= args.warmup:
                        times[name].append(time.perf_counter() - started)
    finally:
        log.close()
    measured = counted[args.warmup :]
    counts = Counter(len(s) for s in measured)
    low, high = min(counts), max(counts)
    assert window.use is not None
    return OperationResult(
        key=op.key,
        label=op.label,
        statements=str(low) if low == high else f"{low}–{high}",
        statement_texts=[_shorten(s) for s, _ in max(measured, key=len)],
        wecrm=Timing.of(times["wecrm"]),
        raw_sql=Timing.of(times["raw"]),
        bare=Timing.of(times["bare"]),
        others_cores=window.use.others_cores,
    )


def replay(engine: Engine, statements: list[tuple[str, Any]]) -> None:
    """Run captured statements as they went to the driver, in one transaction, rows fetched."""
    with engine.begin() as conn:
        for statement, parameters in statements:
            result = conn.exec_driver_sql(statement, parameters)
            if result.returns_rows:
                result.fetchall()


def _send(client: Any, call: Call, status: int) -> Any:
    response = client.open(call.url, method=call.method, headers=call.headers, data=call.body)
    if response.status_code != status:
        raise RuntimeError(
            f"{call.method} {call.url} answered {response.status_code}: "
            f"{response.get_data(as_text=True)[:500]}"
        )
    return response.get_json()


def check_same_rows(app: Flask, bare: Flask, op: Operation) -> None:
    """The bare app must answer with the same rows, or its figures say nothing about wecrm's."""
    if op.is_write:
        return
    client, bare_client = app.test_client(), bare.test_client()
    for call, bare_call in list(zip(op.wecrm, op.bare, strict=True))[:5]:
        ours, theirs = _send(client, call, op.status), _send(bare_client, bare_call, op.status)
        if _rows(op, ours) != _rows(op, theirs):
            raise RuntimeError(
                f"bare app disagrees on {op.key}: {call.url}\n"
                f"wecrm {_rows(op, ours)}\nbare  {_rows(op, theirs)}"
            )


def _rows(op: Operation, answer: dict[str, Any]) -> list[Any]:
    """What must match: the total and the page's ids, or the customer and its timeline."""
    if op.key == "detail":
        return [
            answer["customer"]["id"],
            [(e["kind"], e[e["kind"]]["id"]) for e in answer["timeline"]],
        ]
    return [answer["total"], [c["id"] for c in answer["items"]]]


def _shorten(statement: str) -> str:
    """A statement with its column list folded, for the report."""
    flat = " ".join(statement.split())
    flat = re.sub(r"^SELECT (.{60,}?) FROM", "SELECT … FROM", flat)
    flat = re.sub(r"IN \((?:\?, )+\?\)", "IN (…)", flat)
    flat = re.sub(r"IN \((?:%\(\w+\)s, )+%\(\w+\)s\)", "IN (…)", flat)
    return flat


@contextmanager
def writes_undone(engine: Engine, customer_ids: list[int]) -> Iterator[None]:
    """Put the seeded book back after writes: drop new follow-ups and audit entries, restore
    the touched customers' timestamps, so every run (and the seed marker) sees the same data."""
    tables = Base.metadata.tables
    table, follow_ups, audit = tables["customers"], tables["follow_ups"], tables["audit_entries"]
    with engine.connect() as conn:
        last_follow_up = conn.scalar(select(func.max(follow_ups.c.id))) or 0
        last_audit = conn.scalar(select(func.max(audit.c.id))) or 0
        saved = (
            conn.execute(
                select(table.c.id, table.c.updated_at, table.c.last_follow_up_at).where(
                    table.c.id.in_(customer_ids)
                )
            ).all()
            if customer_ids
            else []
        )
    try:
        yield
    finally:
        _settle(engine)
        with engine.begin() as conn:
            conn.execute(delete(follow_ups).where(follow_ups.c.id > last_follow_up))
            conn.execute(delete(audit).where(audit.c.id > last_audit))
            if saved:
                conn.execute(
                    update(table)
                    .where(table.c.id == bindparam("cid"))
                    .values(updated_at=bindparam("u"), last_follow_up_at=bindparam("l")),
                    [{"cid": i, "u": u, "l": lf} for i, u, lf in saved],
                )


def _settle(engine: Engine, *, quiet_seconds: float = 1.0, limit_seconds: float = 60.0) -> None:
    """Wait until no follow-up has been added for a moment: when wrk stops, the server may still
    be finishing requests it had queued (on SQLite, waiting for the write lock)."""
    deadline = time.monotonic() + limit_seconds
    last = None
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            current = conn.scalar(select(func.max(FollowUp.id)))
        if current == last:
            return
        last = current
        time.sleep(quiet_seconds)


# --- under load --------------------------------------------------------------------------------


def wrk(
    base_url: str,
    calls: list[Call],
    name: str,
    tracked: Callable[[], list[int]],
    args: argparse.Namespace,
) -> Load:
    """Warm up for 2 s, then run wrk for `duration` seconds over the calls, in turn."""
    script = RESULTS_DIR / "wrk" / f"{name}-{base_url.rsplit(':', 1)[1]}.lua"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(_wrk_script(calls))
    options = [
        f"-t{args.wrk_threads}",
        f"-c{args.connections}",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base_url,
    ]
    subprocess.run(["wrk", "-d2s", *options], check=True, capture_output=True)
    with CpuWindow(tracked) as window:
        output = subprocess.run(
            ["wrk", f"-d{args.duration}s", *options], check=True, capture_output=True, text=True
        ).stdout
    load = parse_wrk(output)
    assert window.use is not None
    load.cpu_ms_per_request = round(window.use.tracked_cpu_seconds * 1000 / load.requests, 2)
    load.others_cores = window.use.others_cores
    return load


def _wrk_script(calls: list[Call]) -> str:
    def lua(value: str | None) -> str:
        if value is None:
            return "nil"
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    specs = ",\n".join(
        f"  {{{lua(c.method)}, {lua(c.url)}, {lua(c.token and 'Bearer ' + c.token)}, "
        f"{lua(c.body)}}}"
        for c in calls
    )
    return f"""-- generated by bench/customer_book.py: the calls, in turn
local specs = {{
{specs}
}}
local requests = {{}}
local counter = 0

init = function(args)
  for i, s in ipairs(specs) do
    local headers = {{}}
    if s[3] then headers["Authorization"] = s[3] end
    if s[4] then headers["Content-Type"] = "application/json" end
    requests[i] = wrk.format(s[1], s[2], headers, s[4])
  end
end

request = function()
  counter = counter % #requests + 1
  return requests[counter]
end
"""


def parse_wrk(output: str) -> Load:
    def duration_ms(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"no {label} latency in wrk output:\n{output}")
        value, unit = float(match[1]), match[2]
        return round(value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    failed = int(non_2xx[1]) if non_2xx else 0
    failed += sum(int(n) for n in socket.groups()) if socket else 0
    return Load(round(float(rps[1])), duration_ms("50%"), duration_ms("99%"), int(total[1]), failed)


# --- the report --------------------------------------------------------------------------------


def machine_facts(engine: Engine) -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])  # type: ignore[index]
    with engine.connect() as conn:
        database = (
            f"SQLite {sqlite3.sqlite_version}"
            if engine.dialect.name == "sqlite"
            else f"PostgreSQL {conn.scalar(text('SHOW server_version'))}"
        )
    wrk_version = (
        subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
        if shutil.which("wrk")
        else []
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{os.cpu_count()} × {cpu}",
        "memory": f"{memory_kib / 1024 / 1024:.0f} GiB",
        "python": platform.python_version(),
        "database": database,
        "libraries": ", ".join(
            f"{name} {version(name)}"
            for name in ("SQLAlchemy", "Flask", "pydantic", "gunicorn", "psycopg")
        ),
        "wrk": wrk_version[1] if len(wrk_version) > 1 else "?",
        "code": _code_version(),
    }


def _code_version() -> str:
    """The commit measured, and whether the working tree had changes on top of it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return commit + (" + uncommitted changes" if git("status", "--porcelain").strip() else "")


def fmt(timing: Timing) -> str:
    return f"{timing.p50_ms:6.2f} / {timing.p95_ms:6.2f}"


def fmt_load(figures: LoadFigures | None) -> str:
    if figures is None:
        return "—"
    load = figures.best
    failed = f" ({load.failed} failed)" if load.failed else ""
    return (
        f"{load.requests_per_second:5,} req/s, p50 {load.p50_ms} ms, p99 {load.p99_ms} ms, "
        f"{figures.cpu_ms_per_request} CPU ms/req{failed}"
    )


def markdown(run: Run) -> str:
    title = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[run.backend]
    f, s = run.facts, run.settings
    counts = run.row_counts
    lines = [
        f"### {title}",
        "",
        f"Measured {f['date']} on {f['cpu']}, {f['memory']} RAM; Python {f['python']}, "
        f"{f['database']}, {f['libraries']}, wrk {f['wrk']}; code at {f['code']}.",
        "",
        f"Data: {counts.get('customers', 0):,} customers, {counts.get('follow_ups', 0):,} "
        f"follow-ups, {counts.get('stage_changes', 0):,} stage changes, "
        f"{counts.get('tasks', 0):,} tasks, {counts.get('customer_tags', 0):,} tags, "
        f"{counts.get('users', 0)} people (50 reps in 5 teams, their managers, the boss). "
        f"Seeding took {run.seed_seconds:.0f} s"
        + (" (cached from an earlier run)." if run.seed_reused else "."),
        "",
        f"**In process** (Flask test client, real token; {s['iterations']} requests per "
        f"operation after {s['warmup']} warm-up, rotating over 20 reps and their customers; "
        "wecrm, raw SQL and bare app interleaved request by request). Milliseconds, p50 / p95:",
        "",
        "| operation | SQL statements | wecrm | raw SQL of the same requests | bare Flask app "
        f"| wecrm ÷ raw SQL (p95) | target p95 ≤ {TARGET_P95_MS:g} ms |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in run.operations:
        target = (
            ("met" if r.wecrm.p95_ms <= TARGET_P95_MS else "**missed**")
            if r.key != "create"
            else "—"
        )
        lines.append(
            f"| {r.label} | {r.statements} | {r.wecrm.p50_ms:.2f} / {r.wecrm.p95_ms:.2f} "
            f"| {r.raw_sql.p50_ms:.2f} / {r.raw_sql.p95_ms:.2f} "
            f"| {r.bare.p50_ms:.2f} / {r.bare.p95_ms:.2f} "
            f"| {r.wecrm.p95_ms / r.raw_sql.p95_ms:.1f}× | {target} |"
        )
    noise = max(r.others_cores for r in run.operations)
    lines += [
        "",
        f"Other processes on the machine used up to {noise:.1f} of its "
        f"{os.cpu_count()} cores meanwhile (the benchmark ran at nice {s['nice']}).",
    ]
    if any(r.wecrm_load for r in run.operations):
        lines += [
            "",
            f"**Under load**: gunicorn, {s['workers']} workers × {s['threads']} threads "
            "(gthread), started through `wecrm.server.serve` for both apps, on 127.0.0.1; "
            f"wrk -t{s['wrk_threads']} -c{s['connections']} -d{s['duration_s']}s after a 2 s "
            f"warm-up, same request rotation; best of {s['rounds']} rounds, the two apps taken "
            "in turn. CPU ms/req is the CPU the server's processes (and, on PostgreSQL, their "
            "backends) spent per request, the median over the rounds; its ratio is what the "
            "throughput ratio would be with the CPU to themselves, and moves much less with the "
            "machine's other work than req/s does:",
            "",
            "| operation | wecrm req/s | p50 / p99 ms | CPU ms/req | bare req/s | p50 / p99 ms "
            "| CPU ms/req | wecrm ÷ bare (req/s) | wecrm ÷ bare (by CPU/req) "
            f"| target ≥ {TARGET_SHARE_OF_BARE:.0%} |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
        ]
        noise = 0.0
        for r in run.operations:
            if r.wecrm_load is None or r.bare_load is None:
                continue
            w, b = r.wecrm_load.best, r.bare_load.best
            noise = max(noise, w.others_cores, b.others_cores)
            share = w.requests_per_second / b.requests_per_second
            # What the throughput ratio would be on a machine of its own: CPU is the bottleneck.
            cpu_share = r.bare_load.cpu_ms_per_request / r.wecrm_load.cpu_ms_per_request
            verdict = "met" if share >= TARGET_SHARE_OF_BARE else "**missed**"
            if (share >= TARGET_SHARE_OF_BARE) != (cpu_share >= TARGET_SHARE_OF_BARE):
                verdict += " (not by CPU)" if share >= TARGET_SHARE_OF_BARE else " (met by CPU)"
            lines.append(
                f"| {r.label} | {w.requests_per_second:,}{_failed(w)} "
                f"| {w.p50_ms:.1f} / {w.p99_ms:.1f} | {r.wecrm_load.cpu_ms_per_request:.2f} "
                f"| {b.requests_per_second:,}{_failed(b)} | {b.p50_ms:.1f} / {b.p99_ms:.1f} "
                f"| {r.bare_load.cpu_ms_per_request:.2f} | {share:.0%} | {cpu_share:.0%} "
                f"| {verdict} |"
            )
        lines += ["", f"Other processes used up to {noise:.1f} cores during these figures."]
    lines += ["", "SQL statements per request (the largest request of each operation):", ""]
    for r in run.operations:
        lines.append(f"- {r.label} ({r.statements}):")
        lines += [f"  {n}. `{t}`" for n, t in enumerate(r.statement_texts, 1)]
    return "\n".join(lines) + "\n"


def _failed(load: Load) -> str:
    return f" ({load.failed:,} failed)" if load.failed else ""


DOC_TEMPLATE = """# Benchmarks

Figures from the scripts in `bench/` (see `bench/README.md`). Each figure stands beside its
baseline measured in the same run on the same machine; the scripts assert nothing about time.

## Customer book

`python -m bench.customer_book --db both` seeds (once, then cached) 100,000 customers and
1,000,000 follow-ups for 50 reps (`bench/seed.py`), then measures a rep's customer list (the
first page, and a page filtered by stage, grade and search text), a customer's detail with its
timeline, and logging a follow-up:

- **in process** through the Flask test client with a real token, beside the **raw SQL** of the
  same requests (the statements wecrm sent, captured with SQLAlchemy's `before_cursor_execute`
  and replayed on the same engine in one transaction) and the **bare app** (`bench/bare_app.py`:
  Flask + SQLAlchemy running the same SQL with no auth, scope, ORM or schema — the framework's
  floor; the script checks it answers with the same rows);
- **under load** with wrk against gunicorn on 127.0.0.1, wecrm beside the bare app served with the
  same gunicorn settings and hit by the same wrk script.

Targets: in process, p95 ≤ 5 ms for the list and the detail; under load, at least 50 % of the bare
app's throughput.

<!-- customer_book:sqlite:start -->
<!-- customer_book:sqlite:end -->

<!-- customer_book:postgres:start -->
<!-- customer_book:postgres:end -->
"""


def write_doc(run: Run) -> None:
    """Rewrite this backend's block in docs/benchmarks.md; everything else stays as it is."""
    write_doc_block(f"customer_book:{run.backend}", markdown(run))


def write_doc_block(name: str, body: str) -> None:
    """Rewrite the block between `<!-- name:start -->` and `<!-- name:end -->` (appended if
    missing) in docs/benchmarks.md; everything else stays as it is."""
    document = DOC_PATH.read_text() if DOC_PATH.exists() else DOC_TEMPLATE
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in document:
        document = document.rstrip("\n") + f"\n\n{start}\n{end}\n"
    head, rest = document.split(start, 1)
    _, tail = rest.split(end, 1)
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(f"{head}{start}\n{body}{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--pg-url",
        default=seed.POSTGRES_URL,
        help="the PostgreSQL bench database (created if missing; *bench* only)",
    )
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn process")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=15, help="seconds of wrk per figure")
    parser.add_argument("--rounds", type=int, default=2, help="wrk runs per figure (best kept)")
    add_calm_options(parser)
    parser.add_argument("--skip-load", action="store_true", help="in-process figures only")
    parser.add_argument("--skip-in-process", action="store_true", help="load figures only")
    parser.add_argument(
        "--ops", default="list,filtered,detail,create", help="comma-separated operations to measure"
    )
    parser.add_argument("--reseed", action="store_true", help="seed even if the marker matches")
    parser.add_argument("--no-doc", action="store_true", help="print, do not touch the docs")
    args = parser.parse_args()
    if not args.skip_load and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk), or pass --skip-load")
    apply_niceness(args)  # children (gunicorn, wrk) inherit it
    for backend in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        run = run_backend(backend, args)
        (RESULTS_DIR / f"customer_book-{backend}.json").write_text(
            json.dumps(asdict(run), ensure_ascii=False, indent=2)
        )
        print()
        print(markdown(run))
        if not args.no_doc:
            write_doc(run)
            print(f"wrote {DOC_PATH.relative_to(REPO)}")


if __name__ == "__main__":
    main()
