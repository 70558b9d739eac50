"""The customer schemas of the API are the field catalogue's: every field is a property with its
kind, vocabulary and size, and yes/no fields read the same spellings as imports do."""

import pytest

from crm.fields import CATALOGUE, FieldKind
from tests.factories import make_company, sign_in

OWN_PROPERTIES = {
    "CustomerIn": {"stage", "owner_id", "tags", "custom_values"},
    "CustomerPatch": {"grade", "reason", "tags", "custom_values"},
}


@pytest.fixture
def components(client):
    return client.get("/api/v1/openapi.json").json["components"]["schemas"]


@pytest.mark.parametrize("schema", ["CustomerIn", "CustomerPatch"])
def test_a_write_takes_every_editable_field_of_the_catalogue(components, schema):
    editable = {f.key for f in CATALOGUE if f.is_editable}
    assert set(components[schema]["properties"]) == editable | OWN_PROPERTIES[schema]
    assert components["CustomerIn"]["required"] == ["name"]


def test_a_customer_shows_every_field_of_the_catalogue(components):
    properties = components["CustomerOut"]["properties"]
    assert {f.key for f in CATALOGUE} <= set(properties)
    required = set(components["CustomerOut"]["required"])
    assert {f.key for f in CATALOGUE} <= required


@pytest.mark.parametrize("field", [f for f in CATALOGUE if f.is_editable], ids=lambda f: f.key)
def test_each_field_is_described_by_its_kind(components, field):
    described = components["CustomerPatch"]["properties"][field.key]
    options = described.get("anyOf", [described])  # nullable fields: [the type, null]
    schema = options[0]
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if field.kind is FieldKind.ENUM:
        assert schema["enum"] == list(field.choices)
    elif field.kind is FieldKind.TEXT:
        assert (schema["type"], schema["maxLength"]) == ("string", field.max_length)
    elif field.kind is FieldKind.NUMBER:
        assert schema["type"] == ("integer" if field.is_whole_number else "number")
        assert (schema["minimum"], schema["maximum"]) == (0, float(field.maximum))
    else:
        assert schema["type"] == "boolean"
    assert (len(options) == 2) == field.is_nullable


def test_yes_no_fields_take_the_words_imports_take(client, session, fake_wecom):
    headers = sign_in(client, fake_wecom, make_company(session).reps[0][0])

    created = client.post(
        "/api/v1/customers",
        headers=headers,
        json={"name": "佛山陶瓷厂", "has_budget": "√", "attended_expo": "无"},
    )
    assert created.status_code == 201, created.json
    assert (created.json["has_budget"], created.json["attended_expo"]) == (True, False)

    changed = client.patch(
        f"/api/v1/customers/{created.json['id']}",
        headers=headers,
        json={"has_budget": "×", "attended_expo": True},
    )
    assert changed.status_code == 200, changed.json
    assert (changed.json["has_budget"], changed.json["attended_expo"]) == (False, True)

    for word in ("也许", "on", None):
        refused = client.patch(
            f"/api/v1/customers/{created.json['id']}", headers=headers, json={"has_budget": word}
        )
        assert refused.status_code == 422, (word, refused.json)
        assert refused.json["error"]["field"] == "has_budget"
