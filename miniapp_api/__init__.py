"""The mini-app API under /api/v1: one module per resource, one error envelope, one OpenAPI doc."""

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api/v1")

# Importing the resource modules registers their operations on the blueprint.
from miniapp_api import (  # noqa: E402,F401
    analytics,
    archive,
    auth,
    capture,
    custom_fields,
    customers,
    docs,
    emails,
    imports,
    notifications,
    openapi,
    orders,
    people,
    pool,
    rules,
    similar,
    tasks,
)
