"""Sign-in: WeCom's jscode2session turns a mini-app code into a user and a signed token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import g, request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from crm import users
from crm.actors import Actor
from crm.errors import NotFound
from miniapp_api import api, messages
from miniapp_api.context import runtime, session
from miniapp_api.errors import ApiError, Unauthenticated
from miniapp_api.routing import operation
from miniapp_api.schemas import DevLoginIn, LoginIn, TokenOut, UserOut
from models import User
from wecom.client import WeComError, WeComUnavailable

TOKEN_SALT = "wecrm-api-token"


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


def issue_token(user: User) -> TokenOut:
    """A signed token that names the user; it expires after the configured TTL."""
    ttl = runtime().settings.token_ttl_seconds
    token = _serializer().dumps({"uid": user.id})
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
    try:
        payload = _serializer().loads(token.strip(), max_age=runtime().settings.token_ttl_seconds)
    except SignatureExpired:
        g.auth_error = Unauthenticated(messages.TOKEN_EXPIRED, code="token_expired")
        return
    except BadSignature:
        g.auth_error = Unauthenticated(messages.TOKEN_INVALID, code="token_invalid")
        return
    user = session().get(User, payload.get("uid")) if isinstance(payload, dict) else None
    if user is None or not user.is_active:
        g.auth_error = Unauthenticated(messages.USER_INACTIVE, code="user_inactive")
        return
    g.actor = Actor.of(user)


@operation(
    api,
    "POST",
    "/auth/login",
    summary="用企业微信小程序登录码登录",
    tag="auth",
    body=LoginIn,
    response=TokenOut,
    public=True,
)
def login(body: LoginIn) -> TokenOut:
    try:
        info = runtime().wecom.code_to_session(body.code)
    except WeComUnavailable:
        raise WeComDown(messages.WECOM_UNAVAILABLE) from None
    except WeComError:
        raise Unauthenticated(messages.BAD_CODE, code="bad_code") from None
    user = users.user_by_wecom_id(session(), info.get("userid", ""))
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
)
def dev_login(body: DevLoginIn) -> TokenOut:
    if not runtime().settings.dev_login:
        raise NotFound("接口")  # the route does not exist outside the demo
    user = users.user_by_wecom_id(session(), body.userid)
    if user is None or not user.is_active:
        raise NotFound("成员")
    return issue_token(user)


@operation(api, "GET", "/me", summary="当前登录成员", tag="auth", response=UserOut)
def me() -> User:
    return session().get(User, g.actor.user_id)
