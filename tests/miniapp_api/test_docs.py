"""The API reference: Swagger UI served by the app from an installed package, and a request
example for every operation, each one its own model accepts."""

from __future__ import annotations

import re

import pytest

from miniapp_api.examples import EXAMPLES
from tests.factories import make_company, sign_in


@pytest.fixture
def document(client):
    return client.get("/api/v1/openapi.json").json


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_with_a_body_shows_an_example_of_it(document):
    missing = [
        f"{name} ({media})"
        for name, operation in _operations(document)
        for media, content in operation.get("requestBody", {}).get("content", {}).items()
        if "example" not in content
    ]
    assert missing == []


def test_every_path_and_query_parameter_shows_an_example(document):
    missing = [
        f"{name} {parameter['name']}"
        for name, operation in _operations(document)
        for parameter in operation["parameters"]
        if "example" not in parameter
    ]
    assert missing == []


@pytest.mark.parametrize("model", list(EXAMPLES), ids=lambda m: m.__name__)
def test_each_example_is_accepted_by_its_own_model(model):
    model.model_validate(EXAMPLES[model])


def test_a_stage_move_shows_that_it_takes_a_cause(document):
    body = document["paths"]["/customers/{customer_id}/stage"]["post"]["requestBody"]
    assert body["content"]["application/json"]["example"]["cause"]


def test_the_rule_document_example_is_one_the_rule_checker_accepts(
    client, session, fake_wecom, document
):
    headers = sign_in(client, fake_wecom, make_company(session).boss)
    body = document["paths"]["/rule-sets/validate"]["post"]["requestBody"]
    example = body["content"]["application/json"]["example"]

    response = client.post("/api/v1/rule-sets/validate", headers=headers, json=example)

    assert response.status_code == 200, response.json
    assert response.json == {"valid": True, "problems": []}


def test_the_reference_page_and_every_file_it_loads_answer_from_the_app(client):
    page = client.get("/api/v1/docs")
    html = page.get_data(as_text=True)

    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "wecrm 接口文档" in html
    assert '"/api/v1/openapi.json"' in html
    assert "validatorUrl: null" in html  # Swagger UI would otherwise call an online validator
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # no CDN
    assets = re.findall(r"(?:src|href)=\"([^\"]+)\"", html)
    assert len(assets) == 3
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert response.data, asset
        response.close()


def test_files_of_the_package_the_page_does_not_load_are_not_served(client):
    response = client.get("/api/v1/docs/index.html")  # the package's page fetches a petstore
    assert response.status_code == 404
    assert response.json["error"]["code"] == "no_such_route"
