"""The runtime a job uses: built from the environment in a worker, handed in by tests and demo."""

from __future__ import annotations

import os

from config import Settings
from wecrm.runtime import Runtime

_current: Runtime | None = None
_pid: int | None = None


def use(runtime: Runtime) -> None:
    """Make `runtime` the one jobs in this process use."""
    global _current, _pid
    _current, _pid = runtime, os.getpid()


def runtime() -> Runtime:
    """The process's runtime; after RQ forks a work horse, its database pool is not shared."""
    global _pid
    if _current is None:
        use(Runtime(Settings.from_env()))
    assert _current is not None
    if _pid != os.getpid():
        if "db" in _current.__dict__:
            _current.db.engine.dispose(close=False)  # the parent's connections stay the parent's
        _pid = os.getpid()
    return _current
