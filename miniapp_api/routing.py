"""A thin layer over Flask: each operation declares its schemas once, and the same pydantic
models validate the request, serialise the response and build the OpenAPI document."""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Blueprint, Response, g, request
from pydantic import BaseModel

from crm.errors import NotFound
from miniapp_api import errors


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI style: /customers/{customer_id}
    summary: str
    tag: str
    handler: Callable[..., Any]
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    files: str | None = None  # the form part holding uploads; the body may then be multipart
    response: type[BaseModel] | None = None
    status: int = 200
    file_response: tuple[str, ...] = ()  # media types of a download
    public: bool = False
    error_statuses: tuple[int, ...] = field(default=(400, 401, 403, 404, 409, 413, 415, 422, 503))


OPERATIONS: list[Operation] = []
MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL


def operation(
    blueprint: Blueprint,
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    files: str | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    file_response: tuple[str, ...] = (),
    public: bool = False,
    rate_limited: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an API operation: validate in, call the handler, commit, serialise out.
    A rate-limited operation may also answer 429 (documented with its Retry-After header)."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        op = Operation(
            method,
            path,
            summary,
            tag,
            handler,
            query,
            body,
            files,
            response,
            status,
            file_response,
            public,
        )
        if rate_limited:
            op = replace(op, error_statuses=(*op.error_statuses, 429))
        OPERATIONS.append(op)

        @functools.wraps(handler)
        def view(**path_args: Any) -> Response | tuple[Any, int]:
            if not public:
                errors.require_actor()
            if any(value > MAX_ID for value in path_args.values()):
                raise NotFound()  # beyond any id the database can hold
            _refuse_unknown_parameters(query)
            kwargs: dict[str, Any] = dict(path_args)
            if query is not None:
                kwargs["query"] = query.model_validate(_query_values(query))
            if body is not None:
                kwargs["body"] = _parse_body(body, multipart=files is not None)
            result = handler(**kwargs)
            g.session.commit()  # the edge owns the transaction
            if isinstance(result, Response):
                return result
            if response is None:
                return "", status
            return response.model_validate(result, from_attributes=True).model_dump(
                mode="json"
            ), status

        rule = _flask_rule(path)
        blueprint.add_url_rule(rule, endpoint=handler.__name__, view_func=view, methods=[method])
        return handler

    return decorate


def uploaded_files(name: str = "files") -> list[tuple[str, bytes]]:
    """Files of a multipart request as (filename, bytes)."""
    files = []
    for upload in request.files.getlist(name):
        with upload.stream:  # large parts are spooled to temp files: release them now
            files.append((upload.filename or "", upload.stream.read()))
    return files


def _parse_body(model: type[BaseModel], *, multipart: bool) -> BaseModel:
    if multipart and request.mimetype == "multipart/form-data":
        values: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            if _is_list(info.annotation):
                items = request.form.getlist(name)
                if items:
                    values[name] = items
            elif name in request.form:
                values[name] = request.form[name]
        return model.model_validate(values)
    if not request.is_json:
        raise errors.UnsupportedMedia()
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise errors.BadJson()
    return model.model_validate(data)


def _refuse_unknown_parameters(query: type[BaseModel] | None) -> None:
    """A query parameter the operation does not declare is a mistake, not something to ignore:
    `?budget_wan=12` would otherwise return every customer as if it had filtered them."""
    declared = query.model_fields if query is not None else {}
    unknown = [name for name in request.args if name not in declared]
    if unknown:
        raise errors.UnknownParameter(unknown[0], tuple(declared))


def _query_values(model: type[BaseModel]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if _is_list(info.annotation):
            items = request.args.getlist(name)
            if items:
                values[name] = items
        elif name in request.args:
            values[name] = request.args[name]
    return values


def _is_list(annotation: Any) -> bool:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_is_list(arg) for arg in typing.get_args(annotation))
    return typing.get_origin(annotation) in (list, tuple)


def _flask_rule(path: str) -> str:
    # /customers/{customer_id} -> /customers/<int:customer_id>: every id in the API is an int.
    parts = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            part = f"<int:{part[1:-1]}>"
        parts.append(part)
    return "/".join(parts)
