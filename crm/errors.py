"""One error type with a stable code and a Chinese message; every edge renders it its own way."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal the user can act on: `code` is stable, `message` is shown to people."""

    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class NotFound(DomainError):
    """The record does not exist or lies outside the actor's scope (never say which)."""

    code = "not_found"

    def __init__(self, what: str = "记录") -> None:
        super().__init__(f"{what}不存在或无权访问")


class Invalid(DomainError):
    """Input breaks a business rule; `field` names the offending field."""

    code = "invalid"


class Forbidden(DomainError):
    """The actor's role does not allow the action at all (scope problems are NotFound)."""

    code = "forbidden"


class Conflict(DomainError):
    """The action clashes with the current state (a duplicate, a stale move)."""

    code = "conflict"
