"""`epoch_microseconds`: the database turns a UTC moment into the same whole microseconds since
the epoch that Python does, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import literal, select

from models import epoch_microseconds
from models.base import UTCDateTime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 31, 15, 30, 0, 123456, tzinfo=UTC),
        datetime(2024, 2, 29, 0, 0, tzinfo=UTC),
        datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_the_database_counts_the_microseconds_python_does(session, moment):
    counted = session.scalar(select(epoch_microseconds(literal(moment, UTCDateTime()))))
    assert counted == (moment - EPOCH) // timedelta(microseconds=1)
