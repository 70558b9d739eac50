"""The capture job and `wecrm import-archive`: an export imported twice makes one follow-up per
window, and a worker killed mid-capture and started again loses and duplicates nothing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import psutil
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from crm import chat_capture
from models import ArchiveMessage, ChatWindow, Customer, FollowUp, Task
from models.chat import ArchiveStatus
from tests.archive import CUSTOMER_ID, Chat
from tests.factories import make_company, make_customer
from wecrm import cli
from workers import capture, queues


@pytest.fixture
def wecrm(cli_env):
    def invoke(*args):
        return CliRunner().invoke(cli.main, list(args), env=cli_env)

    return invoke


def write_export(path, messages, extra_lines=()):
    lines = [json.dumps(m, ensure_ascii=False) for m in messages]
    path.write_text("\n".join([*lines, *extra_lines]) + "\n", encoding="utf-8")
    return path


def test_an_export_imported_twice_makes_one_follow_up_and_moves_the_customer_to_quote(
    wecrm, session, runtime, clock, tmp_path
):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), name="王建国", stage="意向")
    customer.external_userid = CUSTOMER_ID
    session.commit()
    export = write_export(
        tmp_path / "archive.jsonl", Chat(clock() - timedelta(days=3)).quote(rep.wecom_userid)
    )

    first = wecrm("import-archive", str(export), "--now")
    assert first.exit_code == 0, first.output
    assert "新存入 3 条，已导入过 0 条，无法识别 0 条" in first.output
    assert "生成跟进 1" in first.output
    second = wecrm("import-archive", str(export), "--now")
    assert "新存入 0 条，已导入过 3 条" in second.output
    assert "生成跟进 0" in second.output

    session.expire_all()
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 1
    assert session.get(Customer, customer.id).stage == "报价"
    [task] = session.scalars(select(Task)).all()
    assert task.assignee_id == company.managers[0].id


def test_import_archive_queues_the_capture_job_and_fails_on_rejected_lines(
    wecrm, session, runtime, clock, tmp_path
):
    export = write_export(
        tmp_path / "archive.jsonl", Chat(clock()).quote("rep00"), extra_lines=["not json"]
    )
    result = wecrm("import-archive", str(export))
    assert result.exit_code == 1
    assert "无法识别 1 条" in result.output and "第 4 行：not JSON" in result.output
    assert "已交给后台 worker" in result.output
    assert queues.queue(runtime.redis, queues.CAPTURE).count == 1


def test_import_archive_of_an_unreadable_file_fails(wecrm, runtime, tmp_path):
    result = wecrm("import-archive", str(tmp_path / "missing.jsonl"))
    assert result.exit_code != 0
    assert "无法读取文件" in result.output


def test_the_periodic_capture_closes_windows_whose_half_hour_has_passed(session, runtime, clock):
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock(), stage="意向")
    customer.external_userid = CUSTOMER_ID
    session.commit()
    chat = Chat(clock() - timedelta(minutes=5))
    chat_capture.store_messages(
        session,
        [chat.text(rep.wecom_userid, [CUSTOMER_ID], "合同已寄出")],
        origin="file",
        now=clock(),
    )
    session.commit()
    assert capture.capture_chats().get("follow_ups", 0) == 0
    clock.advance(minutes=30)
    assert capture.capture_chats()["follow_ups"] == 1


def test_consent_is_asked_from_wecom_and_a_refusal_is_not_captured(
    session, runtime, clock, fake_wecom
):
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock(), stage="意向")
    customer.external_userid = CUSTOMER_ID
    session.commit()
    fake_wecom.refuse_archiving(rep.wecom_userid, CUSTOMER_ID)
    chat_capture.store_messages(
        session,
        Chat(clock() - timedelta(days=1)).quote(rep.wecom_userid),
        origin="file",
        now=clock(),
    )
    session.commit()
    counts = capture.capture_chats()
    assert counts["skipped_consent"] == 3
    assert "msgaudit/check_single_agree" in fake_wecom.calls


CUSTOMERS_IN_KILL_TEST = 300


def test_a_worker_killed_mid_capture_and_started_again_loses_and_duplicates_nothing(
    session, runtime, clock, cli_env
):
    rep = make_company(session).reps[0][0]
    start = datetime.now(UTC) - timedelta(days=20)
    messages = []
    for n in range(CUSTOMERS_IN_KILL_TEST):
        customer = make_customer(session, rep, clock(), stage="意向")
        customer.external_userid = f"wmKill{n:05d}"
        chat = Chat(start + timedelta(hours=n))
        messages += chat.quote(rep.wecom_userid, customer.external_userid)
        messages += [
            chat.text(customer.external_userid, [rep.wecom_userid], f"好的{i}") for i in range(3)
        ]
    session.commit()
    chat_capture.store_messages(session, messages, origin="file", now=clock())
    session.commit()  # queues the capture job
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "WECRM_"))} | cli_env
    command = [sys.executable, "-m", "wecrm.cli", "worker", "--queue", "capture"]
    worker = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def written() -> int:
        session.rollback()
        return session.scalar(select(func.count()).select_from(FollowUp))

    try:
        deadline = time.monotonic() + 120
        while written() < 10:
            assert time.monotonic() < deadline, "the worker never captured anything"
            assert worker.poll() is None
            time.sleep(0.05)
    finally:
        # RQ's work horse has a process group of its own: kill it with its worker.
        doomed = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
        for process in doomed:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        psutil.wait_procs(doomed, timeout=30)
    pending = session.scalar(
        select(func.count()).where(ArchiveMessage.status == ArchiveStatus.PENDING)
    )
    assert pending > 0, "the worker finished before it was killed: make the archive larger"

    capture.enqueue_capture(runtime.redis)  # what the periodic run does
    restarted = subprocess.run([*command, "--burst"], env=env, capture_output=True, timeout=300)
    assert restarted.returncode == 0, restarted.stderr[-2000:]

    session.rollback()
    per_customer = session.execute(
        select(FollowUp.customer_id, func.count()).group_by(FollowUp.customer_id)
    ).all()
    assert len(per_customer) == CUSTOMERS_IN_KILL_TEST
    assert {count for _, count in per_customer} == {1}
    assert session.scalar(select(func.count()).select_from(ChatWindow)) == CUSTOMERS_IN_KILL_TEST
    statuses = dict(
        session.execute(
            select(ArchiveMessage.status, func.count()).group_by(ArchiveMessage.status)
        ).all()
    )
    assert statuses == {ArchiveStatus.CAPTURED: len(messages)}
    assert (
        session.scalar(select(func.count()).where(Customer.stage == "报价"))
        == CUSTOMERS_IN_KILL_TEST
    )
