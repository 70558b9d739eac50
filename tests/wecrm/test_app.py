"""The app factory's wiring that every answer shares."""

from __future__ import annotations

import pytest

from tests.factories import make_company, sign_in


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/api/v1/me"),  # 401, the error envelope
        ("GET", "/api/v1/no-such-route"),
        ("POST", "/wecom/callback"),  # refused: unsigned
    ],
)
def test_every_answer_forbids_content_sniffing(client, method, path):
    response = client.open(path, method=method)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_signed_in_answer_forbids_content_sniffing(client, session, fake_wecom):
    headers = sign_in(client, fake_wecom, make_company(session).boss)
    response = client.get("/api/v1/customers", headers=headers)
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
