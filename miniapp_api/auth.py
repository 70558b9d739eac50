"""Sign-in and sign-out: WeCom's jscode2session turns a mini-app code into a user and a signed
token; a token can be given up (logout) or revoked with every other token of its person.

A token is itsdangerous-signed and names the user (`uid`), the user's token generation when it
was issued (`gen`) and a random token id (`jti`). On every request, after the signature and the
TTL:

- `gen` must equal `users.token_generation`. Raising the column (revoke-all, a deactivation in
  `crm.users`) kills every token the person holds, durably, and costs nothing: the actor load
  reads that row anyway.
- `jti` must not be in Redis's logged-out set (`wecrm:logged-out:<jti>`, expiring when the token
  would have). A single logout needs a per-token record; Redis holds it only as long as it
  matters. The id is inside the signed payload because the token string itself is not unique:
  base64 ignores a signature's spare low bits, so a logged-out token could be re-spelled.
  When Redis cannot be asked, the request goes on (logged): a logout is the device's own hygiene,
  whereas revoking a lost phone is revoke-all, which lives in the database and never fails open.

Tokens from before these claims carry no `gen`/`jti` and are refused once (the mini-app signs in
again). Sign-in attempts are throttled per client address and per WeCom member
(`miniapp_api.sign_in_limits`), the address limit before WeCom is asked.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from flask import g, request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from crm import users
from crm.actors import Actor
from crm.errors import NotFound
from miniapp_api import api, messages, sign_in_limits
from miniapp_api.context import runtime, session
from miniapp_api.errors import ApiError, SessionStoreDown, Unauthenticated
from miniapp_api.routing import operation
from miniapp_api.schemas import DevLoginIn, LoginIn, TokenOut, UserOut
from models import User
from wecom.client import WeComError, WeComUnavailable

log = logging.getLogger(__name__)

TOKEN_SALT = "wecrm-api-token"
LOGGED_OUT_KEY = "wecrm:logged-out:{token_id}"


class WeComDown(ApiError):
    code = "wecom_unavailable"
    status = 503


class _ClockSigner(TimestampSigner):
    """Token times come from the runtime's clock, so expiry follows the domain's time."""

    def __init__(self, *args: Any, clock: Callable[[], datetime], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def get_timestamp(self) -> int:
        return int(self.clock().timestamp())


def _serializer() -> URLSafeTimedSerializer:
    rt = runtime()
    return URLSafeTimedSerializer(
        rt.settings.secret_key,
        salt=TOKEN_SALT,
        signer=_ClockSigner,
        signer_kwargs={"clock": rt.clock},
    )


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says: whose it is, of which generation, which one, until when."""

    user_id: int
    generation: int
    token_id: str
    expires_at: datetime

    @classmethod
    def of(cls, payload: Any, issued_at: datetime, ttl_seconds: int) -> TokenClaims | None:
        """The claims of a verified payload, or None when it lacks one (an older token)."""
        if not isinstance(payload, dict):
            return None
        uid, gen, jti = payload.get("uid"), payload.get("gen"), payload.get("jti")
        if not (isinstance(uid, int) and isinstance(gen, int) and isinstance(jti, str)):
            return None
        return cls(uid, gen, jti, issued_at + timedelta(seconds=ttl_seconds))


def issue_token(user: User) -> TokenOut:
    """A signed token that names the user; it expires after the configured TTL."""
    ttl = runtime().settings.token_ttl_seconds
    payload = {"uid": user.id, "gen": user.token_generation, "jti": secrets.token_urlsafe(12)}
    token = _serializer().dumps(payload)
    return TokenOut(token=token, expires_in=ttl, user=UserOut.model_validate(user))


@api.before_request
def load_actor() -> None:
    """Read the bearer token, if any; views that need an actor refuse when there is none."""
    g.actor = None
    header = request.headers.get("Authorization", "")
    if not header:
        return
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        g.auth_error = Unauthenticated(messages.TOKEN_INVALID, code="token_invalid")
        return
    ttl = runtime().settings.token_ttl_seconds
    try:
        payload, issued_at = _serializer().loads(token.strip(), max_age=ttl, return_timestamp=True)
    except SignatureExpired:
        g.auth_error = Unauthenticated(messages.TOKEN_EXPIRED, code="token_expired")
        return
    except BadSignature:
        g.auth_error = Unauthenticated(messages.TOKEN_INVALID, code="token_invalid")
        return
    claims = TokenClaims.of(payload, issued_at, ttl)
    if claims is None:
        g.auth_error = Unauthenticated(messages.TOKEN_INVALID, code="token_invalid")
        return
    user = session().get(User, claims.user_id)
    if user is None or not user.is_active:
        g.auth_error = Unauthenticated(messages.USER_INACTIVE, code="user_inactive")
        return
    if claims.generation != user.token_generation or _is_logged_out(claims.token_id):
        g.auth_error = Unauthenticated(messages.TOKEN_REVOKED, code="token_revoked")
        return
    g.actor = Actor.of(user)
    g.token = claims


def _is_logged_out(token_id: str) -> bool:
    try:
        return bool(runtime().redis.exists(LOGGED_OUT_KEY.format(token_id=token_id)))
    except redis.RedisError:
        # Fails open on purpose (module docstring): Redis down must not sign everybody out.
        log.warning("could not check whether a token was logged out: Redis is unreachable")
        return False


@operation(
    api,
    "POST",
    "/auth/login",
    summary="用企业微信小程序登录码登录",
    tag="auth",
    body=LoginIn,
    response=TokenOut,
    public=True,
    rate_limited=True,
)
def login(body: LoginIn) -> TokenOut:
    sign_in_limits.count_client_attempt()  # before WeCom: a flood of bad codes stops here
    try:
        info = runtime().wecom.code_to_session(body.code)
    except WeComUnavailable:
        raise WeComDown(messages.WECOM_UNAVAILABLE) from None
    except WeComError:
        raise Unauthenticated(messages.BAD_CODE, code="bad_code") from None
    wecom_userid = info.get("userid", "")
    sign_in_limits.count_member_attempt(wecom_userid)
    user = users.user_by_wecom_id(session(), wecom_userid)
    if user is None or not user.is_active:
        raise Unauthenticated(messages.UNKNOWN_WECOM_USER, code="unknown_user")
    return issue_token(user)


@operation(
    api,
    "POST",
    "/auth/dev-login",
    summary="演示环境按成员账号登录（仅演示开启）",
    tag="auth",
    body=DevLoginIn,
    response=TokenOut,
    public=True,
    rate_limited=True,
)
def dev_login(body: DevLoginIn) -> TokenOut:
    if not runtime().settings.dev_login:
        raise NotFound("接口")  # the route does not exist outside the demo
    sign_in_limits.count_client_attempt()
    sign_in_limits.count_member_attempt(body.userid)
    user = users.user_by_wecom_id(session(), body.userid)
    if user is None or not user.is_active:
        raise NotFound("成员")
    return issue_token(user)


@operation(
    api,
    "POST",
    "/auth/logout",
    summary="退出登录：当前 token 立即失效",
    tag="auth",
    status=204,
)
def logout() -> None:
    claims: TokenClaims = g.token
    remaining = math.ceil((claims.expires_at - runtime().clock()).total_seconds())
    try:
        runtime().redis.set(
            LOGGED_OUT_KEY.format(token_id=claims.token_id), 1, ex=max(remaining, 1)
        )
    except redis.RedisError:
        raise SessionStoreDown(messages.LOGOUT_UNAVAILABLE) from None


@operation(api, "GET", "/me", summary="当前登录成员", tag="auth", response=UserOut)
def me() -> User:
    return session().get(User, g.actor.user_id)
