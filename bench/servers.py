"""gunicorn on 127.0.0.1 for the benchmarks: wecrm as `wecrm serve` runs it, or a bare app (the
customer book's, or the callback's) under the very same gunicorn settings. `Served` starts one
on a free port, waits until it answers and stops it (only the process group it started).

    python -m bench.servers wecrm|bare|bare_callback --port 8123 --workers 2 --threads 4
(settings come from the WECRM_* environment, as for `wecrm serve`)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """A gunicorn serving `kind` ("wecrm", "bare" or "bare_callback") in its own process group."""

    def __init__(
        self, kind: str, *, env: dict[str, str], workers: int, threads: int, log_path: Path
    ) -> None:
        self.kind = kind
        self.env = env
        self.workers = workers
        self.threads = threads
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.servers",
                self.kind,
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
            ],
            cwd=REPO,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stopping it stops its workers
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        # Every worker must have booted, not just the first: ask until `workers` distinct pids
        # answered, or at least until the deadline with one answering.
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} server exited with {self.process.returncode}; "
                    f"see {self.log_path}:\n{self._log_tail()}"
                )
            if self._is_answering() and self._booted_workers() >= self.workers:
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.kind} server not ready after {READY_TIMEOUT_SECONDS} s; "
            f"see {self.log_path}:\n{self._log_tail()}"
        )

    def _is_answering(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def _booted_workers(self) -> int:
        return self.log_path.read_text(errors="replace").count("Booting worker with pid")

    def _log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the group this object started, by id
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _serve(kind: str, port: int, workers: int, threads: int) -> None:
    from config import Settings
    from wecrm import server
    from wecrm.wiring import build_runtime

    runtime = build_runtime(Settings.from_env())
    if kind == "bare":
        # The same `serve` with the same options; only the app it loads differs.
        class BareGunicorn(server._Gunicorn):  # type: ignore[name-defined,misc]
            def load(self) -> Any:
                from bench.bare_app import create_bare_app

                return create_bare_app(self.runtime.settings.database_url)

        server._Gunicorn = BareGunicorn  # type: ignore[misc]
    elif kind == "bare_callback":

        class BareCallbackGunicorn(server._Gunicorn):  # type: ignore[name-defined,misc]
            def load(self) -> Any:
                from bench.bare_callback import create_bare_callback_app

                return create_bare_callback_app(self.runtime.settings)

        server._Gunicorn = BareCallbackGunicorn  # type: ignore[misc]
    server.serve(runtime, host="127.0.0.1", port=port, workers=workers, threads=threads)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve wecrm or the bare app for a benchmark.")
    parser.add_argument("kind", choices=("wecrm", "bare", "bare_callback"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    _serve(args.kind, args.port, args.workers, args.threads)


if __name__ == "__main__":
    main()
