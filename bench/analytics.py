"""The analytics benchmark (issue 13) on the customer book's seed: 100k customers, 1M follow-ups
and their stage history.

Each view is called in process, the crm function directly with a real Session (no Flask, no
JSON), as its API would call it; beside it, in the same run and interleaved round by round, the
raw SQL it needs: its statements, captured with `before_cursor_execute` on a warm-up call and
replayed on the same engine with every row fetched (for the funnel, its four GROUP BY
statements; for similar deals, the document-frequency aggregate, the postings read and the won
paths). The forecast's baseline adds the bare numpy simulation: the same number of runs over
the same number of open deals per window, without building the histories, the anchors' tallies
or the posteriors in Python.

The views: the funnel of the last 30 days for the company (the boss) and for one team (its
manager); the forecast as the boss, with its 12-month back-test and without; one rep's health
score for the last whole month (as that rep: the team's tallies, one row shown); the KPI panel
of the last 30 days as the boss; similar won deals for a customer in 意向, as its rep and as the
boss. Before them the similar-deals index is built on the book (`crm.similar.reindex`, timed:
the feature's up-front cost), once per seed; a marker keeps its time for later runs.

Nothing is written by the views, so nothing needs undoing (each round's session is rolled
back). It prints a table per backend and rewrites its block of docs/benchmarks.md; it asserts
nothing about time.

    python -m bench.analytics --db sqlite|postgres|both [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from bench import seed
from bench.cpu import CpuWindow, add_calm_options, apply_niceness, with_application_name
from bench.customer_book import (
    DOC_PATH,
    REPO,
    StatementLog,
    machine_facts,
    quiet,
    replay,
    write_doc_block,
)
from crm import calendar, similar
from crm.actors import Actor
from crm.analytics import forecast, funnel, health, kpi
from crm.vocab import Stage
from models import Customer, CustomerDocument, Database, StageChange, User
from models.users import Role

APPLICATION_NAME = "bench_analytics"
INDEX_MARKER = "bench_analytics_index"  # the similar-deals index built for this seed, and its time
PERIOD_DAYS = 30
TARGETS_MS = {"funnel": 200.0, "forecast": 500.0, "similar": 100.0}  # p95, issue 13


@dataclass(frozen=True)
class View:
    key: str
    label: str
    target: str | None  # a key of TARGETS_MS
    call: Callable[[Session], Any]
    # The forecast's extra baseline work, from the view's answer (the bare simulation).
    bare: Callable[[Any], Callable[[], None]] | None = None
    note: Callable[[Any], str] = lambda _: ""


@dataclass
class Timing:
    p50_ms: float
    p95_ms: float
    rounds: int

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        if len(seconds) == 1:
            return cls(round(seconds[0] * 1000, 1), round(seconds[0] * 1000, 1), 1)
        cuts = statistics.quantiles(seconds, n=100, method="inclusive")
        return cls(round(cuts[49] * 1000, 1), round(cuts[94] * 1000, 1), len(seconds))


@dataclass
class ViewResult:
    key: str
    label: str
    target_ms: float | None
    statements: int
    statement_texts: list[str]
    view: Timing
    raw: Timing
    others_cores: float
    note: str


@dataclass
class Run:
    backend: str
    facts: dict[str, str]
    row_counts: dict[str, int]
    seed_seconds: float
    seed_reused: bool
    history: dict[str, Any]
    index: dict[str, Any]
    nice: int
    views: list[ViewResult] = field(default_factory=list)


# --- one backend -------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace) -> Run:
    url = seed.SQLITE_URL if backend == "sqlite" else args.pg_url
    plan = seed.SeedPlan(customers=args.customers, follow_ups=args.follow_ups)
    seeded = seed.ensure_seeded(url, plan)
    db = Database(with_application_name(url, APPLICATION_NAME))
    try:
        db.upgrade()  # a cached seed may predate the newest migration
        now = seeded.anchor
        run = Run(
            backend=backend,
            facts=machine_facts(db.engine),
            row_counts=seeded.row_counts,
            seed_seconds=seeded.seconds,
            seed_reused=seeded.reused,
            history=history_facts(db.engine, now),
            index=ensure_index(db, now, seeded.row_counts["customers"], reindex=args.reindex),
            nice=os.getpriority(os.PRIO_PROCESS, 0),
        )
        print(f"\n== {backend}: {run.row_counts['customers']:,} customers; {run.history}")
        print(f"similar-deals index: {run.index}")
        views = {v.key: v for v in build_views(db, now)}
        for view in (views[key] for key in args.views.split(",")):
            quiet(args)
            result = measure(db, view, args)
            run.views.append(result)
            print(
                f"{view.label:44} {result.statements:>2} stmts  view {fmt(result.view)}  "
                f"raw {fmt(result.raw)}  {result.note}  (others used {result.others_cores} cores)"
            )
        return run
    finally:
        db.dispose()


def history_facts(engine: Engine, now: datetime) -> dict[str, Any]:
    """What the forecast and the funnel feed on: won deals with amounts, months of history."""
    year_ago = now - timedelta(days=365)
    with engine.connect() as conn:
        won = conn.execute(
            select(func.count(), func.count(Customer.expected_amount)).where(
                Customer.stage == Stage.WON.value
            )
        ).one()
        first = conn.scalar(select(func.min(StageChange.changed_at)))
        last_year = conn.scalar(select(func.count()).where(StageChange.changed_at >= year_ago))
        wins_last_year = conn.scalar(
            select(func.count()).where(
                StageChange.changed_at >= year_ago, StageChange.to_stage == Stage.WON.value
            )
        )
    return {
        "won": won[0],
        "won_with_amount": won[1],
        "history_from": str(first)[:10],
        "changes_last_12_months": last_year,
        "wins_last_12_months": wins_last_year,
    }


def ensure_index(db: Database, now: datetime, customers: int, *, reindex: bool) -> dict[str, Any]:
    """Build the similar-deals documents of every customer unless this seed has them; the time
    the build took is kept beside them, so later runs report it too."""
    engine = db.engine
    with engine.connect() as conn:
        has_marker = engine.dialect.has_table(conn, INDEX_MARKER)
        marker = (
            conn.execute(text(f"SELECT customers, seconds, postings FROM {INDEX_MARKER}")).first()
            if has_marker
            else None
        )
        documents = conn.scalar(select(func.count()).select_from(CustomerDocument))
    if not reindex and marker is not None and marker.customers == customers == documents:
        return {"seconds": marker.seconds, "postings": marker.postings, "reused": True}
    print(f"similar-deals index: building for {customers:,} customers …")
    started = time.perf_counter()
    with db.session(lock_for_write=True) as session:
        similar.reindex(session, now=now)
        session.commit()
    seconds = round(time.perf_counter() - started, 1)
    with engine.begin() as conn:
        postings = conn.scalar(text("SELECT count(*) FROM customer_terms")) or 0
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {INDEX_MARKER} "
            "(customers INTEGER NOT NULL, seconds REAL NOT NULL, postings INTEGER NOT NULL)"
        )
        conn.execute(text(f"DELETE FROM {INDEX_MARKER}"))
        conn.execute(
            text(f"INSERT INTO {INDEX_MARKER} VALUES (:c, :s, :p)"),
            {"c": customers, "s": seconds, "p": postings},
        )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE customer_terms, customer_documents")
    return {"seconds": seconds, "postings": postings, "reused": False}


def build_views(db: Database, now: datetime) -> list[View]:
    """The views as their APIs call them, for people of the seeded company."""
    today = calendar.local_date(now)
    last_30_days = funnel.Period.of(today - timedelta(days=PERIOD_DAYS), today)
    last_month = today.replace(day=1) - timedelta(days=1)
    with db.session() as session:
        people = session.scalars(select(User).order_by(User.id)).all()
        boss = Actor.of(next(u for u in people if u.role == Role.BOSS))
        manager = Actor.of(next(u for u in people if u.role == Role.MANAGER))
        rep_user = next(u for u in people if u.role == Role.REP and u.team_id == manager.team_id)
        rep = Actor.of(rep_user)
        customer_id = session.scalar(
            select(Customer.id)
            .where(Customer.owner_id == rep.user_id, Customer.stage == Stage.INTEREST.value)
            .order_by(Customer.id)
            .limit(1)
        )
        assert customer_id is not None, "the rep holds no customer in 意向"

    def backtest_note(answer: forecast.Forecast) -> str:
        b = answer.backtest
        if not b.months:
            return f"next month P50 {answer.next_month.revenue.p50:,.0f}"
        return (
            f"back-test {b.covered}/{len(b.months)} months in P10–P90, "
            f"width {b.mean_relative_width or 0:.0%} of actual, P50 error {b.p50_mape or 0:.0%}"
        )

    return [
        View(
            "funnel_company",
            "funnel, company (boss, by team and rep)",
            "funnel",
            lambda s: funnel.team_funnel(s, actor=boss, period=last_30_days),
            note=lambda r: f"{r.total.stages[0].entered:,} new leads",
        ),
        View(
            "funnel_team",
            "funnel, one team (its manager)",
            "funnel",
            lambda s: funnel.team_funnel(s, actor=manager, period=last_30_days),
        ),
        View(
            "forecast",
            "forecast with its 12-month back-test (boss)",
            "forecast",
            lambda s: forecast.revenue_forecast(s, actor=boss, now=now),
            bare=bare_simulation,
            note=backtest_note,
        ),
        View(
            "forecast_live",
            "forecast without the back-test (boss)",
            "forecast",
            lambda s: forecast.revenue_forecast(s, actor=boss, now=now, backtest_months=0),
            bare=bare_simulation,
            note=backtest_note,
        ),
        View(
            "health",
            "one rep's health score (last month)",
            None,
            lambda s: health.rep_health(s, actor=rep, month=last_month, now=now),
        ),
        View(
            "kpi",
            "KPI panel, company (boss)",
            None,
            lambda s: kpi.kpi_panel(s, actor=boss, period=last_30_days, now=now),
        ),
        View(
            "similar_rep",
            "similar won deals (the customer's rep)",
            "similar",
            lambda s: similar.similar_deals(s, actor=rep, customer_id=customer_id),
            note=lambda r: f"{len(r)} deals",
        ),
        View(
            "similar_boss",
            "similar won deals (boss: every won deal)",
            "similar",
            lambda s: similar.similar_deals(s, actor=boss, customer_id=customer_id),
            note=lambda r: f"{len(r)} deals",
        ),
    ]


def bare_simulation(answer: forecast.Forecast) -> Callable[[], None]:
    """The forecast's numpy work alone: per window it simulated, `SIMULATIONS` runs drawing a
    rate per cell and every open deal, in the same batches, and the percentiles."""
    rng = np.random.default_rng(0)
    cells = 9  # 3 open stages × 3 age buckets
    sizes = [answer.this_month_remaining.open_deals, answer.next_month.open_deals]
    sizes += [m.open_deals for m in answer.backtest.months]
    inputs = [(rng.integers(0, cells, n), rng.random(n) * 100_000) for n in sizes]

    def run() -> None:
        for index, values in inputs:
            rates = rng.beta(2.0, 5.0, size=(forecast.SIMULATIONS, cells))
            revenue = np.empty(forecast.SIMULATIONS)
            batch = max(1, forecast.MAX_DRAWS_PER_BATCH // max(1, len(index)))
            for first in range(0, forecast.SIMULATIONS, batch):
                runs = rates[first : first + batch]
                won = rng.random((len(runs), len(index))) < runs[:, index]
                revenue[first : first + batch] = won @ values
            np.percentile(revenue, forecast.QUANTILES)

    return run


def measure(db: Database, view: View, args: argparse.Namespace) -> ViewResult:
    """A warm-up call that captures the view's statements, then rounds of the view and of its
    raw SQL (plus the bare simulation) in turn, alternating which goes first."""
    log = StatementLog(db.engine)
    try:
        with db.session() as session, log.capture() as statements:
            answer = view.call(session)
            session.rollback()
        captured = list(statements)
    finally:
        log.close()
    bare = view.bare(answer) if view.bare else (lambda: None)

    def the_view() -> None:
        with db.session() as session:
            view.call(session)
            session.rollback()

    def the_raw() -> None:
        replay(db.engine, captured)
        bare()

    times: dict[str, list[float]] = {"view": [], "raw": []}
    spent = 0.0
    with CpuWindow() as window:
        for number in range(args.rounds):
            pair = (("view", the_view), ("raw", the_raw))
            for name, action in pair if number % 2 == 0 else pair[::-1]:
                started = time.perf_counter()
                action()
                times[name].append(time.perf_counter() - started)
            spent += times["view"][-1] + times["raw"][-1]
            if number + 1 >= args.min_rounds and spent > args.view_budget:
                break  # a slow view: fewer rounds, said in the table
    assert window.use is not None
    target = TARGETS_MS[view.target] if view.target else None
    return ViewResult(
        key=view.key,
        label=view.label,
        target_ms=target,
        statements=len(captured),
        statement_texts=[" ".join(s.split()) for s, _ in captured],
        view=Timing.of(times["view"]),
        raw=Timing.of(times["raw"]),
        others_cores=window.use.others_cores,
        note=view.note(answer),
    )


# --- the report --------------------------------------------------------------------------------


def fmt(timing: Timing) -> str:
    return f"{timing.p50_ms:8.1f} / {timing.p95_ms:8.1f} ms"


def verdict(result: ViewResult) -> str:
    if result.target_ms is None:
        return "—"
    met = result.view.p95_ms <= result.target_ms
    return f"{'met' if met else '**missed**'} (≤ {result.target_ms:g} ms)"


def markdown(run: Run) -> str:
    title = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[run.backend]
    f, counts, h, index = run.facts, run.row_counts, run.history, run.index
    lines = [
        f"### {title}",
        "",
        f"Measured {f['date']} on {f['cpu']}, {f['memory']} RAM; Python {f['python']}, "
        f"{f['database']}; code at {f['code']}.",
        "",
        f"Data: {counts['customers']:,} customers, {counts['follow_ups']:,} follow-ups, "
        f"{counts['stage_changes']:,} stage changes since {h['history_from']} "
        f"({h['changes_last_12_months']:,} in the last 12 months, {h['wins_last_12_months']:,} "
        f"of them wins), {h['won']:,} won customers ({h['won_with_amount']:,} with an expected "
        f"amount). Seeding took {run.seed_seconds:.0f} s"
        + (" (cached from an earlier run)" if run.seed_reused else "")
        + f". Building the similar-deals index (`crm.similar.reindex` over every customer, "
        f"{index['postings']:,} postings) took {index['seconds']:.0f} s"
        + (" (built by an earlier run on this seed)." if index["reused"] else "."),
        "",
        "In process, the crm function with a real Session beside the raw SQL it sent (replayed, "
        "rows fetched; for the forecast plus the bare numpy simulation), interleaved round by "
        "round. Milliseconds, p50 / p95:",
        "",
        "| view | SQL statements | rounds | view | raw SQL (+ bare loop) | view ÷ raw (p95) "
        "| target p95 | notes |",
        "|---|---:|---:|---:|---:|---:|:---:|---|",
    ]
    for r in run.views:
        lines.append(
            f"| {r.label} | {r.statements} | {r.view.rounds} "
            f"| {r.view.p50_ms:,.1f} / {r.view.p95_ms:,.1f} "
            f"| {r.raw.p50_ms:,.1f} / {r.raw.p95_ms:,.1f} "
            f"| {r.view.p95_ms / max(r.raw.p95_ms, 0.001):.1f}× | {verdict(r)} | {r.note} |"
        )
    noise = max((r.others_cores for r in run.views), default=0.0)
    lines += [
        "",
        f"Other processes on the machine used up to {noise:.1f} of its {os.cpu_count()} cores "
        f"meanwhile (the benchmark ran at nice {run.nice}).",
        "",
        "SQL statements per view:",
        "",
    ]
    for r in run.views:
        lines.append(f"- {r.label} ({r.statements}):")
        lines += [f"  {n}. `{_shorten(t)}`" for n, t in enumerate(r.statement_texts, 1)]
    return "\n".join(lines) + "\n"


def _shorten(statement: str, limit: int = 300) -> str:
    return statement if len(statement) <= limit else statement[:limit] + " …"


ABOUT = """## Analytics

`python -m bench.analytics --db both` (see `bench/README.md`) measures the views of issue 13 on
the customer book's seed (100,000 customers, 1,000,000 follow-ups and their stage history,
reused from `bench/seed.py`), in process: the crm function called with a real Session, beside
the raw SQL it sent (captured on a warm-up call, replayed on the same engine with every row
fetched), interleaved round by round:

- the **funnel** of the last 30 days for the company (the boss: by team and rep) and for one
  team (its manager); baseline: its four GROUP BY statements;
- the **forecast** as the boss, with its 12-month back-test and without; baseline: its two reads
  plus the bare numpy simulation (the same runs over the same number of open deals per window,
  without the histories, tallies and posteriors built in Python);
- one rep's **health score** for the last whole month, and the **KPI panel** of the last 30 days;
- **similar won deals** for a customer in 意向, as its rep and as the boss; baseline: the
  document-frequency aggregate, the postings read and the won paths. The index it reads is built
  first on the whole book (`crm.similar.reindex`), timed: part of the feature's cost.

Targets (issue 13): funnel p95 ≤ 200 ms, forecast ≤ 500 ms, similar deals ≤ 100 ms. A slow view
stops after `--min-rounds` once it has used `--view-budget` seconds (the table gives the rounds).
"""


def write_doc(run: Run) -> None:
    """The section's blocks in order, each added once; then this backend's is rewritten."""
    document = DOC_PATH.read_text() if DOC_PATH.exists() else ""
    for block in ("analytics:about", "analytics:sqlite", "analytics:postgres"):
        if f"<!-- {block}:start -->" not in document:
            write_doc_block(block, ABOUT if block == "analytics:about" else "")
    write_doc_block("analytics:about", ABOUT)
    write_doc_block(f"analytics:{run.backend}", markdown(run))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--pg-url",
        default=seed.POSTGRES_URL,
        help="the PostgreSQL bench database (created if missing; *bench* only)",
    )
    parser.add_argument("--rounds", type=int, default=20, help="rounds per view (at most)")
    parser.add_argument(
        "--view-budget",
        type=float,
        default=60,
        help="seconds a view and its baseline may take together before its rounds stop early",
    )
    parser.add_argument("--min-rounds", type=int, default=3, help="rounds even past the budget")
    parser.add_argument(
        "--views",
        default="funnel_company,funnel_team,forecast,forecast_live,health,kpi,similar_rep,"
        "similar_boss",
        help="comma-separated views to measure, in this order",
    )
    parser.add_argument("--customers", type=int, default=seed.SeedPlan.customers)
    parser.add_argument("--follow-ups", type=int, default=seed.SeedPlan.follow_ups)
    parser.add_argument("--reindex", action="store_true", help="rebuild the similar-deals index")
    add_calm_options(parser)
    parser.add_argument("--no-doc", action="store_true", help="print, do not touch the docs")
    args = parser.parse_args()
    apply_niceness(args)
    for backend in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        run = run_backend(backend, args)
        (seed.RESULTS_DIR / f"analytics-{backend}.json").write_text(
            json.dumps(asdict(run), ensure_ascii=False, indent=2, default=str)
        )
        print()
        print(markdown(run))
        if not args.no_doc:
            write_doc(run)
            print(f"wrote {DOC_PATH.relative_to(REPO)}")


if __name__ == "__main__":
    main()
