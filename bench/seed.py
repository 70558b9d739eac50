"""The benchmarks' customer book, seeded fast: 100k customers and 1M follow-ups for 50 reps.

What goes in is planned by `synthetic.book` (the shape: five teams of ten reps, a skewed funnel)
and turned into rows by `synthetic.rows`, the planner the demo uses too; this module loads them.
PostgreSQL rows go in with COPY (psycopg); SQLite rows with SQLAlchemy Core `insert()`
executemany in big batches inside one transaction. The schema comes from Alembic
(`Database.upgrade`). Seeding is the slow part, so a marker table remembers the plan that was
seeded, and a rerun that finds the same plan and the same row counts skips it.

    python -m bench.seed --db sqlite|postgres [--reseed]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Engine, Table, create_engine, insert, inspect, make_url, text

from models import Base, Database
from synthetic.book import CUSTOMERS_PER_CHUNK, BookShape, book_org, plan_book
from synthetic.plans import Org
from synthetic.rows import HISTORY_TABLES, customer_row, history_rows, people_rows, plan_ids

SEED_VERSION = 2  # bump when the generated shape changes, so cached databases are rebuilt
MARKER_TABLE = "bench_seed"
RESULTS_DIR = Path(__file__).parent / "results"
SQLITE_PATH = RESULTS_DIR / "customer_book.sqlite3"
SQLITE_URL = f"sqlite:///{SQLITE_PATH}"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/wecrm_bench"
# The book carries no audit trail (nothing the benchmarks read), so that table stays empty.
LOAD_ORDER = tuple(name for name in ("customers", *HISTORY_TABLES) if name != "audit_entries")
TABLES_IN_LOAD_ORDER: tuple[Table, ...] = tuple(Base.metadata.tables[n] for n in LOAD_ORDER)


@dataclass(frozen=True)
class SeedPlan:
    """What to seed; a database seeded with the same plan is reused."""

    customers: int = 100_000
    follow_ups: int = 1_000_000
    teams: int = 5
    reps_per_team: int = 10
    random_seed: int = 20261126
    version: int = SEED_VERSION

    @property
    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def reps(self) -> int:
        return self.teams * self.reps_per_team

    @property
    def shape(self) -> BookShape:
        return BookShape(
            customers=self.customers,
            follow_ups=self.follow_ups,
            teams=self.teams,
            reps_per_team=self.reps_per_team,
            random_seed=self.random_seed,
        )


@dataclass
class SeedResult:
    url: str
    plan: SeedPlan
    anchor: datetime  # the "now" the rows were generated around
    seconds: float  # how long the seeding took (when it ran)
    reused: bool
    row_counts: dict[str, int] = field(default_factory=dict)


# --- entry points ------------------------------------------------------------------------------


def ensure_seeded(
    url: str, plan: SeedPlan | None = None, *, reseed: bool = False, log: Any = print
) -> SeedResult:
    """Seed `url` with `plan` unless it already holds exactly that (the marker and the counts)."""
    plan = plan or SeedPlan()
    if url.startswith("postgresql"):
        ensure_postgres_database(url)
    db = Database(url)
    try:
        marker = _read_marker(db.engine)
        if not reseed and marker is not None and marker["plan"] == plan.key:
            counts = row_counts(db.engine)
            if counts["customers"] == plan.customers and counts["follow_ups"] == plan.follow_ups:
                log(
                    f"seed: reusing {_describe(url)} ({counts['customers']:,} customers, "
                    f"{counts['follow_ups']:,} follow-ups, seeded in {marker['seconds']:.0f} s)"
                )
                return SeedResult(
                    url,
                    plan,
                    datetime.fromisoformat(marker["anchor"]),
                    marker["seconds"],
                    reused=True,
                    row_counts=counts,
                )
            log(f"seed: {_describe(url)} holds {counts}, not the plan; reseeding")
    finally:
        db.dispose()
    return seed(url, plan, log=log)


def seed(url: str, plan: SeedPlan, *, log: Any = print) -> SeedResult:
    """Wipe the bench database, build the schema with Alembic and load the plan's rows."""
    _reset(url)
    db = Database(url)
    try:
        started = time.perf_counter()
        db.upgrade()
        anchor = datetime.now(UTC).replace(microsecond=0)
        if db.is_sqlite:
            _load_sqlite(db.engine, plan, anchor, log)
        else:
            _load_postgres(db.engine, plan, anchor, log)
        seconds = time.perf_counter() - started
        _write_marker(db.engine, plan, anchor, seconds)
        counts = row_counts(db.engine)
        log(
            f"seed: {_describe(url)} seeded in {seconds:.1f} s: "
            + ", ".join(f"{v:,} {k}" for k, v in counts.items())
        )
        return SeedResult(url, plan, anchor, seconds, reused=False, row_counts=counts)
    finally:
        db.dispose()


def ensure_postgres_database(url: str) -> None:
    """Create the bench database beside the server's others (never touching them)."""
    target = make_url(url)
    name = target.database or ""
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()


def row_counts(engine: Engine) -> dict[str, int]:
    names = (
        "users",
        "customers",
        "customer_tags",
        "follow_ups",
        "attachments",
        "stage_changes",
        "tasks",
    )
    with engine.connect() as conn:
        return {n: conn.scalar(text(f"SELECT count(*) FROM {n}")) or 0 for n in names}


# --- the loaders -------------------------------------------------------------------------------


def _load_sqlite(engine: Engine, plan: SeedPlan, anchor: datetime, log: Any) -> None:
    with engine.begin() as conn:
        org = book_org(plan.shape)
        _insert_people(conn, org, anchor)
        for number, chunk in enumerate(_chunks(org, plan, anchor), start=1):
            for table in TABLES_IN_LOAD_ORDER:
                rows = chunk[table.name]
                if rows:
                    conn.execute(insert(table), rows)
            _progress(log, number, plan)


def _load_postgres(engine: Engine, plan: SeedPlan, anchor: datetime, log: Any) -> None:
    from psycopg.types.json import Jsonb

    with engine.begin() as conn:
        org = book_org(plan.shape)
        _insert_people(conn, org, anchor)
        raw = conn.connection.driver_connection  # the psycopg connection, same transaction
        assert raw is not None
        raw.execute("SET LOCAL synchronous_commit = off")
        json_columns = {
            t.name: {c.name for c in t.columns if isinstance(c.type, JSON)}
            for t in TABLES_IN_LOAD_ORDER
        }
        with raw.cursor() as cursor:
            for number, chunk in enumerate(_chunks(org, plan, anchor), start=1):
                for table in TABLES_IN_LOAD_ORDER:
                    rows = chunk[table.name]
                    if not rows:
                        continue
                    columns = list(rows[0])
                    wrap = [c in json_columns[table.name] for c in columns]
                    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
                    with cursor.copy(statement) as copy:
                        for row in rows:
                            copy.write_row(
                                [
                                    Jsonb(v) if w else v
                                    for v, w in zip(row.values(), wrap, strict=True)
                                ]
                            )
                _progress(log, number, plan)
        # Ids were given explicitly, so move each serial past them for the rows the app adds.
        for name in ("teams", "users", "custom_fields", *(t.name for t in TABLES_IN_LOAD_ORDER)):
            if "id" in Base.metadata.tables[name].c:
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {name}), 0) + 1, false)"
                    )
                )
    # Autovacuum would get there; the benchmark measures the steady state, with statistics.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def _progress(log: Any, number: int, plan: SeedPlan) -> None:
    done = min(number * CUSTOMERS_PER_CHUNK, plan.customers)
    if number % 4 == 0 or done == plan.customers:
        log(f"seed: {done:,}/{plan.customers:,} customers")


def _insert_people(conn: Any, org: Org, anchor: datetime) -> None:
    """Teams, people and the custom fields (small: Core inserts everywhere)."""
    tables = Base.metadata.tables
    for name, rows in people_rows(org).items():
        conn.execute(insert(tables[name]), rows)
    conn.execute(
        insert(tables["custom_fields"]),
        [
            {
                "id": number,
                "key": f.key,
                "label": f.label,
                "kind": f.kind,
                "options": list(f.options),
                "is_required": f.is_required,
                "is_tag_dimension": f.is_tag_dimension,
                "is_active": True,
                "created_at": anchor - timedelta(days=400),
            }
            for number, f in enumerate(org.fields, start=1)
        ],
    )


def _chunks(
    org: Org, plan: SeedPlan, anchor: datetime
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """The book's rows, a chunk of customers at a time, every id explicit (COPY needs them)."""
    ids = plan_ids(org)
    counters = {
        name: itertools.count(1) for name in LOAD_ORDER if "id" in Base.metadata.tables[name].c
    }
    for customers in plan_book(plan.shape, org, now=anchor):
        chunk: dict[str, list[dict[str, Any]]] = {name: [] for name in LOAD_ORDER}
        for customer in customers:
            row = customer_row(customer, ids=ids, required_keys=org.required_field_keys)
            customer_id = next(counters["customers"])
            chunk["customers"].append({"id": customer_id, **row})
            history = history_rows(customer, customer_id, ids=ids, now=anchor, counters=counters)
            for name in LOAD_ORDER[1:]:
                chunk[name] += history[name]
        yield chunk


# --- the marker and the reset ------------------------------------------------------------------


def _read_marker(engine: Engine) -> dict[str, Any] | None:
    if not inspect(engine).has_table(MARKER_TABLE):
        return None
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT plan, anchor, seconds FROM {MARKER_TABLE}")).first()
    return dict(row._mapping) if row else None


def _write_marker(engine: Engine, plan: SeedPlan, anchor: datetime, seconds: float) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} "
            "(plan TEXT NOT NULL, anchor TEXT NOT NULL, seconds REAL NOT NULL)"
        )
        conn.execute(text(f"DELETE FROM {MARKER_TABLE}"))
        conn.execute(
            text(f"INSERT INTO {MARKER_TABLE} VALUES (:plan, :anchor, :seconds)"),
            {"plan": plan.key, "anchor": anchor.isoformat(), "seconds": seconds},
        )


def _reset(url: str) -> None:
    """An empty bench database; refuses any PostgreSQL database not named for benchmarks."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return
    if "bench" not in (parsed.database or ""):
        raise SystemExit(f"refusing to wipe {parsed.database!r}: only a *bench* database is seeded")
    engine = create_engine(parsed)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


def _describe(url: str) -> str:
    parsed = make_url(url)
    return (
        str(parsed.database)
        if parsed.get_backend_name() == "sqlite"
        else f"PostgreSQL database {parsed.database}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--url", help="database URL (default: the bench database of --db)")
    parser.add_argument("--customers", type=int, default=SeedPlan.customers)
    parser.add_argument("--follow-ups", type=int, default=SeedPlan.follow_ups)
    parser.add_argument("--reseed", action="store_true", help="seed even if the marker matches")
    args = parser.parse_args()
    url = args.url or (SQLITE_URL if args.db == "sqlite" else POSTGRES_URL)
    ensure_seeded(
        url, SeedPlan(customers=args.customers, follow_ups=args.follow_ups), reseed=args.reseed
    )


if __name__ == "__main__":
    main()
