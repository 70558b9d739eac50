"""gunicorn, embedded: `wecrm serve` and the demo run the same server production runs."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from wecrm.runtime import Runtime


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, runtime: Runtime, options: dict[str, Any]) -> None:
        self.runtime = runtime
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from wecrm.app import create_app

        return create_app(self.runtime)


def serve(runtime: Runtime, *, host: str, port: int, workers: int, threads: int) -> None:
    """Block serving the app; each worker process opens its own database pool after fork."""
    runtime.close()  # connections opened before the fork (migrations) must not be shared
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "accesslog": "-",
        "timeout": 60,
        # gunicorn's control socket is one path per user: parallel servers would fight over it.
        "control_socket_disable": True,
    }
    _Gunicorn(runtime, options).run()
