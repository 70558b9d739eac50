"""The runtime's embedded default on disk: a fresh data folder and everything in it are ours
alone, whatever umask the process started with."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings
from wecrm.wiring import build_runtime


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual default: new files world-readable
    yield
    os.umask(previous)


def test_a_fresh_embedded_data_folder_and_its_files_are_private(tmp_path, permissive_umask):
    data_dir = tmp_path / "fresh" / ".wecrm"
    runtime = build_runtime(Settings.from_env({"WECRM_DATA_DIR": str(data_dir)}))
    try:
        runtime.db.upgrade()  # writes: SQLite's -wal and -shm files appear beside the database
        runtime.redis.set("probe", "1")
        runtime.redis.save()  # the dump file is written by the redis-server itself
        files = sorted(p for p in data_dir.iterdir() if not p.is_socket())
        assert {p.name for p in files} >= {"secret_key", "wecrm.sqlite3", "redis.db"}
        assert _mode(data_dir) == 0o700
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert os.umask(0o022) == 0o022  # the runtime put the process's umask back
    finally:
        runtime.redis.shutdown(nosave=True)
        runtime.close()
