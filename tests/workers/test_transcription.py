"""The transcription job on a real RQ worker with the real speech model (speech/ and the
bundled faster-whisper base model): an English recording word for word, a silent one, a
corrupt one, a job delivered twice, and an archived voice message captured in its window."""

from __future__ import annotations

import copy
import io
import re
import wave
from datetime import timedelta

from rq import SimpleWorker
from sqlalchemy import select

from crm import chat_capture
from crm.actors import Actor
from crm.followups import StoredFile
from crm.rules import publisher
from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from models import Attachment, FollowUp, Recording
from tests.archive import CUSTOMER_ID, Chat
from tests.audio import CALL_BACK, SIGNED, encode, speech_wav
from tests.factories import make_company, make_customer, sign_in
from workers import queues, transcription

PDF = b"%PDF-1.4 quote"
CORRUPT_WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\xde\xad\xbe\xef" * 64


def silent_wav(seconds: float = 2.0, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def _post(client, headers, customer_id, summary, files):
    response = client.post(
        f"/api/v1/customers/{customer_id}/follow-ups",
        headers=headers,
        data={"method": "电话", "summary": summary, "files": files},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    return response.json


def _work(runtime, queue=queues.TRANSCRIPTION):
    SimpleWorker([queue], connection=runtime.redis).work(burst=True)


def _detail(client, headers, customer_id):
    response = client.get(f"/api/v1/customers/{customer_id}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["customer"], response.json["timeline"][0]["follow_up"]


def test_a_silent_recording_is_done_with_an_empty_transcript_and_the_triggers_run(
    client, session, fake_wecom, clock, runtime
):
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock(), stage="意向")
    headers = sign_in(client, fake_wecom, rep)
    _post(
        client,
        headers,
        customer.id,
        "已发送正式报价单",
        [(io.BytesIO(silent_wav()), "静音.wav"), (io.BytesIO(PDF), "报价单.pdf")],
    )
    assert _detail(client, headers, customer.id)[0]["stage"] == "意向"

    _work(runtime)

    stage, follow_up = _detail(client, headers, customer.id)
    (recording,) = follow_up["recordings"]
    assert (recording["status"], recording["transcript"]) == ("done", "")
    assert follow_up["transcript"] is None
    assert stage["stage"] == "报价"


def test_a_corrupt_recording_fails_with_its_reason_and_keeps_its_file(
    client, session, fake_wecom, clock, runtime
):
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock())
    headers = sign_in(client, fake_wecom, rep)
    answer = _post(client, headers, customer.id, "", [(io.BytesIO(CORRUPT_WAV), "坏.wav")])

    _work(runtime)

    _, follow_up = _detail(client, headers, customer.id)
    (recording,) = follow_up["recordings"]
    assert recording["status"] == "failed" and recording["reason"]
    attachment_id = answer["recordings"][0]["attachment_id"]
    download = client.get(
        f"/api/v1/customers/{customer.id}/attachments/{attachment_id}", headers=headers
    )
    assert download.status_code == 200 and download.data == CORRUPT_WAV
    download.close()


def test_a_job_delivered_twice_transcribes_once(client, session, fake_wecom, clock, runtime):
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock())
    headers = sign_in(client, fake_wecom, rep)
    answer = _post(client, headers, customer.id, "", [(io.BytesIO(silent_wav()), "静音.wav")])
    recording_id = answer["recordings"][0]["id"]
    # The pending key stops a second enqueue; RQ itself may still deliver a job again.
    queues.queue(runtime.redis, queues.TRANSCRIPTION).enqueue(
        transcription.transcribe_recording, recording_id
    )

    _work(runtime)

    session.expire_all()
    recording = session.get(Recording, recording_id)
    assert (recording.status, recording.attempts) == ("done", 1)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def test_an_uploaded_english_recording_comes_back_word_for_word(
    client, session, fake_wecom, clock, runtime
):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), name="王建国", stage="意向")
    session.commit()
    headers = sign_in(client, fake_wecom, rep)
    recording = (io.BytesIO(speech_wav(SIGNED)), "visit.wav")
    follow_up = _post(client, headers, customer.id, "", [recording])
    assert follow_up["recordings"][0]["status"] == "queued"
    _work(runtime)
    _customer, follow_up = _detail(client, headers, customer.id)
    [done] = follow_up["recordings"]
    assert done["status"] == "done"
    assert _words(done["transcript"]) == _words(SIGNED)


def _publish_keywords(session, actor, category, words, now):
    document = copy.deepcopy(DEFAULT_DOCUMENTS["keywords"])
    document["categories"].append({"name": category, "words": words})
    draft = publisher.create_draft(
        session, actor=actor, kind="keywords", document=document, note=None, now=now
    )
    publisher.publish(session, actor=actor, draft_id=draft.id, reason="英文词", now=now)
    session.commit()


def test_an_archived_english_voice_message_is_transcribed_into_its_windows_follow_up(
    session, clock, runtime
):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), name="王建国", stage="意向")
    customer.external_userid = CUSTOMER_ID
    _publish_keywords(session, Actor.of(company.boss), "回电", ["call"], clock())
    voice = Chat(clock() - timedelta(hours=2)).voice(CUSTOMER_ID, [rep.wecom_userid])
    # WeCom voice is AMR-NB at 8 kHz: this sentence comes back word for word from it.
    data = encode(speech_wav(CALL_BACK), "amr")
    key, digest = runtime.store.save(data, suffix=".amr")
    fetched = StoredFile("语音.amr", "audio/amr", len(data), digest, key)
    chat_capture.store_messages(
        session, [voice], origin="sdk", now=clock(), media={voice["msgid"]: fetched}
    )
    session.commit()

    _work(runtime, queues.CAPTURE)  # the window closes and waits for the transcript
    assert session.scalars(select(FollowUp)).all() == []
    session.rollback()  # end the read: the jobs' commits are seen below
    _work(runtime)  # transcribed; finishing it starts the capture job
    _work(runtime, queues.CAPTURE)

    [follow_up] = session.scalars(select(FollowUp)).all()
    assert follow_up.capture["categories"] == ["回电"]
    assert follow_up.capture["keywords"] == ["call"]
    assert _words(follow_up.transcript) == _words(CALL_BACK)
    [line] = follow_up.summary.splitlines()[1:]
    assert line.startswith("客户：[语音] ") and _words(line) == _words(CALL_BACK)
    recording = session.scalar(select(Recording))
    attachment = session.get(Attachment, recording.attachment_id)
    assert (recording.status, recording.follow_up_id) == ("done", follow_up.id)
    assert attachment.storage_key == key and attachment.follow_up_id == follow_up.id
