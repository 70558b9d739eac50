"""Declarative base with a constraint naming convention Alembic can rely on."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, MetaData, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, comparable), plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class epoch_microseconds(FunctionElement[int]):  # noqa: N801 (an SQL function's name)
    """A `UTCDateTime` column as whole microseconds since the epoch, computed by the database:
    bulk reads (the forecast's stage history) skip parsing a datetime per row."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_microseconds, "postgresql")
def _epoch_microseconds_postgresql(
    element: epoch_microseconds, compiler: SQLCompiler, **kw: Any
) -> str:
    # EXTRACT gives an exact numeric since PostgreSQL 14.
    moment = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(EPOCH FROM {moment}) * 1000000 AS BIGINT)"


@compiles(epoch_microseconds, "sqlite")
def _epoch_microseconds_sqlite(
    element: epoch_microseconds, compiler: SQLCompiler, **kw: Any
) -> str:
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: whole seconds, then the six digits (the
    # seconds from the text without its fraction: SQLite would round .9995 up to a second).
    moment = compiler.process(element.clauses, **kw)
    return (
        f"(CAST(strftime('%s', substr({moment}, 1, 19)) AS INTEGER) * 1000000"
        f" + CAST(substr({moment}, 21, 6) AS INTEGER))"
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
