"""Sign-in throttling: how often one client address and one WeCom member may try to sign in.

The counts are moving windows in Redis (the `limits` package behind `Runtime.rate_limiter`), so
every web process shares them. Limits are settings in `limits` notation
(WECRM_SIGN_IN_LIMIT_PER_CLIENT, WECRM_SIGN_IN_LIMIT_PER_MEMBER). The client is the request's
peer address; behind our own reverse proxies WECRM_TRUSTED_PROXIES says how many
X-Forwarded-For entries to believe (the app factory installs werkzeug's ProxyFix for it), so a
caller cannot pick the address their attempts are counted under by sending the header.
"""

from __future__ import annotations

import functools
import math
import time

import redis
from flask import request
from limits import RateLimitItem, parse_many

from miniapp_api import messages
from miniapp_api.context import runtime
from miniapp_api.errors import SessionStoreDown, TooManyRequests


def count_client_attempt() -> None:
    """Count a sign-in attempt from this request's address; refuse it past the limit."""
    _count(runtime().settings.sign_in_limit_per_client, "client", request.remote_addr or "")


def count_member_attempt(wecom_userid: str) -> None:
    """Count a sign-in attempt that names this WeCom member; refuse it past the limit."""
    _count(runtime().settings.sign_in_limit_per_member, "member", wecom_userid)


@functools.cache
def _limits(notation: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(notation))  # checked at start-up by config.Settings


def _count(notation: str, *who: str) -> None:
    limiter = runtime().rate_limiter
    try:
        for item in _limits(notation):
            if not limiter.hit(item, "sign-in", *who):
                reset_at = limiter.get_window_stats(item, "sign-in", *who).reset_time
                wait = max(1, math.ceil(reset_at - time.time()))
                raise TooManyRequests(
                    messages.TOO_MANY_SIGN_INS.format(seconds=wait), retry_after_seconds=wait
                )
    except redis.RedisError:
        # Unthrottled sign-in would let a flood through to WeCom; refuse until Redis is back.
        raise SessionStoreDown(messages.SIGN_IN_UNAVAILABLE) from None
