"""POST /archive/imports: the boss uploads a chat archive export; the worker captures it."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from sqlalchemy import func, select

from crm import chat_capture
from models import ArchiveMessage
from tests.archive import CUSTOMER_ID, Chat
from tests.factories import make_company, sign_in
from workers import queues


def export_file(messages) -> bytes:
    return "\n".join(json.dumps(m, ensure_ascii=False) for m in messages).encode()


def upload(client, headers, data: bytes, name="archive.jsonl"):
    return client.post(
        "/api/v1/archive/imports",
        headers=headers,
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_the_boss_uploads_an_export_and_the_capture_job_is_queued(
    client, session, fake_wecom, runtime, clock
):
    boss = make_company(session).boss
    headers = sign_in(client, fake_wecom, boss)
    chat = Chat(clock() - timedelta(days=1))
    data = export_file(chat.quote("rep00")) + b"\n{broken\n"
    response = upload(client, headers, data)
    assert response.status_code == 200, response.json
    assert response.json == {
        "stored": 3,
        "duplicates": 0,
        "rejected": 1,
        "rejections": [{"line": 4, "reason": "not JSON"}],
    }
    assert queues.queue(runtime.redis, queues.CAPTURE).count == 1
    again = upload(client, headers, data).json
    assert (again["stored"], again["duplicates"]) == (0, 3)
    assert session.scalar(select(func.count()).select_from(ArchiveMessage)) == 3


def test_only_the_boss_may_upload(client, session, fake_wecom, clock):
    company = make_company(session)
    data = export_file(Chat(clock()).quote("rep00"))
    for person in (company.managers[0], company.reps[0][0]):
        response = upload(client, sign_in(client, fake_wecom, person), data)
        assert response.status_code == 403
        assert response.json["error"]["code"] == "forbidden"
    assert session.scalar(select(func.count()).select_from(ArchiveMessage)) == 0


def test_an_upload_without_a_file_an_empty_one_or_a_too_large_one_is_refused(
    client, session, fake_wecom, monkeypatch
):
    headers = sign_in(client, fake_wecom, make_company(session).boss)
    missing = client.post(
        "/api/v1/archive/imports", headers=headers, data={}, content_type="multipart/form-data"
    )
    assert (missing.status_code, missing.json["error"]["code"]) == (422, "required")
    empty = upload(client, headers, b"")
    assert (empty.status_code, empty.json["error"]["code"]) == (422, "empty_archive")
    monkeypatch.setattr(chat_capture, "MAX_EXPORT_BYTES", 1024)
    large = upload(client, headers, b"{}\n" * 400)
    assert (large.status_code, large.json["error"]["code"]) == (422, "archive_too_large")
    assert "wecrm import-archive" in large.json["error"]["message"]


def test_an_upload_without_signing_in_is_refused(client, clock):
    response = upload(client, {}, export_file(Chat(clock()).quote("rep00", CUSTOMER_ID)))
    assert response.status_code == 401
