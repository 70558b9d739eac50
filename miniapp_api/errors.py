"""One error envelope for the whole API: {"error": {"code", "message", "field"}} with a 4xx."""

from __future__ import annotations

import logging

from flask import Flask, g
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from crm.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from miniapp_api import messages

log = logging.getLogger(__name__)

DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    Invalid: 422,
    Forbidden: 403,
    Conflict: 409,
}
HTTP_CODES = {
    404: ("no_such_route", messages.NO_SUCH_ROUTE),
    405: ("method_not_allowed", messages.METHOD_NOT_ALLOWED),
    413: ("too_large", messages.TOO_LARGE),
    415: ("unsupported_media_type", messages.UNSUPPORTED_MEDIA),
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(DomainError):
    """An error of the HTTP edge itself (authentication, malformed requests)."""

    status = 400


class BadJson(ApiError):
    code = "bad_json"

    def __init__(self) -> None:
        super().__init__(messages.BAD_JSON)


class UnsupportedMedia(ApiError):
    code = "unsupported_media_type"
    status = 415

    def __init__(self) -> None:
        super().__init__(messages.UNSUPPORTED_MEDIA)


class UnknownParameter(ApiError):
    code = "unknown_parameter"

    def __init__(self, name: str, declared: tuple[str, ...]) -> None:
        if declared:
            message = messages.UNKNOWN_PARAMETER.format(name=name, declared="、".join(declared))
        else:
            message = messages.NO_PARAMETERS.format(name=name)
        super().__init__(message, field=name)


class Unauthenticated(ApiError):
    code = "unauthenticated"
    status = 401


class TooManyRequests(ApiError):
    """Past a rate limit; answered with a Retry-After header of the seconds to wait."""

    code = "too_many_requests"
    status = 429

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class SessionStoreDown(ApiError):
    """Redis, which holds sign-in counts and logged-out tokens, cannot be reached."""

    code = "session_store_unavailable"
    status = 503


def require_actor() -> None:
    """Refuse the request unless authentication put an actor on `g`."""
    if g.get("actor") is None:
        raise g.get("auth_error") or Unauthenticated(messages.UNAUTHENTICATED)


def envelope(code: str, message: str, status: int, field: str | None = None) -> tuple[dict, int]:
    return ErrorBody(
        error=ErrorDetail(code=code, message=message, field=field)
    ).model_dump(), status


def register(app: Flask) -> None:
    """Install the handlers that turn every failure into the envelope."""

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError) -> tuple[dict, int, dict[str, str]]:
        _rollback()
        status = getattr(error, "status", None) or next(
            (s for cls, s in DOMAIN_STATUS.items() if isinstance(error, cls)), 400
        )
        headers = {}
        if isinstance(error, TooManyRequests):
            headers["Retry-After"] = str(error.retry_after_seconds)
        return *envelope(error.code, error.message, status, error.field), headers

    @app.errorhandler(ValidationError)
    def validation_error(error: ValidationError) -> tuple[dict, int]:
        _rollback()
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        reason = messages.VALIDATION_REASONS.get(first["type"], "格式不正确")
        return envelope(
            "validation_failed", messages.VALIDATION.format(field=field, reason=reason), 422, field
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[dict, int]:
        _rollback()
        status = error.code or 500
        code, message = HTTP_CODES.get(status, ("bad_request", messages.BAD_REQUEST))
        return envelope(code, message, status if status < 500 else 400)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[dict, int]:
        _rollback()
        log.exception("unhandled error")
        return envelope("internal_error", messages.INTERNAL, 500)


def _rollback() -> None:
    session = g.get("session")
    if session is not None:
        session.rollback()
