"""The migrations build the schema the models declare, and the newest ones go down and up."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from models import Base
from models.db import MIGRATIONS_DIR

# Neither dialect can reflect the expression index on email templates, so both warn about it.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Skipped unsupported reflection"),
    pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression"),
]


def _differences(runtime):
    with runtime.db.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def test_the_migrated_schema_is_the_models_schema(runtime):
    assert _differences(runtime) == []


def test_the_recordings_migration_goes_down_and_up_again(runtime):
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with runtime.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")
    assert "recordings" not in inspect(runtime.db.engine).get_table_names()
    runtime.db.upgrade()
    assert "recordings" in inspect(runtime.db.engine).get_table_names()
    assert _differences(runtime) == []


def test_the_archived_voice_migration_goes_down_and_up_again(runtime):
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with runtime.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0011")
    columns = {c["name"] for c in inspect(runtime.db.engine).get_columns("archive_messages")}
    assert "transcript_status" in columns
    runtime.db.upgrade()
    columns = {c["name"] for c in inspect(runtime.db.engine).get_columns("chat_windows")}
    assert "settled_at" in columns
    assert _differences(runtime) == []
