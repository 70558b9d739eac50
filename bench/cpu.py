"""Who used the CPU while a figure was taken: the benchmark's own processes, or everyone else.

The machine is shared (other people's test runs come and go), so each figure carries the CPU the
rest of the machine used meanwhile; and under load, the CPU the server (and its PostgreSQL
backends) spent per request, which contention inflates far less than it inflates latency.
Linux only: it reads /proc.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine, make_url, text

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def system_busy_ticks() -> int:
    """Ticks all CPUs spent on anything but idling, since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq + steal


def process_ticks(pids: list[int]) -> int:
    """User + system ticks of these processes (all their threads); gone ones count as 0."""
    total = 0
    for pid in pids:
        try:
            after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(after_name[11]) + int(after_name[12])  # utime, stime
    return total


def group_pids(pgid: int) -> list[int]:
    """Every process in a process group (a gunicorn master and its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            after_name = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(after_name[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def postgres_pids(engine: Engine, application_name: str) -> list[int]:
    """The PostgreSQL backends serving connections that gave this application_name."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        return list(
            conn.scalars(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                {"name": application_name},
            )
        )


def with_application_name(url: str, name: str) -> str:
    """The URL with an application_name, so PostgreSQL shows whose backend is whose."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    return parsed.update_query_dict({"application_name": name}).render_as_string(
        hide_password=False
    )


def wait_for_quiet(
    *, max_cores: float, timeout_seconds: float, window_seconds: float = 2.0
) -> float:
    """Wait (at most `timeout_seconds`) for a window in which the machine, the benchmark idle,
    keeps no more than `max_cores` busy; return how busy the last window was, in cores."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        before, started = system_busy_ticks(), time.monotonic()
        time.sleep(window_seconds)
        elapsed = time.monotonic() - started
        busy = (system_busy_ticks() - before) / CLOCK_TICKS_PER_SECOND / elapsed
        if busy <= max_cores or time.monotonic() >= deadline:
            return round(busy, 2)


@dataclass
class CpuUse:
    seconds: float
    busy_cores: float  # the whole machine
    ours_cores: float  # this process, children that ended (wrk), and the tracked processes
    others_cores: float  # everything else: the noise
    tracked_cpu_seconds: float  # the tracked processes alone (a server and its backends)


class CpuWindow:
    """Measure CPU use between enter and exit; `tracked` names the processes to attribute."""

    def __init__(self, tracked: Callable[[], list[int]] = list) -> None:
        self.tracked = tracked
        self.use: CpuUse | None = None

    def __enter__(self) -> CpuWindow:
        self.pids = self.tracked()
        self.started = time.monotonic()
        self.busy = system_busy_ticks()
        self.mine = process_ticks([os.getpid()])
        self.children = _children_seconds()
        self.tracked_ticks = process_ticks(self.pids)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        seconds = time.monotonic() - self.started
        tick = 1 / CLOCK_TICKS_PER_SECOND
        busy = (system_busy_ticks() - self.busy) * tick
        tracked = (process_ticks(self.pids) - self.tracked_ticks) * tick
        ours = (
            (process_ticks([os.getpid()]) - self.mine) * tick
            + tracked
            + _children_seconds()
            - self.children
        )
        self.use = CpuUse(
            seconds=round(seconds, 2),
            busy_cores=round(busy / seconds, 2),
            ours_cores=round(ours / seconds, 2),
            others_cores=round(max(busy - ours, 0.0) / seconds, 2),
            tracked_cpu_seconds=round(tracked, 3),
        )


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def add_calm_options(parser: argparse.ArgumentParser) -> None:
    """--nice, --quiet-wait and --quiet-cores: how a benchmark keeps others' work out of it."""
    parser.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="run at this niceness (with its servers and wrk), so the machine's "
        "other work disturbs the figures less; needs root below 0",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30,
        help="seconds to wait, before each figure, for the machine to calm down",
    )
    parser.add_argument(
        "--quiet-cores",
        type=float,
        default=0.3,
        help="how many cores others may keep busy and still count as calm",
    )


def apply_niceness(args: argparse.Namespace) -> None:
    """Run at --nice (children inherit it), or say why not."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    except PermissionError:
        print(f"cannot run at nice {args.nice}; measuring at the current niceness")
