"""Recordings through the follow-up API: statuses, transcript, reasons, and scope."""

from __future__ import annotations

import io

from crm import recordings
from models import Recording
from tests.factories import make_company, make_customer, sign_in

PDF = b"%PDF-1.4 quote"
AMR = b"#!AMR\n" + bytes(64)


def _timeline_follow_up(client, headers, customer_id):
    response = client.get(f"/api/v1/customers/{customer_id}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["customer"], response.json["timeline"][0]["follow_up"]


def test_a_voice_follow_up_shows_its_recordings_status_from_queued_to_done(
    client, session, fake_wecom, clock, runtime
):
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock(), stage="意向")
    headers = sign_in(client, fake_wecom, rep)
    response = client.post(
        f"/api/v1/customers/{customer.id}/follow-ups",
        headers=headers,
        data={
            "method": "电话",
            "files": [(io.BytesIO(AMR), "通话.amr"), (io.BytesIO(PDF), "报价单.pdf")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    answer = response.json
    assert answer["summary"] == "语音跟进" and answer["transcript"] is None
    (recording,) = answer["recordings"]
    audio = next(a for a in answer["attachments"] if a["filename"] == "通话.amr")
    assert recording["attachment_id"] == audio["id"]
    assert (recording["status"], recording["reason"], recording["transcript"]) == (
        "queued",
        None,
        None,
    )
    stage, follow_up = _timeline_follow_up(client, headers, customer.id)
    assert stage["stage"] == "意向" and follow_up["recordings"][0]["status"] == "queued"

    recordings.claim(session, recording["id"], clock())
    session.commit()
    _, follow_up = _timeline_follow_up(client, headers, customer.id)
    assert follow_up["recordings"][0]["status"] == "running"

    recordings.finish(
        session, recording["id"], "已发送正式报价单", clock(), language="zh", duration_seconds=3.5
    )
    session.commit()
    stage, follow_up = _timeline_follow_up(client, headers, customer.id)
    assert stage["stage"] == "报价"
    assert follow_up["transcript"] == "已发送正式报价单"
    assert follow_up["capture"]["categories"] == ["报价"]
    shown = follow_up["recordings"][0]
    assert (shown["status"], shown["transcript"], shown["language"]) == (
        "done",
        "已发送正式报价单",
        "zh",
    )
    assert shown["duration_seconds"] == 3.5


def test_a_failed_recording_shows_its_reason_and_keeps_its_file(
    client, session, fake_wecom, clock, runtime
):
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock())
    headers = sign_in(client, fake_wecom, rep)
    response = client.post(
        f"/api/v1/customers/{customer.id}/follow-ups",
        headers=headers,
        data={"method": "拜访", "summary": "现场量房", "files": [(io.BytesIO(AMR), "现场.amr")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    recording_id = response.json["recordings"][0]["id"]
    recordings.fail(session, recording_id, "录音已损坏，无法识别", clock())
    session.commit()
    _, follow_up = _timeline_follow_up(client, headers, customer.id)
    assert follow_up["recordings"][0]["status"] == "failed"
    assert follow_up["recordings"][0]["reason"] == "录音已损坏，无法识别"
    attachment_id = session.get(Recording, recording_id).attachment_id
    download = client.get(
        f"/api/v1/customers/{customer.id}/attachments/{attachment_id}", headers=headers
    )
    assert download.status_code == 200 and download.data == AMR
    download.close()


def test_another_teams_rep_sees_no_recording_and_cannot_add_one(
    client, session, fake_wecom, clock, runtime
):
    company = make_company(session)
    rep, stranger = company.reps[0][0], company.reps[1][0]
    customer = make_customer(session, rep, clock())
    headers = sign_in(client, fake_wecom, stranger)
    assert client.get(f"/api/v1/customers/{customer.id}", headers=headers).status_code == 404
    response = client.post(
        f"/api/v1/customers/{customer.id}/follow-ups",
        headers=headers,
        data={"method": "电话", "files": [(io.BytesIO(AMR), "通话.amr")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 404
    assert session.query(Recording).count() == 0


def test_a_follow_up_without_text_or_audio_is_refused(client, session, fake_wecom, clock, runtime):
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock())
    headers = sign_in(client, fake_wecom, rep)
    response = client.post(
        f"/api/v1/customers/{customer.id}/follow-ups",
        headers=headers,
        data={"method": "电话", "summary": "", "files": [(io.BytesIO(PDF), "报价单.pdf")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert response.json["error"]["code"] == "required"
