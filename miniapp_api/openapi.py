"""The OpenAPI 3.1 document, built from the operations and the very models that validate them."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from miniapp_api import api
from miniapp_api.errors import ErrorBody
from miniapp_api.examples import EXAMPLES, PATH_EXAMPLES
from miniapp_api.routing import MAX_ID, OPERATIONS, Operation

REF_TEMPLATE = "#/components/schemas/{model}"
ERROR_DESCRIPTIONS = {
    400: "请求格式错误",
    401: "未登录或登录已失效",
    403: "角色无权执行",
    404: "不存在或不在权限范围内",
    409: "与现有数据冲突",
    413: "上传内容过大",
    415: "请求内容类型不支持",
    422: "字段校验失败",
    429: "尝试过于频繁，稍后再试",
    503: "企业微信或 Redis 暂时不可用",
}
RETRY_AFTER_HEADER = {
    "description": "还需等待的秒数",
    "schema": {"type": "integer", "minimum": 1},
}

# Shown at the top of the API reference page.
DESCRIPTION = """wecrm 小程序后端接口。每个接口都附有请求示例（点开接口即可看到）。

**登录**：小程序用 `POST /auth/login`（企业微信 `wx.qy.login` 返回的 code）换取 token；
演示环境也可以用 `POST /auth/dev-login` 按企业微信账号直接登录。把 token 填进右上角的
**Authorize**，之后的请求都会带上 `Authorization: Bearer <token>`。登录尝试过于频繁时返回 429
`too_many_requests`，响应头 `Retry-After` 给出要等待的秒数。`POST /auth/logout` 让当前 token
立即失效；`POST /users/{user_id}/sessions/revoke` 让一位成员的全部 token 失效。

**权限**：销售只看到自己的客户，主管看到本团队，老板看到全部；看不到的记录一律返回 404。

**错误**：所有错误都是 `{"error": {"code", "message", "field"}}`，`code` 稳定可供程序判断，`message`
是给人看的中文说明；未声明的查询参数返回 400 `unknown_parameter`。"""


@functools.cache
def build_document() -> dict[str, Any]:
    """Paths, parameters, bodies and responses for every registered operation."""
    models: set[tuple[type[BaseModel], str]] = {(ErrorBody, "serialization")}
    for op in OPERATIONS:
        if op.body:
            models.add((op.body, "validation"))
        if op.response:
            models.add((op.response, "serialization"))
    keys, defs = models_json_schema(
        sorted(models, key=lambda m: (m[0].__name__, m[1])), ref_template=REF_TEMPLATE
    )
    schemas = defs.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, keys, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "wecrm mini-app API", "version": "1", "description": DESCRIPTION},
        "servers": [{"url": api.url_prefix}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(op: Operation, keys: dict, schemas: dict) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.handler.__name__,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _path_parameters(op.path) + _query_parameters(op, schemas),
        "responses": _responses(op, keys),
    }
    if not op.public:
        doc["security"] = [{"bearer": []}]
    if op.body:
        body_ref = keys[(op.body, "validation")]
        content: dict[str, Any] = {"application/json": {"schema": body_ref}}
        if op.files:
            content["multipart/form-data"] = {"schema": _multipart_schema(op, schemas)}
        if op.body in EXAMPLES:
            for media in content.values():
                media["example"] = EXAMPLES[op.body]
        doc["requestBody"] = {"required": True, "content": content}
    return doc


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = [p[1:-1] for p in path.split("/") if p.startswith("{")]
    return [
        {
            "name": n,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            **({"example": PATH_EXAMPLES[n]} if n in PATH_EXAMPLES else {}),
        }
        for n in names
    ]


def _query_parameters(op: Operation, schemas: dict) -> list[dict[str, Any]]:
    if op.query is None:
        return []
    schema = op.query.model_json_schema(ref_template=REF_TEMPLATE)
    schemas.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    examples = EXAMPLES.get(op.query, {})
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
            "style": "form",
            "explode": True,
            **({"example": examples[name]} if name in examples else {}),
        }
        for name, prop in schema["properties"].items()
    ]


def _multipart_schema(op: Operation, schemas: dict) -> dict[str, Any]:
    """The same fields as form parts, plus the uploaded files."""
    assert op.body is not None and op.files is not None
    schema = op.body.model_json_schema(ref_template=REF_TEMPLATE)
    schemas.update(schema.pop("$defs", {}))
    schema["properties"][op.files] = {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
    }
    return schema


def _responses(op: Operation, keys: dict) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if op.response:
        responses[str(op.status)] = {
            "description": "成功",
            "content": {"application/json": {"schema": keys[(op.response, "serialization")]}},
        }
    elif op.file_response:
        responses[str(op.status)] = {
            "description": "文件",
            "content": {
                m: {"schema": {"type": "string", "format": "binary"}} for m in op.file_response
            },
        }
    else:
        responses[str(op.status)] = {"description": "成功"}
    error_ref = keys[(ErrorBody, "serialization")]
    for status in op.error_statuses:
        responses[str(status)] = {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": error_ref}},
        }
        if status == 429:
            responses[str(status)]["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
    return responses


@api.get("/openapi.json")
def openapi_document() -> dict[str, Any]:
    return build_document()
