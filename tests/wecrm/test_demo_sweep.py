"""`wecrm sweep` against a running `wecrm demo`, started the way the README says: in the same
folder, with nothing copied from the demo's environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.wecrm.test_demo import DEMO_STOP_SECONDS, _free_port, _wait_for_banner
from workers.schedule import PERIODIC_JOBS

SWEEP_TIMEOUT_SECONDS = 120


def test_sweep_in_the_demos_folder_reaches_its_workers_without_any_settings(tmp_path):
    # Neither command is told where the data is: both use ./.wecrm under the same folder.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "WECRM_"))}
    port = _free_port()
    output = tmp_path / "demo.log"
    command = [sys.executable, "-m", "wecrm.cli", "demo", "--port", str(port), "--customers", "30"]
    with output.open("wb") as sink:
        demo_process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_banner(demo_process, output)  # printed once web, worker and scheduler are up

        sweep = subprocess.run(
            [sys.executable, "-m", "wecrm.cli", "sweep"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=SWEEP_TIMEOUT_SECONDS,
        )
    finally:
        demo_process.send_signal(signal.SIGTERM)
        try:
            demo_process.wait(timeout=DEMO_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(demo_process.pid, signal.SIGKILL)
            raise

    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    for periodic in PERIODIC_JOBS:
        assert f"  {periodic.label}：" in sweep.stdout, sweep.stdout
    assert "完成。" in sweep.stdout
    assert (tmp_path / ".wecrm" / "wecrm.sqlite3").exists()
