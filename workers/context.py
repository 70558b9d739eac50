"""The runtime a job uses: installed by whatever runs jobs (`wecrm worker`, the tests)."""

from __future__ import annotations

import os

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
        raise RuntimeError("no runtime for jobs in this process: run workers with `wecrm worker`")
    if _pid != os.getpid():
        if "db" in _current.__dict__:
            _current.db.engine.dispose(close=False)  # the parent's connections stay the parent's
        _pid = os.getpid()
    return _current
