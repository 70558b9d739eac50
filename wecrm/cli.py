"""The `wecrm` command: init, serve, worker, scheduler, sweep, demo, import-customers,
import-archive, sync-users."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import click
from rq.results import Result
from tqdm import tqdm

from config import Settings, SettingsError
from config.settings import mask_url
from crm import chat_capture, imports, users
from crm.actors import Actor
from crm.errors import DomainError
from wecom.client import WeComError
from wecrm.runtime import Runtime
from wecrm.wiring import build_runtime
from workers import capture, context, jobs, outages, queues
from workers.schedule import build_scheduler, enqueue_round

# `wecrm sweep` waits for results in short blocking reads: redis-py ends a read that blocks
# longer than its socket timeout (5 s by default) with an error.
RESULT_WAIT_SECONDS = 1
# import-archive commits this many lines at a time, so a long file never holds the write lock.
ARCHIVE_LINES_PER_COMMIT = 2000
# What a capture run's counts are called on the terminal.
CAPTURE_LABELS = {
    "captured": "归入会话",
    "windows_closed": "会话窗口",
    "follow_ups": "生成跟进",
    "recalled": "撤回",
    "withdrawn": "撤销跟进",
    "contacts_created": "新建客户",
}
SKIP_LABELS = {
    chat_capture.SkipReason.SWITCH: "切换企业记录",
    chat_capture.SkipReason.UNREAD_TYPE: "不读取的消息类型",
    chat_capture.SkipReason.INTERNAL: "同事之间的消息",
    chat_capture.SkipReason.UNKNOWN_MEMBER: "非本系统成员",
    chat_capture.SkipReason.NO_CUSTOMER: "群里没有本系统客户",
    chat_capture.SkipReason.CONSENT: "未同意存档",
}


def _runtime() -> Runtime:
    """The command's runtime, closed (pools, sockets) when the command ends."""
    try:
        runtime = build_runtime(Settings.from_env())
    except SettingsError as error:
        raise click.ClickException(f"配置错误 (configuration error): {error}") from None
    click.get_current_context().call_on_close(runtime.close)
    return runtime


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def main(verbose: bool) -> None:
    """wecrm — 企业微信里的销售 CRM。"""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@click.option(
    "--model-only",
    is_flag=True,
    help="Only assemble and verify the bundled speech model (make install); no database.",
)
def init(model_only: bool) -> None:
    """Create or upgrade the database schema (Alembic) and assemble the bundled speech model."""
    # Imported here so the other commands start without loading faster-whisper.
    from speech.model import ModelRejected, assemble_bundled_model

    try:
        settings = Settings.from_env()
    except SettingsError as error:
        raise click.ClickException(f"配置错误 (configuration error): {error}") from None
    if not model_only:
        runtime = _runtime()
        runtime.db.upgrade()
        click.echo(f"数据库已就绪：{mask_url(runtime.settings.database_url)}")
    if settings.whisper_model:
        click.echo(f"语音识别模型：{settings.whisper_model}（WECRM_WHISPER_MODEL）")
        return
    try:
        folder = assemble_bundled_model(settings.bundled_model_dir)
    except ModelRejected as error:
        raise click.ClickException(f"语音识别模型校验失败：{error}") from None
    click.echo(f"语音识别模型已就绪（SHA-256 校验通过）：{folder}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", envvar="WECRM_PORT", show_envvar=True, default=8000, show_default=True, type=int
)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn processes")
@click.option("--threads", default=4, show_default=True, type=int)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the callback and the mini-app API with gunicorn."""
    # Imported here so the other commands start without loading gunicorn, Flask and every view.
    from wecrm.server import serve as run_server

    runtime = _runtime()
    runtime.db.upgrade()
    run_server(runtime, host=host, port=port, workers=workers, threads=threads)


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option(
    "--with-scheduler",
    is_flag=True,
    help="Also run the periodic jobs (timers, outbox catch-up, clean-up); one per deployment.",
)
@click.option(
    "--queue",
    "queue_names",
    multiple=True,
    type=click.Choice(queues.ALL_QUEUES),
    help="Serve only this queue (repeatable), e.g. a worker of its own for imports.",
)
def worker(burst: bool, with_scheduler: bool, queue_names: tuple[str, ...]) -> None:
    """Run an RQ worker on every wecrm queue (or the ones named), highest priority first; it
    waits out a Redis outage and carries on. The transcription queue gets a worker process of
    its own, which loads the speech model before it takes work."""
    runtime = _runtime()
    context.use(runtime)
    served = [name for name in queues.ALL_QUEUES if not queue_names or name in queue_names]
    helpers = []
    if with_scheduler and burst:
        enqueue_round(runtime.redis)  # worked off below
    elif with_scheduler:
        # RQ's cron scheduler blocks its process, so it runs beside the worker, not in it.
        helpers.append(subprocess.Popen([sys.executable, "-m", "wecrm.cli", "scheduler"]))
    if queues.TRANSCRIPTION in served and len(served) > 1:
        # The speech model is loaded once and kept, so its jobs cannot run in forked horses
        # (CTranslate2 hangs after a fork): a transcription worker of its own, which also keeps a
        # long recording from holding up the other queues. In burst, only when it has work.
        served.remove(queues.TRANSCRIPTION)
        if not burst or queues.queue(runtime.redis, queues.TRANSCRIPTION).count:
            command = [sys.executable, "-m", "wecrm.cli", "worker", "--queue", queues.TRANSCRIPTION]
            helpers.append(subprocess.Popen([*command, *(["--burst"] if burst else [])]))
    try:
        if served == [queues.TRANSCRIPTION]:
            # Imported here so the other workers start without loading faster-whisper.
            from speech.model import ModelRejected
            from speech.transcribe import shared_transcriber

            try:
                shared_transcriber(runtime.settings)  # loaded and verified before the first job
            except ModelRejected as error:
                raise click.ClickException(f"语音识别模型校验失败：{error}") from None
            outages.run_worker(runtime.redis, served, burst=burst, forking=False)
        else:
            outages.run_worker(runtime.redis, served, burst=burst)
    finally:
        for helper in helpers:
            if not burst:
                helper.terminate()
            helper.wait(timeout=None if burst else 30)


@main.command()
def scheduler() -> None:
    """Run the periodic-job scheduler (RQ cron); it waits out a Redis outage and carries on."""
    outages.run_scheduler(build_scheduler(_runtime().redis))


@main.command()
@click.option(
    "--timeout",
    default=120,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds to wait for the workers to finish the round.",
)
def sweep(timeout: int) -> None:
    """Run every periodic job (timers, outbox, email, inbound, clean-up) once, now.

    The jobs go to the running workers, which hold WeCom's and the SMTP server's settings; this
    command only needs the same Redis. Against `make demo` that is the default: started in the
    same folder, it finds the demo's embedded Redis through the data folder `./.wecrm`.
    """
    runtime = _runtime()
    round_ = enqueue_round(runtime.redis)
    click.echo(f"已把 {len(round_)} 个定时任务交给 worker，等待结果……")
    deadline = time.monotonic() + timeout
    failed = []
    for periodic, job in round_:
        result = job.latest_result(timeout=RESULT_WAIT_SECONDS)
        while result is None and time.monotonic() < deadline:
            result = job.latest_result(timeout=RESULT_WAIT_SECONDS)
        if result is None:
            raise click.ClickException(
                f"{timeout} 秒内没有 worker 完成「{periodic.label}」：请确认 `make demo` 或 "
                "`wecrm worker` 正在运行，且和本命令用同一个 Redis（同一数据目录，或同样的 "
                "WECRM_REDIS_URL）。任务仍在队列里，worker 启动后会执行。"
            )
        if result.type == Result.Type.SUCCESSFUL:
            click.echo(f"  {periodic.label}：{_describe_result(result.return_value)}")
        else:
            failed.append(periodic.label)
            click.echo(f"  {periodic.label}：失败（详情见 worker 日志）")
    if failed:
        raise click.ClickException(f"{len(failed)} 个定时任务失败：{'、'.join(failed)}")
    click.echo("完成。")


def _describe_result(value: object) -> str:
    """A job's return value for people: a count, or each outcome and its count."""
    if isinstance(value, dict):
        return "，".join(f"{outcome} {count}" for outcome, count in value.items()) or "无"
    return str(value)


@main.command("import-customers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "as_user", required=True, help="WeCom userid of the person importing.")
@click.option(
    "--on-duplicate", type=click.Choice(["skip", "merge"]), default="skip", show_default=True
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the per-row report to this CSV file.",
)
def import_customers(file: Path, as_user: str, on_duplicate: str, report: Path | None) -> None:
    """Import customers from an .xlsx or .csv file."""
    runtime = _runtime()
    with runtime.db.session(lock_for_write=True) as session:
        user = users.user_by_wecom_id(session, as_user)
        if user is None:
            raise click.ClickException(f"没有成员「{as_user}」")
        actor = Actor.of(user)
        session.rollback()  # no write lock while the file is checked
        bar = tqdm(total=0, unit="行", desc="导入")

        def committed(progress: imports.ImportResult) -> None:
            session.commit()  # each batch is its own short write transaction, as in the worker
            bar.total = progress.total_rows
            bar.n = progress.processed_rows
            bar.refresh()
            jobs.let_writers_in(runtime.db)

        try:
            result = imports.import_customers(
                session,
                actor=actor,
                path=file,
                on_duplicate=on_duplicate,
                now=runtime.clock(),
                batch_rows=jobs.IMPORT_BATCH_ROWS,
                on_batch=committed,
            )
        except DomainError as error:
            raise click.ClickException(error.message) from None
        finally:
            bar.close()
    click.echo(
        f"共 {result.total_rows} 行：新建 {result.created}，合并 {result.merged}，"
        f"跳过 {result.skipped}，出错 {result.errors}"
    )
    if result.ignored_columns:
        click.echo(f"未识别的列（已忽略）：{'、'.join(result.ignored_columns)}")
    for line in result.report:
        click.echo(f"  第 {line['row']} 行 [{line['outcome']}] {line.get('message', '')}")
    if report:
        imports.write_report(result, report)
        click.echo(f"逐行报告已写入 {report}")
    if result.errors:
        sys.exit(1)


@main.command("import-archive")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--now",
    "capture_now",
    is_flag=True,
    help="Capture in this process and print the result (default: the worker does it).",
)
def import_archive(file: Path, capture_now: bool) -> None:
    """Import a chat archive export: JSON lines, one decrypted WeCom message per line."""
    runtime = _runtime()
    try:
        handle = file.open("rb")
    except OSError as error:
        raise click.ClickException(f"无法读取文件 {file}：{error.strerror}") from None
    total = chat_capture.StoreResult()
    with handle, runtime.db.session(lock_for_write=True) as session:
        messages = chat_capture.read_export(handle)  # streamed, never read whole
        for chunk in _chunks(messages, ARCHIVE_LINES_PER_COMMIT):
            result = chat_capture.store_messages(session, chunk, origin="file", now=runtime.clock())
            session.commit()  # the capture job starts after this commit
            total.stored += result.stored
            total.duplicates += result.duplicates
            total.rejected += result.rejected
            room = chat_capture.MAX_REJECTIONS_KEPT - len(total.rejections)
            total.rejections += result.rejections[:room]
            jobs.let_writers_in(runtime.db)
    click.echo(
        f"新存入 {total.stored} 条，已导入过 {total.duplicates} 条，无法识别 {total.rejected} 条"
    )
    for line, reason in total.rejections:
        click.echo(f"  第 {line} 行：{reason}")
    if capture_now:
        counts, _ = capture.run_capture(runtime)
        click.echo(_describe_capture(counts))
    elif total.stored:
        click.echo("已交给后台 worker 生成跟进（`wecrm worker` 需在运行）。")
    if total.rejected:
        sys.exit(1)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _describe_capture(counts: dict[str, int]) -> str:
    parts = [f"{label} {counts.get(key, 0)}" for key, label in CAPTURE_LABELS.items()]
    skipped = [
        f"{label} {counts[f'skipped_{key}']}"
        for key, label in SKIP_LABELS.items()
        if counts.get(f"skipped_{key}")
    ]
    if skipped:
        parts.append(f"跳过：{'、'.join(skipped)}")
    return "生成跟进完成：" + "，".join(parts)


@main.command("sync-users")
def sync_users() -> None:
    """Load teams and people from WeCom's directory (department + user list APIs)."""
    runtime = _runtime()
    if not runtime.settings.wecom_configured:
        raise click.ClickException("请先配置 WECOM_CORP_ID 和 WECOM_SECRET")
    try:
        departments = runtime.wecom.list_departments()
        members = [m for d in departments for m in runtime.wecom.list_department_users(d["id"])]
    except WeComError as error:
        raise click.ClickException(f"企业微信返回错误 {error.errcode}: {error.errmsg}") from None
    with runtime.db.session() as session:
        report = users.sync_directory(
            session, departments=departments, members=members, now=runtime.clock()
        )
        session.commit()
    click.echo(
        f"团队新增 {report.teams_created}；成员新增 {report.users_created}，"
        f"更新 {report.users_updated}，停用 {report.users_deactivated}"
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    envvar="WECRM_PORT",
    show_envvar=True,
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
)
@click.option(
    "--fake-wecom-port",
    envvar="WECRM_FAKE_WECOM_PORT",
    show_envvar=True,
    type=click.IntRange(1, 65535),
    help="The fake WeCom's port  [default: 8801, or any free port when 8801 is taken]",
)
@click.option("--customers", default=1200, show_default=True, type=click.IntRange(min=1))
def demo(host: str, port: int, fake_wecom_port: int | None, customers: int) -> None:
    """Run everything on the embedded default with a believable sample company."""
    # Imported here so the other commands start without loading the demo's company planner.
    from wecrm.demo.supervisor import run_demo

    run_demo(host=host, port=port, fake_wecom_port=fake_wecom_port, customer_count=customers)


if __name__ == "__main__":
    main()
