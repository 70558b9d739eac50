"""The rules-engine benchmark (issue 3) on the customer book's seed: 100k customers.

Per backend, each figure beside its baseline measured in the same run:

* **publish** a changed grading rule set through `crm.rules.publisher.publish` as the boss
  (checks, version row, every customer re-graded, each change audited, commit included), two
  rule sets in turn so every publish changes many grades; beside the **naive baseline**: the
  same rule set applied one customer at a time in Python (load the ORM object, read its facts
  with `grading.subject_of`, `Grading.decide`, set the grade, `audit.record`, flush per
  customer, commit at the end) — on every customer when that fits `--naive-budget`, else on a
  fixed random sample, scaled to the book (and said so);
* a publish whose rule needs the regex operator (`matches`), which no SQL reading has, so the
  re-grade goes through the batched Python path;
* the **preview** of the changed set as the boss (every customer) and as a manager (a team);
* the **timer sweep** with the default pack at the seed's "now": the first sweep on the seeded
  book (a full loop of `SWEEP_LIMIT` batches, committed one by one, as `workers.jobs.run_timers`
  does), then the steady-state sweep right after (nothing left to fire), beside the raw SQL of
  the steady-state sweep's statements (captured with `before_cursor_execute`, replayed).

Every write is undone after each part from a copy saved in the database (`bench_rules_*`
tables): customers' grades, owners and timestamps put back, rows the run added deleted. A run
that was interrupted is undone at the start of the next. On PostgreSQL the written tables are
then compacted (`VACUUM (FULL, ANALYZE)`), so dead row versions do not pile up run after run.
It prints a table per backend and rewrites its section of docs/benchmarks.md; nothing here
asserts on time.

    python -m bench.rules --db sqlite|postgres|both
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, inspect, select, text

from bench import seed
from bench.cpu import (
    CpuWindow,
    add_calm_options,
    apply_niceness,
    postgres_pids,
    with_application_name,
)
from bench.customer_book import (
    DOC_PATH,
    REPO,
    StatementLog,
    machine_facts,
    quiet,
    replay,
    write_doc_block,
)
from crm.actors import Actor
from crm.rules import grading, publisher, timers
from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from models import (
    AuditEntry,
    Customer,
    Database,
    OutboxMessage,
    PoolEvent,
    RuleSetVersion,
    Task,
    TimerFiring,
    User,
)
from models.users import Role

APPLICATION_NAME = "bench_rules"  # PostgreSQL backends of this run, for their CPU
TARGET_PUBLISH_S = 2.0
TARGET_PUBLISH_RATIO = 10.0
TARGET_SWEEP_S = 2.0

DEFAULT_GRADING: dict[str, Any] = DEFAULT_DOCUMENTS["grading"]
# The season's change: expo visitors up to B, anyone who asked for a price C, the rest D.
CHANGED_GRADING: dict[str, Any] = {
    "rules": [
        *DEFAULT_GRADING["rules"],
        {
            "name": "参加过展会",
            "when": {"fact": "attended_expo", "op": "==", "value": True},
            "grade": "B",
        },
        {
            "name": "询过价",
            "when": {"fact": "inquiry_count", "op": ">=", "value": 1},
            "grade": "C",
        },
    ],
    "default": "D",
}
# The same grades, but the expo rule also asks a regex of the name (true of every seeded name):
# `matches` has no SQL reading, so the whole set is evaluated in Python batches.
PYTHON_ONLY_GRADING: dict[str, Any] = copy.deepcopy(CHANGED_GRADING)
PYTHON_ONLY_GRADING["rules"][1]["when"] = {
    "all": [
        {"fact": "attended_expo", "op": "==", "value": True},
        {"fact": "name", "op": "matches", "value": r"^\D"},
    ]
}


@dataclass
class Timed:
    seconds: float
    others_cores: float  # CPU the rest of the machine used meanwhile


@dataclass
class Figures:
    backend: str
    facts: dict[str, str]
    customers: int
    seed_reused: bool
    nice: int
    publishes: list[dict[str, Any]] = field(default_factory=list)  # seconds, changed, document
    python_publishes: list[dict[str, Any]] = field(default_factory=list)
    naive: dict[str, Any] = field(default_factory=dict)
    previews: dict[str, list[float]] = field(default_factory=dict)
    preview_changed: dict[str, int] = field(default_factory=dict)
    preview_scope: dict[str, int] = field(default_factory=dict)
    first_sweep: dict[str, Any] = field(default_factory=dict)
    steady_sweeps: list[float] = field(default_factory=list)
    steady_raw: list[float] = field(default_factory=list)
    vacuumed_sweeps: list[float] = field(default_factory=list)  # PostgreSQL, after VACUUM
    vacuumed_raw: list[float] = field(default_factory=list)
    steady_statements: list[str] = field(default_factory=list)
    others_cores: float = 0.0
    undone: list[str] = field(default_factory=list)

    def noted(self, timed: Timed) -> float:
        self.others_cores = max(self.others_cores, timed.others_cores)
        return timed.seconds

    @property
    def publish_s(self) -> float:
        return statistics.median(p["seconds"] for p in self.publishes)

    @property
    def naive_s(self) -> float:
        """The naive re-grade of every customer (measured, or scaled from the sample)."""
        n = self.naive
        return n["seconds"] * self.customers / n["customers"] if n else float("nan")


# --- one backend, end to end -------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace) -> Figures:
    url = seed.SQLITE_URL if backend == "sqlite" else args.pg_url
    seeded = seed.ensure_seeded(url)
    db = Database(with_application_name(url, APPLICATION_NAME))
    try:
        db.upgrade()  # a cached seed may predate the newest migration
        undo_interrupted(db.engine)
        compact(db.engine)  # whatever earlier runs left behind (this server may not autovacuum)
        with db.session() as session:
            boss = session.scalars(select(User).where(User.role == Role.BOSS)).one()
            manager = session.scalars(
                select(User).where(User.role == Role.MANAGER).order_by(User.id)
            ).first()
            assert manager is not None
            bosses, managers = Actor.of(boss), Actor.of(manager)
        figures = Figures(
            backend=backend,
            facts=machine_facts(db.engine),
            customers=seeded.row_counts["customers"],
            seed_reused=seeded.reused,
            nice=os.getpriority(os.PRIO_PROCESS, 0),
        )
        print(f"\n== {backend}: {figures.customers:,} customers")
        if "publish" in args.parts:
            with writes_undone(db.engine, figures):
                measure_publish(db, bosses, figures, args)
                measure_preview(db, bosses, managers, figures, args)
                measure_python_publish(db, bosses, figures, args)
                measure_naive(db, figures, args)
        if "sweep" in args.parts:
            with writes_undone(db.engine, figures):
                measure_sweeps(db, seeded.anchor, figures, args)
        return figures
    finally:
        db.dispose()


def measured(db: Database, action: Callable[[], Any]) -> tuple[Timed, Any]:
    """Time an action, with the CPU the rest of the machine used meanwhile."""
    tracked = lambda: postgres_pids(db.engine, APPLICATION_NAME)  # noqa: E731
    with CpuWindow(tracked) as window:
        started = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - started
    assert window.use is not None
    return Timed(seconds, window.use.others_cores), result


# --- publish, preview, naive -------------------------------------------------------------------


def publish(db: Database, boss: Actor, document: dict[str, Any]) -> tuple[Timed, Any]:
    """A draft saved beforehand (its own request), then the publish timed, commit included."""
    now = datetime.now(UTC)
    with db.session(lock_for_write=True) as session:
        draft = publisher.create_draft(
            session, actor=boss, kind="grading", document=document, note="bench", now=now
        )
        session.commit()
        draft_id = draft.id

    def act() -> Any:
        with db.session(lock_for_write=True) as session:
            published = publisher.publish(
                session, actor=boss, draft_id=draft_id, reason="基准测试", now=now
            )
            session.commit()
            return published.regraded

    return measured(db, act)


def measure_publish(db: Database, boss: Actor, figures: Figures, args: argparse.Namespace) -> None:
    # The changed set and the default pack in turn; ends on the default pack, the state the
    # preview, the Python path and the naive baseline start from.
    for number in range(2 * args.publish_pairs):
        document, name = (
            (CHANGED_GRADING, "changed") if number % 2 == 0 else (DEFAULT_GRADING, "default")
        )
        quiet(args)
        timed, regraded = publish(db, boss, document)
        assert regraded.evaluated_in == "sql", regraded.evaluated_in
        figures.publishes.append(
            {
                "seconds": figures.noted(timed),
                "changed": regraded.changed,
                "document": name,
                "total": regraded.total,
                "others_cores": timed.others_cores,
            }
        )
        print(
            f"publish #{number + 1} ({name}): {timed.seconds:.3f} s, "
            f"{regraded.changed:,} of {regraded.total:,} re-graded "
            f"(others {timed.others_cores} cores)"
        )


def measure_python_publish(
    db: Database, boss: Actor, figures: Figures, args: argparse.Namespace
) -> None:
    for _ in range(args.python_publishes):
        quiet(args)
        timed, regraded = publish(db, boss, PYTHON_ONLY_GRADING)
        assert regraded.evaluated_in == "python", regraded.evaluated_in
        figures.python_publishes.append(
            {
                "seconds": figures.noted(timed),
                "changed": regraded.changed,
                "others_cores": timed.others_cores,
            }
        )
        print(f"publish, Python path: {timed.seconds:.3f} s, {regraded.changed:,} re-graded")
        publish(db, boss, DEFAULT_GRADING)  # back to the starting state (not a figure)


def measure_preview(
    db: Database, boss: Actor, manager: Actor, figures: Figures, args: argparse.Namespace
) -> None:
    now = datetime.now(UTC)
    for who, actor in (("boss", boss), ("manager", manager)):
        times = figures.previews.setdefault(who, [])
        for _ in range(args.previews):
            quiet(args)
            with db.session() as session:
                timed, preview = measured(
                    db,
                    lambda s=session, a=actor: publisher.preview(
                        s, actor=a, kind="grading", document=CHANGED_GRADING, now=now
                    ),
                )
                session.rollback()
            assert not preview.problems, preview.problems
            times.append(figures.noted(timed))
            figures.preview_changed[who] = preview.changed
            figures.preview_scope[who] = preview.scope_customers
        print(
            f"preview as {who}: median {statistics.median(times):.3f} s "
            f"({figures.preview_changed[who]:,} of {figures.preview_scope[who]:,} would change)"
        )


def naive_regrade(
    db: Database, customer_ids: list[int], document: dict[str, Any], *, commit: bool = True
) -> int:
    """The baseline: one customer at a time through the ORM, as a naive engine would do it."""
    now = datetime.now(UTC)
    changed = 0
    with db.session(lock_for_write=True) as session:
        rules = grading.Grading.of(session, document)
        for customer_id in customer_ids:
            customer = session.get(Customer, customer_id)
            assert customer is not None
            grade, reason = rules.grade(grading.subject_of(session, customer, now))
            changed += grading.apply(
                session, customer=customer, grade=grade, reason=reason, now=now
            )
            session.flush()
        if commit:
            session.commit()
        else:
            session.rollback()
    return changed


def measure_naive(db: Database, figures: Figures, args: argparse.Namespace) -> None:
    """Every customer if the pilot says it fits the budget, else a fixed random sample."""
    with db.session() as session:
        ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
    rng = random.Random(20261126)
    quiet(args)
    pilot = sorted(rng.sample(ids, min(args.naive_pilot, len(ids))))
    # Rolled back, so the measured run starts from the same grades as the publishes.
    timed, _ = measured(db, lambda: naive_regrade(db, pilot, CHANGED_GRADING, commit=False))
    projected = timed.seconds * len(ids) / len(pilot)
    print(
        f"naive pilot: {len(pilot):,} customers in {timed.seconds:.2f} s "
        f"-> {projected:.0f} s projected for all {len(ids):,}"
    )
    if projected <= args.naive_budget:
        chosen, how = ids, "all"
    else:
        chosen, how = sorted(rng.sample(ids, min(args.naive_sample, len(ids)))), "sample"
    quiet(args)
    timed, changed = measured(db, lambda: naive_regrade(db, chosen, CHANGED_GRADING))
    figures.naive = {
        "customers": len(chosen),
        "how": how,
        "seconds": figures.noted(timed),
        "changed": changed,
        "others_cores": timed.others_cores,
        "projected_from_pilot_s": projected,
    }
    print(
        f"naive, one by one ({how}): {len(chosen):,} customers in {timed.seconds:.2f} s, "
        f"{changed:,} changed -> {figures.naive_s:.1f} s for all {figures.customers:,}"
    )


# --- timer sweeps ------------------------------------------------------------------------------


def measure_sweeps(db: Database, now: datetime, figures: Figures, args: argparse.Namespace) -> None:
    quiet(args)
    fired: Counter[str] = Counter()
    batches = 0

    def first_sweep() -> None:
        nonlocal batches
        while True:  # as workers.jobs.run_timers does it: commit batch by batch
            with db.session(lock_for_write=True) as session:
                result = timers.sweep(session, now=now)
                session.commit()
            fired.update(result.fired)
            batches += 1
            if batches % 10 == 0:
                print(f"  first sweep: {sum(fired.values()):,} firings so far")
            if result.total < timers.SWEEP_LIMIT:
                return

    timed, _ = measured(db, first_sweep)
    figures.first_sweep = {
        "seconds": figures.noted(timed),
        "fired": dict(fired),
        "total": sum(fired.values()),
        "batches": batches,
        "others_cores": timed.others_cores,
    }
    print(
        f"first sweep: {timed.seconds:.2f} s, {sum(fired.values()):,} firings in {batches} "
        f"batches ({dict(fired)})"
    )
    log = StatementLog(db.engine)

    def steady(session: Any) -> tuple[timers.Sweep, list[tuple[str, Any]]]:
        with log.capture() as statements:  # the sweep's statements only
            return timers.sweep(session, now=now), list(statements)

    def sweeps(times: list[float]) -> list[tuple[str, Any]]:
        captured: list[tuple[str, Any]] = []
        for number in range(args.sweeps):
            quiet(args)
            with db.session(lock_for_write=True) as session:
                timed, (result, statements) = measured(db, lambda s=session: steady(s))
                session.rollback()
            if result.total:
                raise RuntimeError(f"the steady-state sweep fired {result.total} times")
            times.append(figures.noted(timed))
            if number == 0:
                captured = statements
        return captured

    def replays(captured: list[tuple[str, Any]], times: list[float]) -> None:
        for _ in range(args.sweeps):
            quiet(args)
            timed, _ = measured(db, lambda: replay(db.engine, captured))
            times.append(figures.noted(timed))

    try:
        captured = sweeps(figures.steady_sweeps)
        replays(captured, figures.steady_raw)
        if db.engine.dialect.name == "postgresql":
            # The first sweep left ~50k dead row versions; autovacuum (off on some servers)
            # would clear them soon after, so the steady state is also measured after VACUUM.
            vacuum(db.engine, "VACUUM ANALYZE")
            replays(sweeps(figures.vacuumed_sweeps), figures.vacuumed_raw)
    finally:
        log.close()
    figures.steady_statements = [" ".join(s.split()) for s, _ in captured]
    print(
        f"steady sweep: median {statistics.median(figures.steady_sweeps):.3f} s "
        f"({len(captured)} statements); their raw SQL "
        f"{statistics.median(figures.steady_raw):.3f} s"
        + (
            f"; after VACUUM ANALYZE {statistics.median(figures.vacuumed_sweeps):.3f} s "
            f"(raw SQL {statistics.median(figures.vacuumed_raw):.3f} s)"
            if figures.vacuumed_sweeps
            else ""
        )
    )


# --- writes undone -----------------------------------------------------------------------------

SAVED_CUSTOMERS = "bench_rules_customers"
SAVED_MARKS = "bench_rules_marks"
SAVED_VERSIONS = "bench_rules_versions"
SAVED_COLUMNS = (
    "grade",
    "stage",
    "owner_id",
    "team_id",
    "released_at",
    "release_reason",
    "updated_at",
    "stage_entered_at",
)
ADDED = (AuditEntry, RuleSetVersion, TimerFiring, Task, OutboxMessage, PoolEvent)


@contextmanager
def writes_undone(engine: Engine, figures: Figures) -> Iterator[None]:
    """Save the columns the engine may change (a copy in the database itself, so a run that
    dies is undone by the next) and how far each table's ids went; put all back afterwards."""
    columns = ", ".join(SAVED_COLUMNS)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {SAVED_CUSTOMERS} AS SELECT id, {columns} FROM customers"
        )
        conn.exec_driver_sql(
            f"CREATE TABLE {SAVED_VERSIONS} AS SELECT id, status FROM rule_set_versions"
        )
        conn.exec_driver_sql(f"CREATE TABLE {SAVED_MARKS} (name TEXT, mark INTEGER)")
        for model in ADDED:
            name = model.__tablename__
            conn.exec_driver_sql(
                f"INSERT INTO {SAVED_MARKS} SELECT '{name}', coalesce(max(id), 0) FROM {name}"
            )
    try:
        yield
    finally:
        figures.undone.append(undo_since(engine, figures, drop=True))
        compact(engine)


def vacuum(engine: Engine, command: str) -> None:
    """VACUUM the tables the run writes (PostgreSQL only; outside a transaction)."""
    if engine.dialect.name != "postgresql":
        return
    tables = ", ".join(["customers", *(model.__tablename__ for model in ADDED)])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"{command} {tables}")


def compact(engine: Engine) -> None:
    """Rewrite the written tables without the dead row versions the undone writes left, as
    the seed left them (VACUUM FULL ANALYZE): on a server without autovacuum they would pile
    up run after run and slow every scan of `customers`."""
    started = time.perf_counter()
    vacuum(engine, "VACUUM (FULL, ANALYZE)")
    if engine.dialect.name == "postgresql":
        print(f"(compacted in {time.perf_counter() - started:.1f} s)")


def undo_since(engine: Engine, figures: Figures | None = None, *, drop: bool = False) -> str:
    """Put the saved copy back and delete the rows added since; `drop` the copy afterwards."""
    started = time.perf_counter()
    with engine.begin() as conn:
        marks = dict(conn.execute(text(f"SELECT name, mark FROM {SAVED_MARKS}")).all())
        deleted = {
            name: conn.execute(
                text(f"DELETE FROM {name} WHERE id > :mark"), {"mark": mark}
            ).rowcount
            for name, mark in marks.items()
        }
        differs = " OR ".join(f"customers.{c} IS DISTINCT FROM s.{c}" for c in SAVED_COLUMNS)
        restored = conn.exec_driver_sql(
            f"UPDATE customers SET {', '.join(f'{c} = s.{c}' for c in SAVED_COLUMNS)} "
            f"FROM {SAVED_CUSTOMERS} AS s WHERE customers.id = s.id AND ({differs})"
        ).rowcount
        conn.exec_driver_sql(
            f"UPDATE rule_set_versions SET status = s.status FROM {SAVED_VERSIONS} AS s "
            "WHERE rule_set_versions.id = s.id AND rule_set_versions.status <> s.status"
        )
        if drop:
            for table in (SAVED_CUSTOMERS, SAVED_VERSIONS, SAVED_MARKS):
                conn.exec_driver_sql(f"DROP TABLE {table}")
    added = ", ".join(f"{n:,} {name}" for name, n in deleted.items() if n)
    line = f"undone in {time.perf_counter() - started:.1f} s: {restored:,} customers restored" + (
        f"; deleted {added}" if added else ""
    )
    print(f"({line})")
    return line


def undo_interrupted(engine: Engine) -> None:
    """A run that died mid-way left its saved copy: put the book back before measuring."""
    if inspect(engine).has_table(SAVED_MARKS):
        print("an interrupted run left its writes; undoing them first")
        undo_since(engine, drop=True)


# --- the report --------------------------------------------------------------------------------


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def publish_verdict(f: Figures) -> str:
    """Judged on the median; a slower publish (the one re-grading most) is named, not hidden."""
    verdict = met(f.publish_s <= TARGET_PUBLISH_S)
    slowest = max(f.publishes, key=lambda p: p["seconds"])
    if f.publish_s <= TARGET_PUBLISH_S < slowest["seconds"]:
        verdict += (
            f" by the median, **missed** by the slowest ({slowest['seconds']:.2f} s, "
            f"{slowest['changed']:,} re-graded)"
        )
    return verdict


def markdown(f: Figures) -> str:
    title = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[f.backend]
    median = statistics.median
    facts = f.facts
    lines = [
        f"### {title}",
        "",
        f"Measured {facts['date']} on {facts['cpu']}, {facts['memory']} RAM; Python "
        f"{facts['python']}, {facts['database']}, {facts['libraries']}; code at "
        f"{facts['code']}. {f.customers:,} customers (the customer book's seed"
        + (", cached" if f.seed_reused else "")
        + f"), run at nice {f.nice}.",
        "",
        "| figure | wecrm | baseline (same run) | baseline ÷ wecrm | target |",
        "|---|---:|---:|---:|:---:|",
    ]
    python_s = median(p["seconds"] for p in f.python_publishes) if f.python_publishes else None
    naive_s = f.naive_s
    if f.publishes:
        publish_s, naive = f.publish_s, f.naive
        ratio = naive_s / publish_s
        changed = [p["changed"] for p in f.publishes]
        naive_note = (
            f"measured on all {naive['customers']:,} customers"
            if naive["how"] == "all"
            else f"measured on a fixed random sample of {naive['customers']:,} customers "
            f"({naive['seconds']:.1f} s), scaled to {f.customers:,}"
        )
        lines.append(
            f"| publish a changed grading set: checks, version, re-grade, audit, commit "
            f"({min(changed):,}–{max(changed):,} customers re-graded; median / max of "
            f"{len(f.publishes)}) | {publish_s:.2f} / "
            f"{max(p['seconds'] for p in f.publishes):.2f} s "
            f"| naive, one customer at a time in Python: {naive_s:.1f} s ({naive_note}; "
            f"{naive['changed']:,} changed) | {ratio:.0f}× "
            f"| ≤ {TARGET_PUBLISH_S:g} s: {publish_verdict(f)}; "
            f"≥ {TARGET_PUBLISH_RATIO:g}×: {met(ratio >= TARGET_PUBLISH_RATIO)} |"
        )
    if python_s is not None:
        lines.append(
            f"| publish, a `matches` rule: the Python batch path "
            f"({f.python_publishes[0]['changed']:,} re-graded; median of "
            f"{len(f.python_publishes)}) | {python_s:.2f} s | naive: {naive_s:.1f} s "
            f"| {naive_s / python_s:.0f}× | — |"
        )
    for who, label in (("boss", "the boss (every customer)"), ("manager", "a manager (a team)")):
        if f.previews.get(who):
            lines.append(
                f"| preview of the changed set as {label}: {f.preview_changed[who]:,} of "
                f"{f.preview_scope[who]:,} would change (median of {len(f.previews[who])}) "
                f"| {median(f.previews[who]):.2f} s | — | — | — |"
            )
    if f.first_sweep:
        s = f.first_sweep
        kinds = ", ".join(f"{n:,} × {rule}" for rule, n in s["fired"].items())
        lines.append(
            f"| first timer sweep on the seeded book, default pack, full loop of "
            f"{timers.SWEEP_LIMIT:,}-firing batches ({s['batches']} batches, committed one by "
            f"one): {s['total']:,} firings ({kinds}) | {s['seconds']:.1f} s | — | — | — |"
        )
    if f.steady_sweeps:
        sweep, raw = median(f.steady_sweeps), median(f.steady_raw)
        lines.append(
            f"| timer sweep, steady state: nothing left to fire ({len(f.steady_statements)} "
            f"statements; median of {len(f.steady_sweeps)}) | {sweep:.3f} s | raw SQL of the "
            f"same statements: {raw:.3f} s | {raw / sweep:.2f}× "
            f"| ≤ {TARGET_SWEEP_S:g} s: {met(sweep <= TARGET_SWEEP_S)} |"
        )
    if f.vacuumed_sweeps:
        vacuumed, raw = median(f.vacuumed_sweeps), median(f.vacuumed_raw)
        lines.append(
            f"| timer sweep, steady state after `VACUUM ANALYZE` (the dead row versions of the "
            f"first sweep cleared, as autovacuum would; median of {len(f.vacuumed_sweeps)}) "
            f"| {vacuumed:.3f} s | raw SQL of the same statements: {raw:.3f} s "
            f"| {raw / vacuumed:.2f}× "
            f"| ≤ {TARGET_SWEEP_S:g} s: {met(vacuumed <= TARGET_SWEEP_S)} |"
        )
    lines += [
        "",
        f"Other processes on the machine used up to {f.others_cores:.1f} of its "
        f"{os.cpu_count()} cores while these figures were taken. Writes undone after each part "
        f"({'; '.join(f.undone)}).",
    ]
    if f.steady_statements:
        lines += ["", "Statements of the steady-state sweep:", ""]
        lines += [f"{n}. `{_shorten(s)}`" for n, s in enumerate(f.steady_statements, 1)]
    return "\n".join(lines) + "\n"


def _shorten(statement: str, limit: int = 400) -> str:
    return statement if len(statement) <= limit else statement[: limit - 1] + "…"


ABOUT = """## Rules engine

`python -m bench.rules --db both` (see `bench/README.md`) measures the rules engine on the
customer book's seed (100,000 customers, reused from `bench/seed.py`), each figure beside its
baseline from the same run:

- **publish**: `crm.rules.publisher.publish` of a grading rule set as the boss, timed from the
  publish call to the commit (checks, version row, every customer re-graded in one `INSERT …
  SELECT` of audit rows and one `UPDATE`). Two sets in turn, so each publish changes many
  grades: the default pack (询价≥3且有明确预算 → A, else C) and the same plus 参加过展会 → B
  and 累计询价 ≥ 1 → C, else D. Baseline: the **naive** engine, the changed set applied one
  customer at a time in Python (load the ORM object, `grading.subject_of`, `Grading.decide`,
  set the grade, `audit.record`, flush, commit at the end), from the same starting grades.
- **publish, Python path**: the changed set with a `matches` (regex) condition, which has no SQL
  reading, so the re-grade reads customers in batches and decides in Python.
- **preview** of the changed set as the boss and as a manager.
- **timer sweep** (`crm.rules.timers.sweep`, default timers pack, at the seed's "now"): the first
  sweep on the seeded book (everything overdue is reminded or released), then the steady-state
  sweep, beside the raw SQL of its statements replayed on the same engine; on PostgreSQL also
  after `VACUUM ANALYZE` (the server here runs without autovacuum, and the first sweep leaves
  ~50,000 dead row versions in `customers`).

Targets (issue 3): publish ≤ 2 s (judged on the median; the slowest is named when it misses)
and ≥ 10× the naive baseline; steady-state sweep ≤ 2 s. Every write is undone afterwards (and,
on PostgreSQL, the tables compacted with `VACUUM FULL`), so reruns measure the same book.
"""


def write_doc(figures: Figures) -> None:
    document = DOC_PATH.read_text() if DOC_PATH.exists() else ""
    # The section's blocks in this order, each added once; then this backend's is rewritten.
    for block in ("bench_rules:about", "bench_rules:sqlite", "bench_rules:postgres"):
        if f"<!-- {block}:start -->" not in document:
            write_doc_block(block, ABOUT if block == "bench_rules:about" else "")
    write_doc_block("bench_rules:about", ABOUT)
    write_doc_block(f"bench_rules:{figures.backend}", markdown(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--pg-url",
        default=seed.POSTGRES_URL,
        help="the PostgreSQL bench database (created if missing; *bench* only)",
    )
    parser.add_argument(
        "--parts",
        default="publish,sweep",
        help="comma-separated: publish (with preview and naive), sweep",
    )
    parser.add_argument(
        "--publish-pairs",
        type=int,
        default=3,
        help="publishes of the changed set and back to the default pack",
    )
    parser.add_argument("--python-publishes", type=int, default=2)
    parser.add_argument("--previews", type=int, default=3, help="per actor")
    parser.add_argument("--sweeps", type=int, default=5, help="steady-state sweeps (and replays)")
    parser.add_argument(
        "--naive-pilot",
        type=int,
        default=1000,
        help="customers the naive baseline is first timed on, to project it",
    )
    parser.add_argument(
        "--naive-budget",
        type=float,
        default=180,
        help="seconds: run the naive baseline on every customer if projected "
        "to fit, else on --naive-sample customers and scale",
    )
    parser.add_argument("--naive-sample", type=int, default=10_000)
    add_calm_options(parser)
    parser.add_argument("--no-doc", action="store_true", help="print, do not touch the docs")
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: rewrite the docs from bench/results/rules-<db>.json",
    )
    args = parser.parse_args()
    args.parts = set(args.parts.split(","))
    apply_niceness(args)  # children (gunicorn, wrk) inherit it
    for backend in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        results = seed.RESULTS_DIR / f"rules-{backend}.json"
        if args.render:
            figures = Figures(**json.loads(results.read_text()))
        else:
            figures = run_backend(backend, args)
            results.write_text(
                json.dumps(asdict(figures), ensure_ascii=False, indent=2, default=str)
            )
        print()
        print(markdown(figures))
        if not args.no_doc and "publish" in args.parts and "sweep" in args.parts:
            write_doc(figures)
            print(f"wrote {DOC_PATH.relative_to(REPO)}")


if __name__ == "__main__":
    main()
