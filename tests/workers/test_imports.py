"""Import jobs: short write transactions while callbacks and API writes go on, what a stopped
import leaves and says, and imports whose worker died."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import psutil
import pytest
from sqlalchemy import func, select

from crm import import_jobs, imports
from crm.actors import Actor
from models import Customer, FollowUp, ImportJob, InboundMessage
from models.imports import ImportStatus
from tests.factories import make_company, make_customer, sign_in
from workers import jobs, queues
from workers.schedule import PERIODIC_JOBS

LARGE_IMPORT_ROWS = 20_000
# Generous: a write waits at most for one batch of the import (about a second), not its whole run.
SLOWEST_ACCEPTABLE_SECONDS = 10.0


def csv_bytes(rows) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def customers_csv(count: int, first_phone: int = 13_000_000_000) -> bytes:
    rows = [["客户名称", "电话", "区域"]]
    rows += [[f"导入客户{n}", str(first_phone + n), "长沙县"] for n in range(count)]
    return csv_bytes(rows)


def queue_file(session, runtime, clock, user, data: bytes, suffix: str = ".csv") -> int:
    """Store a file and queue its import, as POST /imports does (the test client leaks the temp
    file it spools a large upload to)."""
    key, _ = runtime.store.save(data, suffix=suffix)
    job = import_jobs.queue_import(
        session,
        actor=Actor.of(user),
        filename=f"客户{suffix}",
        storage_key=key,
        on_duplicate="skip",
        now=clock(),
    )
    session.commit()
    return job.id


def read_import(client, headers, import_id: int) -> dict:
    response = client.get(f"/api/v1/imports/{import_id}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def test_api_writes_and_callbacks_keep_their_pace_during_a_20k_row_import(
    client, session, fake_wecom, runtime, wecom_side, clock
):
    company = make_company(session)
    importer, writer = company.reps[0]
    customer = make_customer(session, writer, clock(), name="老客户")
    importer_headers = sign_in(client, fake_wecom, importer)
    writer_headers = sign_in(client, fake_wecom, writer)
    import_id = queue_file(session, runtime, clock, importer, customers_csv(LARGE_IMPORT_ROWS))
    failures: list[BaseException] = []

    def run() -> None:
        try:
            jobs.run_import(import_id)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    worker = threading.Thread(target=run, name="import-worker")
    api_seconds: list[float] = []
    callback_seconds: list[float] = []
    answers: list[int] = []
    worker.start()
    while worker.is_alive():
        started = time.monotonic()
        follow_up = client.post(
            f"/api/v1/customers/{customer.id}/follow-ups",
            headers=writer_headers,
            json={"method": "电话", "summary": f"导入期间的跟进 {len(api_seconds)}"},
        )
        api_seconds.append(time.monotonic() - started)
        answers.append(follow_up.status_code)
        started = time.monotonic()
        message = wecom_side.post(wecom_side.text_fields(writer.wecom_userid, "#今日#"))
        callback_seconds.append(time.monotonic() - started)
        answers.append(message.status_code)
        time.sleep(0.5)
    worker.join()

    assert failures == []
    print(  # the figures the reliability notes quote (pytest -s)
        f"\nduring the import: {len(api_seconds)} follow-ups, median "
        f"{statistics.median(api_seconds):.3f} s, slowest {max(api_seconds):.3f} s; "
        f"{len(callback_seconds)} callbacks, median {statistics.median(callback_seconds):.3f} s, "
        f"slowest {max(callback_seconds):.3f} s"
    )
    assert len(api_seconds) >= 5  # the writes really overlapped the import
    assert set(answers) <= {200, 201}, answers
    assert max(api_seconds + callback_seconds) < SLOWEST_ACCEPTABLE_SECONDS
    session.rollback()
    stored = session.scalar(select(func.count()).select_from(InboundMessage))
    assert stored == len(callback_seconds)
    follow_ups = select(func.count()).select_from(FollowUp)
    assert session.scalar(follow_ups.where(FollowUp.customer_id == customer.id)) == len(api_seconds)
    body = read_import(client, importer_headers, import_id)
    assert (body["status"], body["created_count"]) == ("done", LARGE_IMPORT_ROWS)
    assert body["processed_rows"] == body["total_rows"] == LARGE_IMPORT_ROWS


def test_an_import_that_stops_half_way_keeps_the_batches_written_and_says_where_it_stopped(
    client, session, fake_wecom, runtime, clock, monkeypatch
):
    rep = make_company(session).reps[0][0]
    headers = sign_in(client, fake_wecom, rep)
    import_id = queue_file(session, runtime, clock, rep, customers_csv(12))
    monkeypatch.setattr(jobs, "IMPORT_BATCH_ROWS", 5)
    real_create = imports.create_customer

    def create_until_the_eighth(session, **kwargs):
        if kwargs["values"]["name"] == "导入客户7":
            raise RuntimeError("disk full")
        return real_create(session, **kwargs)

    monkeypatch.setattr(imports, "create_customer", create_until_the_eighth)

    with pytest.raises(RuntimeError):
        jobs.run_import(import_id)

    body = read_import(client, headers, import_id)
    assert body["status"] == "failed"
    assert (body["created_count"], body["processed_rows"], body["total_rows"]) == (5, 5, 12)
    last = body["report"][-1]
    assert last["row"] is None
    assert last["message"].startswith("导入在处理完前 5 行数据后停止：导入时发生内部错误")
    assert "其余行未导入" in last["message"]
    session.rollback()
    names = session.scalars(select(Customer.name).order_by(Customer.id))
    assert list(names) == [f"导入客户{n}" for n in range(5)]  # the second batch rolled back


def test_an_import_whose_worker_died_is_failed_by_the_sweep_and_the_user_is_told(
    client, session, fake_wecom, runtime, clock
):
    rep = make_company(session).reps[0][0]
    headers = sign_in(client, fake_wecom, rep)
    dead = queue_file(session, runtime, clock, rep, customers_csv(3))
    alive = queue_file(session, runtime, clock, rep, customers_csv(3))
    for import_id, processed in ((dead, 500), (alive, 40)):
        job = session.get(ImportJob, import_id)
        job.status, job.processed_rows, job.total_rows = ImportStatus.RUNNING, processed, 20_000
        job.heartbeat_at = clock()
    session.commit()
    clock.advance(seconds=jobs.IMPORT_LEASE_SECONDS - 30)
    session.get(ImportJob, alive).heartbeat_at = clock()  # its worker wrote another batch
    session.commit()

    clock.advance(seconds=31)
    assert jobs.fail_stalled_imports() == 1

    body = read_import(client, headers, dead)
    assert (body["status"], body["processed_rows"]) == ("failed", 500)
    assert body["finished_at"] is not None
    assert body["report"][-1]["row"] is None
    assert body["report"][-1]["message"].startswith(
        "导入中断：处理导入的后台程序意外停止。前 500 行"
    )
    assert read_import(client, headers, alive)["status"] == "running"
    assert jobs.fail_stalled_imports in {periodic.func for periodic in PERIODIC_JOBS}


def test_a_worker_whose_import_was_failed_by_the_sweep_stops_writing(
    client, session, fake_wecom, runtime, clock, monkeypatch
):
    rep = make_company(session).reps[0][0]
    headers = sign_in(client, fake_wecom, rep)
    import_id = queue_file(session, runtime, clock, rep, customers_csv(12))
    monkeypatch.setattr(jobs, "IMPORT_BATCH_ROWS", 5)
    real_save = jobs._save_progress

    def stalled_after_the_first_batch(session, import_id, progress, *, now):
        job = real_save(session, import_id, progress, now=now)
        clock.advance(seconds=jobs.IMPORT_LEASE_SECONDS + 1)  # as if the worker hung
        return job

    monkeypatch.setattr(jobs, "_save_progress", stalled_after_the_first_batch)
    real_write = imports.write_import

    def swept_between_batches(session, plan, **kwargs):
        on_batch = kwargs.pop("on_batch")

        def then_sweep(progress):
            on_batch(progress)
            jobs.fail_stalled_imports()

        return real_write(session, plan, on_batch=then_sweep, **kwargs)

    monkeypatch.setattr(imports, "write_import", swept_between_batches)

    assert jobs.run_import(import_id) == {}

    body = read_import(client, headers, import_id)
    assert (body["status"], body["created_count"]) == ("failed", 5)
    assert body["report"][-1]["message"].startswith("导入中断")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Customer)) == 5


def test_a_queued_import_runs_once_even_if_its_job_is_delivered_twice(session, runtime, clock):
    rep = make_company(session).reps[0][0]
    import_id = queue_file(session, runtime, clock, rep, customers_csv(3))

    assert jobs.run_import(import_id) == {"created": 3, "errors": 0}
    assert jobs.run_import(import_id) == {}

    session.rollback()
    assert session.scalar(select(func.count()).select_from(Customer)) == 3


def test_an_import_whose_job_never_reached_redis_is_queued_again_by_the_sweep(
    session, runtime, clock
):
    rep = make_company(session).reps[0][0]
    imports_queue = queues.queue(runtime.redis, queues.IMPORTS)
    imports_queue.empty()
    import_id = queue_file(session, runtime, clock, rep, customers_csv(3))
    imports_queue.empty()  # the enqueue after the commit was lost (Redis was down)

    jobs.fail_stalled_imports()
    assert imports_queue.count == 0  # a young queued import may still be on its way
    clock.advance(seconds=jobs.IMPORT_LEASE_SECONDS + 1)
    jobs.fail_stalled_imports()

    assert [job.args for job in imports_queue.get_jobs()] == [(import_id,)]
    imports_queue.empty()


def test_an_import_whose_worker_is_killed_stays_as_committed_and_is_failed_by_the_sweep(
    client, session, fake_wecom, runtime, clock, cli_env
):
    rep = make_company(session).reps[0][0]
    headers = sign_in(client, fake_wecom, rep)
    import_id = queue_file(session, runtime, clock, rep, customers_csv(5_000))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "WECRM_"))}
    worker = subprocess.Popen(
        [sys.executable, "-m", "wecrm.cli", "worker", "--queue", "imports"],
        env=env | cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while read_import(client, headers, import_id)["processed_rows"] < 100:
            assert time.monotonic() < deadline, "the worker never started the import"
            assert worker.poll() is None
            time.sleep(0.1)
    finally:
        # RQ's work horse (the process running the import) has a process group of its own:
        # kill it with its worker, or it would go on writing after the test.
        doomed = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
        for process in doomed:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        psutil.wait_procs(doomed, timeout=30)
    stuck = read_import(client, headers, import_id)
    assert stuck["status"] == "running"

    clock.current = datetime.now(UTC)  # the worker renewed the heartbeat on the real clock
    assert jobs.fail_stalled_imports() == 0
    clock.advance(seconds=jobs.IMPORT_LEASE_SECONDS + 1)
    assert jobs.fail_stalled_imports() == 1

    headers = sign_in(client, fake_wecom, rep)  # the first sign-in has expired by this clock
    body = read_import(client, headers, import_id)
    assert body["status"] == "failed"
    assert 100 <= body["processed_rows"] < 5_000
    assert body["report"][-1]["message"].startswith(
        f"导入中断：处理导入的后台程序意外停止。前 {body['processed_rows']} 行"
    )
    session.rollback()
    landed = session.scalar(select(func.count()).select_from(Customer))
    assert landed == body["created_count"] == body["processed_rows"]  # the counts are the rows
