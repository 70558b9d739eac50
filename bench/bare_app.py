"""The framework's floor: Flask + SQLAlchemy running the customer book's SQL, and nothing else.

Each endpoint runs the statements the wecrm endpoint runs (the same tables, columns, joins,
filters, order and limits; `bench.customer_book` checks that both answer with the same rows),
minus what wecrm adds around them: no token or user lookup, no scope machinery, no ORM, no
pydantic — rows go out as they come from the driver. The owner is a query parameter, since
there is no signed-in rep to take it from. The engine is built by `models.Database`, so the pool,
pre-ping and SQLite pragmas are wecrm's own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask, request
from sqlalchemy import Connection, CursorResult, bindparam, text

from models import Attachment, Customer, Database, FollowUp, StageChange, Task, User
from models.base import JSONType, UTCDateTime

PAGE_SIZE = 20
TIMELINE_LIMIT = 100


def _columns(table: Any, *, alias: str | None = None, prefix: str | None = None) -> str:
    """`table.col, ...`; with a prefix, `alias.col AS prefix__col, ...` for a joined table."""
    name = alias or table.name
    return ", ".join(
        f"{name}.{c.name}" + (f" AS {prefix}__{c.name}" if prefix else "") for c in table.columns
    )


def _person(prefix: str) -> str:
    return _columns(User.__table__, alias="users_1", prefix=prefix)


CUSTOMER = Customer.__table__
CUSTOMER_WITH_OWNER = (
    f"SELECT {_columns(CUSTOMER)}, {_person('owner')} FROM customers "
    "LEFT OUTER JOIN users AS users_1 ON users_1.id = customers.owner_id"
)
TAGS = text(
    "SELECT customer_tags.customer_id, customer_tags.tag FROM customer_tags "
    "WHERE customer_tags.customer_id IN :ids ORDER BY customer_tags.tag"
).bindparams(bindparam("ids", expanding=True))
FOLLOW_UPS = text(
    f"SELECT {_columns(FollowUp.__table__)}, {_person('author')} FROM follow_ups "
    "LEFT OUTER JOIN users AS users_1 ON users_1.id = follow_ups.author_id "
    "WHERE follow_ups.customer_id = :cid "
    "ORDER BY follow_ups.happened_at DESC, follow_ups.id DESC LIMIT :limit"
)
ATTACHMENTS = text(
    f"SELECT {_columns(Attachment.__table__)} FROM attachments "
    "WHERE attachments.follow_up_id IN :ids ORDER BY attachments.id"
).bindparams(bindparam("ids", expanding=True))
STAGE_CHANGES = text(
    f"SELECT {_columns(StageChange.__table__)}, {_person('actor')} FROM stage_changes "
    "LEFT OUTER JOIN users AS users_1 ON users_1.id = stage_changes.actor_id "
    "WHERE stage_changes.customer_id = :cid "
    "ORDER BY stage_changes.changed_at DESC, stage_changes.id DESC LIMIT :limit"
)
TASKS = text(
    f"SELECT {_columns(Task.__table__)}, {_person('assignee')} FROM tasks "
    "LEFT OUTER JOIN users AS users_1 ON users_1.id = tasks.assignee_id "
    "WHERE tasks.customer_id = :cid ORDER BY tasks.created_at DESC, tasks.id DESC LIMIT :limit"
)
REQUIRED_KEYS = text(
    "SELECT custom_fields.key FROM custom_fields "
    "WHERE custom_fields.is_active AND custom_fields.is_required ORDER BY custom_fields.id"
)
UPDATE_CUSTOMER = text(
    "UPDATE customers SET last_follow_up_at = :now, updated_at = :now WHERE customers.id = :cid"
).bindparams(bindparam("now", type_=UTCDateTime()))
INSERT_AUDIT = text(
    "INSERT INTO audit_entries (at, actor_id, entity, entity_id, action, before, after, reason) "
    "VALUES (:now, :actor, 'customer', :cid, 'follow_up', :before, :after, NULL)"
).bindparams(
    bindparam("now", type_=UTCDateTime()),
    bindparam("before", type_=JSONType),
    bindparam("after", type_=JSONType),
)
AUTHOR = text(f"SELECT {_columns(User.__table__)} FROM users WHERE users.id = :uid")
NEW_ATTACHMENTS = text(
    f"SELECT {_columns(Attachment.__table__)} FROM attachments "
    "WHERE attachments.follow_up_id = :fid ORDER BY attachments.id"
)


def create_bare_app(database_url: str) -> Flask:
    """A Flask app serving /bare/... with the customer book's SQL on wecrm's engine."""
    db = Database(database_url)
    engine = db.engine
    is_postgres = not db.is_sqlite
    like = "ILIKE" if is_postgres else "LIKE"
    lower = (lambda column: column) if is_postgres else (lambda column: f"lower({column})")
    insert_follow_up = text(
        "INSERT INTO follow_ups (customer_id, author_id, happened_at, method, summary, next_plan, "
        "next_follow_up_on, source, transcript, created_at) VALUES (:cid, :author, :now, "
        ":method, :summary, NULL, NULL, 'manual', NULL, :now)"
        + (" RETURNING follow_ups.id" if is_postgres else "")
    ).bindparams(bindparam("now", type_=UTCDateTime()))
    lock = " FOR UPDATE" if is_postgres else ""

    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/bare/customers")
    def customers() -> dict[str, Any]:
        args = request.args
        where = ["customers.owner_id = :owner"]
        params: dict[str, Any] = {"owner": int(args["owner_id"])}
        if args.get("q"):
            where.append(
                f"({lower('customers.name')} {like} {lower(':q')} ESCAPE '\\' OR "
                f"{lower('customers.company')} {like} {lower(':q')} ESCAPE '\\')"
            )
            params["q"] = f"%{args['q']}%"
        for name in ("stage", "grade"):
            values = args.getlist(name)
            if values:
                names = ", ".join(f":{name}{i}" for i in range(len(values)))
                where.append(f"customers.{name} IN ({names})")
                params.update({f"{name}{i}": v for i, v in enumerate(values)})
        clause = " AND ".join(where)
        with engine.begin() as conn:
            total = conn.execute(
                text(f"SELECT count(*) FROM customers WHERE {clause}"), params
            ).scalar()
            items = _records(
                conn.execute(
                    text(
                        f"{CUSTOMER_WITH_OWNER} WHERE {clause} "
                        "ORDER BY customers.updated_at DESC, customers.id DESC "
                        "LIMIT :limit OFFSET 0"
                    ),
                    {**params, "limit": PAGE_SIZE},
                ),
                "owner",
            )
            tags = _tags(conn, [item["id"] for item in items])
        for item in items:
            item["tags"] = tags.get(item["id"], [])
        return {"items": items, "total": total, "page": 1, "page_size": PAGE_SIZE}

    @app.get("/bare/customers/<int:customer_id>")
    def customer(customer_id: int) -> tuple[dict[str, Any], int]:
        params = {
            "cid": customer_id,
            "owner": int(request.args["owner_id"]),
            "limit": TIMELINE_LIMIT,
        }
        with engine.begin() as conn:
            found = _records(
                conn.execute(
                    text(
                        f"{CUSTOMER_WITH_OWNER} "
                        "WHERE customers.owner_id = :owner AND customers.id = :cid"
                    ),
                    params,
                ),
                "owner",
            )
            if not found:
                return {"error": "not found"}, 404
            tags = _tags(conn, [customer_id])
            follow_ups = _records(conn.execute(FOLLOW_UPS, params), "author")
            changes = _records(conn.execute(STAGE_CHANGES, params), "actor")
            tasks = _records(conn.execute(TASKS, params), "assignee")
            attachments: dict[int, list[dict[str, Any]]] = {}
            if follow_ups:
                ids = [f["id"] for f in follow_ups]
                for a in conn.execute(ATTACHMENTS, {"ids": ids}).mappings():
                    attachments.setdefault(a["follow_up_id"], []).append(dict(a))
            required = conn.execute(REQUIRED_KEYS).scalars().all()
        for f in follow_ups:
            f["attachments"] = attachments.get(f["id"], [])
        events = [("follow_up", f["happened_at"], f) for f in follow_ups]
        events += [("stage_change", c["changed_at"], c) for c in changes]
        events += [("task", t["created_at"], t) for t in tasks]
        events.sort(key=lambda e: str(e[1]), reverse=True)
        customer = found[0]
        customer["tags"] = tags.get(customer_id, [])
        return {
            "customer": customer,
            "required_custom_keys": list(required),
            "timeline": [
                {"kind": kind, "at": at, kind: record}
                for kind, at, record in events[:TIMELINE_LIMIT]
            ],
        }, 200

    @app.post("/bare/customers/<int:customer_id>/follow-ups")
    def follow_up(customer_id: int) -> tuple[dict[str, Any], int]:
        body = request.get_json()
        owner = int(request.args["owner_id"])
        now = datetime.now(UTC)
        # As wecrm opens its write sessions (`Database.session(lock_for_write=True)`): on SQLite
        # the write lock is taken at BEGIN, so a read-then-write never fails to upgrade. An
        # execution option the engine does not know is ignored, so this is harmless elsewhere.
        with engine.execution_options(sqlite_lock_for_write=True).begin() as conn:
            found = conn.execute(
                text(
                    f"SELECT {_columns(CUSTOMER)} FROM customers "
                    f"WHERE customers.owner_id = :owner AND customers.id = :cid{lock}"
                ),
                {"owner": owner, "cid": customer_id},
            ).first()
            if found is None:
                return {"error": "not found"}, 404
            conn.execute(UPDATE_CUSTOMER, {"now": now, "cid": customer_id})
            params = {
                "cid": customer_id,
                "author": owner,
                "now": now,
                "method": body["method"],
                "summary": body["summary"],
            }
            result = conn.execute(insert_follow_up, params)
            follow_up_id = result.scalar_one() if is_postgres else result.lastrowid
            conn.execute(
                INSERT_AUDIT,
                {
                    "now": now,
                    "actor": owner,
                    "cid": customer_id,
                    "before": {},
                    "after": {"follow_up_id": follow_up_id, "method": body["method"]},
                },
            )
            # wecrm re-reads the new row, its author and its attachments; so does the floor.
            conn.execute(
                text("SELECT follow_ups.id FROM follow_ups WHERE follow_ups.id = :fid"),
                {"fid": follow_up_id},
            )
            author = conn.execute(AUTHOR, {"uid": owner}).mappings().first()
            files = conn.execute(NEW_ATTACHMENTS, {"fid": follow_up_id}).mappings().all()
        return {
            "id": follow_up_id,
            "customer_id": customer_id,
            "author": dict(author or {}),
            "happened_at": now,
            "method": body["method"],
            "summary": body["summary"],
            "attachments": [dict(f) for f in files],
        }, 201

    return app


def _tags(conn: Connection, ids: list[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {}
    if ids:
        for customer_id, tag in conn.execute(TAGS, {"ids": ids}):
            tags.setdefault(customer_id, []).append(tag)
    return tags


def _records(result: CursorResult[Any], person: str) -> list[dict[str, Any]]:
    """Rows as dicts, with the joined person's `<person>__*` columns as {"id", "name"}."""
    keys = list(result.keys())
    own = [k for k in keys if not k.startswith(f"{person}__")]
    person_id, person_name = keys.index(f"{person}__id"), keys.index(f"{person}__name")
    records = []
    for row in result:
        record = dict(zip(own, row, strict=False))
        pid = row[person_id]
        record[person] = {"id": pid, "name": row[person_name]} if pid is not None else None
        records.append(record)
    return records
