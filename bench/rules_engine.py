"""The rules engine on the benchmark book (100k customers): publish, preview and timer sweeps.

    python -m bench.rules_engine --db sqlite|postgres|both

- **publish**: `crm.rules.rulesets.publish` of a changed grading rule set as the boss — checks,
  version row, every customer re-graded and each change audited, commit included — beside the
  **naive baseline**: the same rules applied one customer at a time (load the ORM object, read
  its facts, decide, set the grade, write the audit entry, flush), timed on a random sample and
  scaled to the whole book; and a publish whose regex rule forces the Python batch path.
- **preview** of the same change as the boss (every customer) and as a manager (one team).
- **timer sweep** with the default pack: the first sweep on the seeded book (it reminds and
  releases whatever is overdue, in `SWEEP_LIMIT` batches committed one by one, as the job does),
  then the steady-state sweep (nothing left to do: the figure the 2 s target is about) beside the
  raw SQL of its statements replayed on the same engine.

Every write is undone afterwards (grades, owners, timestamps restored; added rows deleted), so
reruns measure the same book. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, event, func, select, update

from bench import seed
from bench.cpu import wait_for_quiet
from bench.customer_book import DOC_PATH, DOC_TEMPLATE, machine_facts
from crm.actors import Actor
from crm.rules import grading, rulesets, timers
from crm.rules.defaults import DEFAULT_DOCUMENTS
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

# The season's change of the seed: expo visitors up to B, one inquiry at least C, others D.
CHANGED_GRADING: dict[str, Any] = {
    "rules": [
        *DEFAULT_DOCUMENTS["grading"]["rules"],
        {
            "name": "参加过展会",
            "when": {"fact": "attended_expo", "op": "==", "value": True},
            "grade": "B",
        },
        {"name": "询过价", "when": {"fact": "inquiry_count", "op": ">=", "value": 1}, "grade": "C"},
    ],
    "default": "D",
}
PYTHON_ONLY_GRADING: dict[str, Any] = copy.deepcopy(CHANGED_GRADING)
PYTHON_ONLY_GRADING["rules"][1]["when"] = {
    "all": [
        {"fact": "attended_expo", "op": "==", "value": True},
        {"fact": "name", "op": "matches", "value": "^[^0-9]"},  # no SQL reading: Python batches
    ]
}


@dataclass
class Figures:
    backend: str
    facts: dict[str, str]
    customers: int
    publish_s: list[float] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    python_publish_s: float = 0.0
    naive_sample: int = 0
    naive_sample_s: float = 0.0
    preview_boss_s: float = 0.0
    preview_manager_s: float = 0.0
    preview_changed: int = 0
    first_sweep_s: float = 0.0
    first_sweep_fired: int = 0
    steady_sweep_s: list[float] = field(default_factory=list)
    steady_raw_s: list[float] = field(default_factory=list)
    steady_statements: int = 0
    others_cores: float = 0.0

    @property
    def naive_s(self) -> float:
        return self.naive_sample_s * self.customers / max(self.naive_sample, 1)


def run_backend(backend: str, args: argparse.Namespace) -> Figures:
    url = seed.SQLITE_URL if backend == "sqlite" else args.pg_url
    seeded = seed.ensure_seeded(url)
    db = Database(url)
    db.upgrade()  # a cached seed may predate the newest migration
    with db.session() as session:
        boss = session.scalars(select(User).where(User.role == Role.BOSS)).one()
        manager = session.scalars(select(User).where(User.role == Role.MANAGER)).first()
        customers = session.scalar(select(func.count()).select_from(Customer)) or 0
    figures = Figures(backend, machine_facts(db.engine), customers)
    print(f"\n== {backend}: {customers:,} customers")
    with writes_undone(db):
        measure_publish(db, Actor.of(boss), Actor.of(manager), figures, args)
    with writes_undone(db):
        measure_sweeps(db, seeded.anchor, figures, args)
    db.dispose()
    return figures


def measure_publish(
    db: Database, boss: Actor, manager: Actor, figures: Figures, args: argparse.Namespace
) -> None:
    documents = [CHANGED_GRADING, DEFAULT_DOCUMENTS["grading"]]
    # An even count ends on the default pack, which the preview and the Python path start from.
    for number in range(2 * args.publishes):
        figures.others_cores = max(figures.others_cores, quiet(args))
        seconds, published = timed(lambda n=number: _publish(db, boss, documents[n % 2]))
        figures.publish_s.append(seconds)
        figures.changed.append(published.regraded.changed)
        print(f"publish #{number + 1}: {seconds:.3f} s, {published.regraded.changed:,} re-graded")
    measure_preview(db, boss, manager, figures, args)
    quiet(args)
    figures.python_publish_s, published = timed(lambda: _publish(db, boss, PYTHON_ONLY_GRADING))
    print(
        f"publish, Python path: {figures.python_publish_s:.3f} s "
        f"({published.regraded.evaluated_in}, {published.regraded.changed:,} re-graded)"
    )
    quiet(args)
    figures.naive_sample = min(args.naive_sample, figures.customers)
    figures.naive_sample_s = naive_regrade(db, figures.naive_sample)
    print(
        f"naive, {figures.naive_sample:,} customers one by one: {figures.naive_sample_s:.3f} s "
        f"-> {figures.naive_s:.1f} s for all {figures.customers:,}"
    )


def _publish(db: Database, boss: Actor, document: dict[str, Any]) -> rulesets.Published:
    now = datetime.now().astimezone()
    with db.session(lock_for_write=True) as session:
        draft = rulesets.create_draft(
            session, actor=boss, kind="grading", document=document, note="bench", now=now
        )
        published = rulesets.publish(
            session, actor=boss, draft_id=draft.id, reason="bench", now=now
        )
        session.commit()
    return published


def naive_regrade(db: Database, sample: int) -> float:
    """The baseline: one customer at a time through the ORM, as a naive engine would."""
    now = datetime.now().astimezone()
    with db.session() as session:
        ids = session.scalars(select(Customer.id)).all()
        chosen = random.Random(7).sample(list(ids), sample)
        rules = grading.Grading.of(session, CHANGED_GRADING, 1)
        started = time.perf_counter()
        for customer_id in chosen:
            customer = session.get(Customer, customer_id)
            assert customer is not None
            grade, reason = rules.grade(grading.subject_of(session, customer, now))
            grading.apply(session, customer=customer, grade=grade, reason=reason, now=now)
            session.flush()
        seconds = time.perf_counter() - started
        session.rollback()  # the commit is left out: that only flatters the baseline
    return seconds


def measure_preview(
    db: Database, boss: Actor, manager: Actor, figures: Figures, args: argparse.Namespace
) -> None:
    now = datetime.now().astimezone()
    for actor, attribute in ((boss, "preview_boss_s"), (manager, "preview_manager_s")):
        quiet(args)
        with db.session() as session:
            seconds, preview = timed(
                lambda a=actor, s=session: rulesets.preview(
                    s, actor=a, kind="grading", document=CHANGED_GRADING, now=now
                )
            )
        setattr(figures, attribute, seconds)
        if actor is boss:
            figures.preview_changed = preview.changed
        print(
            f"preview as {actor.role}: {seconds:.3f} s ({preview.changed:,} would change "
            f"of {preview.scope_customers:,})"
        )


def measure_sweeps(db: Database, now: datetime, figures: Figures, args: argparse.Namespace) -> None:
    quiet(args)
    started = time.perf_counter()
    while True:  # as workers.jobs.run_timers does it
        with db.session(lock_for_write=True) as session:
            fired = timers.sweep(session, now=now).total
            session.commit()
        figures.first_sweep_fired += fired
        if fired < timers.SWEEP_LIMIT:
            break
    figures.first_sweep_s = time.perf_counter() - started
    print(f"first sweep: {figures.first_sweep_s:.3f} s, {figures.first_sweep_fired:,} firings")
    for _ in range(args.sweeps):
        quiet(args)
        with db.session(lock_for_write=True) as session, captured(db.engine) as statements:
            seconds, result = timed(lambda s=session: timers.sweep(s, now=now))
            session.rollback()
        assert result.total == 0, "the steady-state sweep should find nothing to do"
        figures.steady_sweep_s.append(seconds)
        figures.steady_statements = len(statements)
        figures.steady_raw_s.append(replay(db.engine, statements))
    print(
        f"steady sweep: {statistics.median(figures.steady_sweep_s):.3f} s "
        f"({figures.steady_statements} statements; raw SQL "
        f"{statistics.median(figures.steady_raw_s):.3f} s)"
    )


# --- plumbing ----------------------------------------------------------------------------------


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def quiet(args: argparse.Namespace) -> float:
    return wait_for_quiet(max_cores=args.quiet_cores, timeout_seconds=args.quiet_wait)


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if statement not in ("BEGIN", "BEGIN IMMEDIATE"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def replay(engine: Engine, statements: list[tuple[str, Any]]) -> float:
    """The same statements straight through the DBAPI cursor, in one transaction."""
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        started = time.perf_counter()
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            if cursor.description:
                cursor.fetchall()
        seconds = time.perf_counter() - started
        conn.rollback()
    return seconds


SNAPSHOT = (
    "owner_id",
    "team_id",
    "grade",
    "stage",
    "released_at",
    "release_reason",
    "updated_at",
    "stage_entered_at",
)
ADDED = (AuditEntry, RuleSetVersion, TimerFiring, Task, OutboxMessage, PoolEvent)


@contextmanager
def writes_undone(db: Database) -> Iterator[None]:
    """Put back every customer column the engine may change and delete every row it adds."""
    columns = [getattr(Customer, name) for name in SNAPSHOT]
    with db.session() as session:
        before = {row[0]: tuple(row[1:]) for row in session.execute(select(Customer.id, *columns))}
        marks = {m: session.scalar(select(func.coalesce(func.max(m.id), 0))) for m in ADDED}
    try:
        yield
    finally:
        with db.session(lock_for_write=True) as session:
            for model, mark in marks.items():
                session.execute(delete(model).where(model.id > mark))
            after = session.execute(select(Customer.id, *columns))
            changed = [
                {"id": row[0], **dict(zip(SNAPSHOT, before[row[0]], strict=True))}
                for row in after
                if tuple(row[1:]) != before[row[0]]
            ]
            if changed:
                session.execute(update(Customer), changed)
            session.commit()
        print(f"(undone: {len(changed):,} customers restored)")


def markdown(f: Figures) -> str:
    median = statistics.median
    publish, naive = median(f.publish_s), f.naive_s
    sweep = median(f.steady_sweep_s)

    def met(ok: bool) -> str:
        return "met" if ok else "**missed**"

    return "\n".join(
        [
            f"### {'SQLite' if f.backend == 'sqlite' else 'PostgreSQL'}",
            "",
            f"Measured {f.facts['date']} on {f.facts['cpu']}, {f.facts['memory']} RAM; Python "
            f"{f.facts['python']}, {f.facts['database']}, {f.facts['libraries']}; code at "
            f"{f.facts['code']}. {f.customers:,} customers (the customer book's seed). Other "
            f"processes used up to {f.others_cores} cores meanwhile.",
            "",
            "| operation | wecrm | baseline | ratio | target |",
            "|---|---:|---:|---:|:---:|",
            f"| publish a changed grading set ({median(f.changed):,.0f} of {f.customers:,} "
            f"re-graded, median of {len(f.publish_s)}) | {publish:.2f} s | "
            f"naive, one by one: {naive:.1f} s (measured on {f.naive_sample:,}, scaled) | "
            f"{naive / publish:.0f}× | "
            f"≤ 2 s and ≥ 10×: {met(publish <= 2 and naive / publish >= 10)} |",
            f"| publish, a regex rule (Python batches) | {f.python_publish_s:.2f} s | "
            f"naive: {naive:.1f} s | {naive / f.python_publish_s:.0f}× | — |",
            f"| preview, boss (all customers; {f.preview_changed:,} would change) | "
            f"{f.preview_boss_s:.2f} s | — | — | — |",
            f"| preview, a manager (one team) | {f.preview_manager_s:.2f} s | — | — | — |",
            f"| first timer sweep on the seeded book ({f.first_sweep_fired:,} reminders and "
            f"releases) | {f.first_sweep_s:.2f} s | — | — | — |",
            f"| timer sweep, steady state ({f.steady_statements} statements, median of "
            f"{len(f.steady_sweep_s)}) | {sweep:.3f} s | raw SQL of the same statements: "
            f"{median(f.steady_raw_s):.3f} s | {sweep / max(median(f.steady_raw_s), 1e-9):.1f}× | "
            f"≤ 2 s: {met(sweep <= 2)} |",
            "",
        ]
    )


def write_doc(figures: Figures) -> None:
    document = DOC_PATH.read_text() if DOC_PATH.exists() else DOC_TEMPLATE
    start, end = f"<!-- rules:{figures.backend}:start -->", f"<!-- rules:{figures.backend}:end -->"
    if start not in document:
        document = document.rstrip("\n") + f"\n\n{start}\n{end}\n"
    head, rest = document.split(start, 1)
    _, tail = rest.split(end, 1)
    DOC_PATH.write_text(f"{head}{start}\n{markdown(figures)}{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--pg-url", default=seed.POSTGRES_URL)
    parser.add_argument("--publishes", type=int, default=3, help="round trips: changed, back")
    parser.add_argument("--sweeps", type=int, default=5)
    parser.add_argument("--naive-sample", type=int, default=5000)
    parser.add_argument("--quiet-cores", type=float, default=0.3)
    parser.add_argument("--quiet-wait", type=float, default=20)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    for backend in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        figures = run_backend(backend, args)
        print(markdown(figures))
        if not args.no_doc:
            write_doc(figures)


if __name__ == "__main__":
    main()
