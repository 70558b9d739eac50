"""The running wecrm the voice benchmarks measure: the whole job of bench/transcription.py and
the bot path of bench/voice_bot.py.

Real processes on 127.0.0.1, as the fault suite starts them (bench/faults.py): gunicorn through
`bench.servers` (as `wecrm serve` runs it, 2 × 4 threads), one `wecrm worker` (which starts the
transcription worker of its own, the model loaded before its first job) and a private
`redis-server` on a free port. The fake WeCom runs in the benchmark's process
(`fake_wecom.server.FakeWeCom`), so a voice message's audio is put at its media/get with
`add_media` and the replies are read from its message log without an HTTP round trip.

The embedded default: a fresh SQLite database per run in `bench/results/voice/`, beside the data
folder the app and the worker share (uploads, and the bundled model, assembled there once and
kept between runs). The benchmark's own bare calls load the model from that same folder
(`bench_settings`). The speech is English, so `WECRM_WHISPER_LANGUAGE` is `en` for the worker as
for the bare calls.

The company: a boss, a manager and a rep (`rep00`) in one team, the customers a benchmark asks
for owned by the rep, in 意向. On top of the default rule pack, the word "contract" (said in
the recordings) is a 合同 keyword, and a trigger rule on it gives the owner a task and sends the
manager a WeCom message, so a recording's capture and triggers do real work.
"""

from __future__ import annotations

import copy
import shutil
import signal
import sys
from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType

import requests
from sqlalchemy import func, insert, select

from bench.cpu import group_pids, process_ticks
from bench.faults import PrivateRedis, Process
from bench.seed import RESULTS_DIR
from bench.servers import Served
from config import Settings
from crm.actors import Actor
from crm.rules import publisher
from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from crm.vocab import Stage
from fake_wecom.callback import CallbackApp, new_aes_key, new_token
from fake_wecom.server import FakeWeCom
from models import Customer, Database, FollowUp, Task, Team, User
from models.users import Role

STACK_DIR = RESULTS_DIR / "voice"
DATA_DIR = STACK_DIR / "data"
CORP_ID = "wwvoicebench"
AGENT_ID = 1000002
WECOM_SECRET = "voice-bench-secret"
LANGUAGE = "en"  # the recordings are English; the worker is told so, as the bare calls are
REP = "rep00"
CONTRACT_WORD = "contract"
TASK_TITLE = "跟进合同：{customer}"
HTTP_TIMEOUT_SECONDS = 60


def bench_settings() -> Settings:
    """The settings of the benchmark's own bare calls: the environment's (`WECRM_WHISPER_*`
    apply), with the stack's data folder, so they load the very model the worker loads."""
    return replace(Settings.from_env(), data_dir=DATA_DIR)


def rule_documents() -> dict[str, dict]:
    """The default keywords and triggers, plus "contract" as a 合同 word and a rule on it."""
    keywords = copy.deepcopy(DEFAULT_DOCUMENTS["keywords"])
    contract = next(c for c in keywords["categories"] if c["name"] == "合同")
    contract["words"].append(CONTRACT_WORD)
    triggers = copy.deepcopy(DEFAULT_DOCUMENTS["triggers"])
    triggers["rules"].append(
        {
            "name": "说到合同",
            "on": "follow_up_created",
            "when": {"fact": "follow_up.text", "op": "contains", "value": CONTRACT_WORD},
            "do": [
                {"action": "create_task", "for": "owner", "title": TASK_TITLE, "due_in_hours": 24},
                {"action": "notify", "to": "manager", "text": "「{customer}」谈到了合同。"},
            ],
        }
    )
    return {"keywords": keywords, "triggers": triggers}


class VoiceStack:
    """gunicorn, `wecrm worker`, a private Redis and the fake WeCom over a fresh SQLite database
    seeded with the company and `customers` (names), all stopped on exit."""

    def __init__(self, customers: list[str]) -> None:
        self.customer_names = customers
        self.wecom = FakeWeCom(corp_id=CORP_ID, secret=WECOM_SECRET, agent_id=AGENT_ID)
        self.app = CallbackApp(
            token=new_token(), aes_key=new_aes_key(), corp_id=CORP_ID, agent_id=AGENT_ID
        )
        self.web: Served | None = None
        self.worker: Process | None = None
        self.redis: PrivateRedis | None = None
        self.db: Database | None = None

    def __enter__(self) -> VoiceStack:
        # A benchmark stopped with kill (or timeout) unwinds through __exit__, which stops the
        # processes it started instead of leaving them running.
        signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
        try:
            self._start()
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

    def _start(self) -> None:
        STACK_DIR.mkdir(parents=True, exist_ok=True)
        for path in STACK_DIR.glob("wecrm.sqlite3*"):
            path.unlink()
        shutil.rmtree(bench_settings().uploads_dir, ignore_errors=True)
        for log in STACK_DIR.glob("*.log"):
            log.unlink()
        url = f"sqlite:///{STACK_DIR / 'wecrm.sqlite3'}"
        self.db = Database(url)
        self.db.upgrade()
        self.customer_ids = self._seed(self.db)
        self.redis = PrivateRedis(STACK_DIR)
        self.redis.start()
        self.wecom.start()
        env = {
            "WECRM_DATA_DIR": str(DATA_DIR),
            "WECRM_DATABASE_URL": url,
            "WECRM_REDIS_URL": self.redis.url,
            "WECRM_SECRET_KEY": "voice-bench-signing-key-" + self.app.token,
            "WECRM_DEV_LOGIN": "1",
            "WECRM_WHISPER_LANGUAGE": LANGUAGE,
            "WECOM_CORP_ID": CORP_ID,
            "WECOM_AGENT_ID": str(AGENT_ID),
            "WECOM_SECRET": WECOM_SECRET,
            "WECOM_TOKEN": self.app.token,
            "WECOM_AES_KEY": self.app.aes_key,
            "WECOM_API_BASE": self.wecom.base_url,
        }
        self.web = Served(
            "wecrm", env=env, workers=2, threads=4, log_path=STACK_DIR / "gunicorn.log"
        ).__enter__()
        self.worker = Process(
            "worker",
            [sys.executable, "-m", "wecrm.cli", "worker"],
            env=env,
            log=STACK_DIR / "worker.log",
        ).start()

    def _seed(self, db: Database) -> list[int]:
        now = datetime.now(UTC)
        with db.engine.begin() as conn:
            team_id = conn.execute(
                insert(Team).values(name="语音基准组").returning(Team.id)
            ).scalar_one()
            users = {
                userid: conn.execute(
                    insert(User)
                    .values(wecom_userid=userid, name=name, role=role, team_id=team)
                    .returning(User.id)
                ).scalar_one()
                for userid, name, role, team in (
                    ("boss", "王总", Role.BOSS, None),
                    ("manager0", "主管0", Role.MANAGER, team_id),
                    (REP, "销售00", Role.REP, team_id),
                )
            }
            ids = [
                conn.execute(
                    insert(Customer)
                    .values(
                        name=name,
                        stage=Stage.INTEREST,
                        owner_id=users[REP],
                        team_id=team_id,
                        custom_values={},
                        stage_entered_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(Customer.id)
                ).scalar_one()
                for name in self.customer_names
            ]
        with db.session() as session:
            boss = Actor.of(session.get_one(User, users["boss"]))
            for kind, document in rule_documents().items():
                draft = publisher.create_draft(
                    session, actor=boss, kind=kind, document=document, note=None, now=now
                )
                publisher.publish(session, actor=boss, draft_id=draft.id, reason="基准", now=now)
            session.commit()
        return ids

    def stop(self) -> None:
        """Stop what started, last first; only the processes this stack started."""
        if self.worker is not None:
            self.worker.stop()
        if self.web is not None:
            self.web.stop()
        if self.redis is not None:
            self.redis.process.stop()
        self.wecom.stop()
        if self.db is not None:
            self.db.dispose()

    @property
    def base_url(self) -> str:
        """Where gunicorn listens."""
        assert self.web is not None
        return self.web.base_url

    def token(self, userid: str = REP) -> str:
        """A signed-in token for `userid` (the dev login)."""
        answer = requests.post(
            f"{self.base_url}/api/v1/auth/dev-login",
            json={"userid": userid},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
        answer.raise_for_status()
        return str(answer.json()["token"])

    def tracked_pids(self) -> list[int]:
        """gunicorn's, the workers' (the transcription worker is in the worker's group) and
        Redis's processes."""
        assert self.web is not None and self.worker is not None and self.redis is not None
        groups = [self.web.process, self.worker.process, self.redis.process.process]
        return [pid for process in groups if process is not None for pid in group_pids(process.pid)]

    def cpu_ticks(self) -> dict[str, int]:
        """CPU ticks used so far by the web app and by the workers."""
        assert self.web is not None and self.worker is not None
        assert self.web.process is not None and self.worker.process is not None
        return {
            "web": process_ticks(group_pids(self.web.process.pid)),
            "workers": process_ticks(group_pids(self.worker.process.pid)),
        }

    def effects(self) -> dict[str, int]:
        """What the capture and the triggers left: follow-ups captured as 合同, tasks given."""
        assert self.db is not None
        with self.db.engine.connect() as conn:
            captured = sum(
                "合同" in (capture or {}).get("categories", [])
                for capture in conn.scalars(select(FollowUp.capture))
            )
            tasks = conn.scalar(
                select(func.count()).select_from(Task).where(Task.title.startswith("跟进合同："))
            )
        return {"captured": captured, "tasks": int(tasks or 0)}
