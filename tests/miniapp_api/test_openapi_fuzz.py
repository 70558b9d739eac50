"""Schemathesis fuzzes the API from its own OpenAPI document: no 500, no response that breaks
the documented schema, status or content type, for a boss and for a rep."""

from __future__ import annotations

import gc

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import make_company, make_customer, sign_in

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.fixture
def _collect_downloads():
    """Collect unclosed downloads at the end of each operation, under its warning filter."""
    yield
    gc.collect()


@pytest.fixture
def fuzz_headers(session, client, fake_wecom, clock, _collect_downloads):
    """A small company with customers; the fuzzer acts as the boss and as a rep in turn."""
    company = make_company(session)
    for team in company.reps:
        for rep in team:
            make_customer(session, rep, clock(), phone=None, tags=["老客户"])
    return [
        sign_in(client, fake_wecom, company.boss),
        sign_in(client, fake_wecom, company.reps[0][0]),
    ]


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
# Schemathesis never closes a streamed response, so a downloaded attachment's file is closed
# by the garbage collector instead.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning"
)
@settings(
    max_examples=40,
    derandomize=True,  # the same cases on every run, so CI is not a lottery
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_honours_its_openapi_document(case, fuzz_headers):
    for headers in fuzz_headers:
        case.call_and_validate(headers=headers, checks=CHECKS)


def test_openapi_document_describes_every_operation(client):
    from miniapp_api.routing import OPERATIONS

    document = client.get("/api/v1/openapi.json").json
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == {(op.path, op.method.lower()) for op in OPERATIONS}
    assert document["openapi"].startswith("3.")
