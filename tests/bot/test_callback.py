"""The WeCom callback end to end: the official vectors through the real endpoint, every kind of
malformed request refused before anything is stored, WeCom's retries stored once and processed
once by a real RQ worker, the sweeper, and failures that do not block other messages."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import struct
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import pytest
import redis
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from rq import Queue, SimpleWorker
from sqlalchemy import select

from bot import dispatch, inbound
from bot.callback import CALLBACK_PATH, MAX_BODY_BYTES
from fake_wecom.callback import render_xml
from models import InboundMessage
from tests.factories import make_company
from wecom.client import WeComUnavailable
from workers import inbound as inbound_jobs
from workers import queues
from workers.schedule import PERIODIC_JOBS


@dataclass(frozen=True)
class Vectors:
    """One set of WeCom's official callback test vectors, quoted exactly from Tencent's sample
    (sbzhu/weworkapi_python callback/Sample.py; set A is also the example on
    https://developer.work.weixin.qq.com/document/path/91144)."""

    token: str
    aes_key: str
    corp_id: str
    get_query: str
    echo_plaintext: bytes
    post_query: str
    post_body: str
    post_timestamp: int

    @property
    def settings(self) -> dict[str, str]:
        return {
            "wecom_token": self.token,
            "wecom_aes_key": self.aes_key,
            "wecom_corp_id": self.corp_id,
        }

    @property
    def get_timestamp(self) -> int:
        return int(self.get_query.split("timestamp=")[1].split("&")[0])


SET_A_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qczcd"
    "CUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4X"
    "gpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+Kq"
    "CKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS"
    "9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZI"
    "s2pDBS8R07+qN+E7Q=="
)
SET_A = Vectors(
    token="QDG6eK",
    aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    corp_id="wx5823bf96d3bd56c7",
    get_query=(
        "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589"
        "&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNd"
        "tp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
    ),
    echo_plaintext=b"1616140317555161061",
    post_query=(
        "msg_signature=477715d11cdb4164915debcba66cb864d751f3e6&timestamp=1409659813"
        "&nonce=1372623149"
    ),
    post_body=(
        "<xml> <ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
        f"<Encrypt><![CDATA[{SET_A_ENCRYPT}]]></Encrypt>\n"
        "<AgentID><![CDATA[218]]></AgentID>\n</xml>"
    ),
    post_timestamp=1409659813,
)
SET_B_ECHOSTR = (
    "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
)
SET_B_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAg"
    "GzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9"
    "U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qAR"
    "R4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aS"
    "DPOYuPDGOCI8jmnKiypE+"
)
SET_B = Vectors(
    token="hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    aes_key="6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    corp_id="ww1436e0e65a779aee",
    # WeCom percent-encodes echostr's + / = (a raw + would arrive as a space).
    get_query=(
        "msg_signature=012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb&timestamp=1476416373"
        f"&nonce=47744683&echostr={quote(SET_B_ECHOSTR, safe='')}"
    ),
    echo_plaintext=b"1288432023552776189",
    post_query=(
        "msg_signature=0c3914025cb4b4d68103f6bfc8db550f79dcf48e&timestamp=1476422779"
        "&nonce=1597212914"
    ),
    post_body=(
        "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n"
        f"<Encrypt><![CDATA[{SET_B_ENCRYPT}]]></Encrypt>\n"
        "<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
    ),
    post_timestamp=1476422779,
)
SET_A_MESSAGE = {
    "ToUserName": "wx5823bf96d3bd56c7",
    "FromUserName": "mycreate",
    "CreateTime": "1409659813",
    "MsgType": "text",
    "Content": "hello",
    "MsgId": "4561255354251345929",
    "AgentID": "218",
}
SET_B_MESSAGE = {
    "ToUserName": "ww1436e0e65a779aee",
    "FromUserName": "ChenJiaShun",
    "CreateTime": "1476422779",
    "MsgType": "text",
    "Content": "你好",
    "MsgId": "1456453720",
    "AgentID": "1000002",
}


def at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def stored(session) -> list[InboundMessage]:
    session.rollback()  # end the read transaction: a SQLite snapshot would hide newer commits
    return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def queued(runtime) -> int:
    return Queue(queues.INBOUND, connection=runtime.redis).count


def work(runtime) -> None:
    SimpleWorker([queues.INBOUND], connection=runtime.redis).work(burst=True)


def sweep(runtime) -> None:
    """What the scheduler does every minute, then a worker."""
    queues.queue(runtime.redis, queues.INBOUND).enqueue(inbound_jobs.sweep_inbound)
    work(runtime)


@pytest.fixture
def handled(monkeypatch):
    """The messages the dispatcher was given, in order; the real dispatcher still runs."""
    calls: list[dict] = []
    real = dispatch.handle

    def spy(session, message, **kwargs):
        calls.append(dict(message.payload))
        real(session, message, **kwargs)

    monkeypatch.setattr(dispatch, "handle", spy)
    return calls


# -- the official vectors ------------------------------------------------------------------------


@pytest.mark.parametrize("vectors", [SET_A, SET_B], ids=["set_a", "set_b"])
def test_url_verification_answers_the_decrypted_echostr_exactly(vectors, callback_client, clock):
    client = callback_client(**vectors.settings)
    clock.current = at(vectors.get_timestamp)

    answer = client.get(f"{CALLBACK_PATH}?{vectors.get_query}")

    assert answer.status_code == 200
    assert answer.data == vectors.echo_plaintext  # no quotes, no newline
    assert answer.mimetype == "text/plain"


@pytest.mark.parametrize(
    ("vectors", "message"), [(SET_A, SET_A_MESSAGE), (SET_B, SET_B_MESSAGE)], ids=["a", "b"]
)
def test_official_message_is_stored_with_every_field_before_the_empty_answer(
    vectors, message, callback_client, clock, session, runtime
):
    client = callback_client(**vectors.settings)
    clock.current = at(vectors.post_timestamp)

    answer = client.post(f"{CALLBACK_PATH}?{vectors.post_query}", data=vectors.post_body)

    assert (answer.status_code, answer.data) == (200, b"")
    (row,) = stored(session)
    assert row.payload == message
    assert row.dedupe_key == f"msg:{message['MsgId']}"
    assert (row.msg_type, row.event, row.from_user) == ("text", None, message["FromUserName"])
    assert row.sent_at == at(vectors.post_timestamp)
    assert (row.status, row.attempts, row.received_at) == ("pending", 0, clock())
    assert queued(runtime) == 1


def test_set_a_posted_three_times_is_stored_once_and_processed_once(
    callback_client, clock, session, runtime, handled
):
    client = callback_client(**SET_A.settings)
    clock.current = at(SET_A.post_timestamp)

    for _ in range(3):  # WeCom's retries
        answer = client.post(f"{CALLBACK_PATH}?{SET_A.post_query}", data=SET_A.post_body)
        assert (answer.status_code, answer.data) == (200, b"")
    assert queued(runtime) == 1  # one drain for the burst
    work(runtime)

    (row,) = stored(session)
    assert (row.status, row.attempts, row.processed_at) == ("done", 1, clock())
    assert handled == [SET_A_MESSAGE]

    clock.advance(seconds=5)  # a late retry, after processing: acknowledged, nothing redone
    answer = client.post(f"{CALLBACK_PATH}?{SET_A.post_query}", data=SET_A.post_body)
    assert answer.status_code == 200
    work(runtime)
    assert [(r.status, r.attempts) for r in stored(session)] == [("done", 1)]
    assert handled == [SET_A_MESSAGE]


# -- refused before anything is stored -----------------------------------------------------------


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """WeCom's msg_signature: sha1 of the four values sorted as strings, concatenated."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def seal(plaintext: bytes, aes_key: str = SET_A.aes_key) -> str:
    """AES-256-CBC as WeCom does it (key = EncodingAESKey + "=", IV = its first 16 bytes), on
    bytes padded by the caller, so tests can send what WeCom never would."""
    key = base64.b64decode(aes_key + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plaintext) + encryptor.finalize()).decode()


def framed(xml: str, corp_id: str = SET_A.corp_id) -> bytes:
    """16 random bytes, the message's length (network order), the message, the CorpID."""
    message = xml.encode()
    return os.urandom(16) + struct.pack(">I", len(message)) + message + corp_id.encode()


def padded(data: bytes, pad_byte: int | None = None) -> bytes:
    """PKCS#7 to a multiple of 32 bytes; with `pad_byte`, a padding that ends in that byte."""
    count = 32 - len(data) % 32
    return data + bytes([count if pad_byte is None else pad_byte]) * count


def signed_post(client, encrypt: str | None, *, body: str | None = None, timestamp=None):
    """A POST of `encrypt` in WeCom's envelope (or of `body` as it is), correctly signed."""
    timestamp = str(timestamp or SET_A.post_timestamp)
    nonce = "1372623149"
    if body is None:
        body = f"<xml><ToUserName>{SET_A.corp_id}</ToUserName><Encrypt>{encrypt}</Encrypt></xml>"
    query = urlencode(
        {
            "msg_signature": signature(SET_A.token, timestamp, nonce, encrypt or ""),
            "timestamp": timestamp,
            "nonce": nonce,
        }
    )
    return client.post(f"{CALLBACK_PATH}?{query}", data=body)


SET_A_XML = render_xml(SET_A_MESSAGE)
REFUSALS = {
    "bad signature": lambda c: c.post(
        f"{CALLBACK_PATH}?{SET_A.post_query.replace('msg_signature=4', 'msg_signature=5')}",
        data=SET_A.post_body,
    ),
    "wrong CorpID": lambda c: signed_post(
        c, seal(padded(framed(SET_A_XML, corp_id="wwsomeoneelse")))
    ),
    "bad base64": lambda c: signed_post(c, "not*base64"),
    "padding byte 0": lambda c: signed_post(c, seal(padded(framed(SET_A_XML), pad_byte=0))),
    "padding byte over 32": lambda c: signed_post(c, seal(padded(framed(SET_A_XML), pad_byte=40))),
    "ciphertext not a multiple of 16": lambda c: signed_post(
        c, base64.b64encode(os.urandom(40)).decode()
    ),
    "garbage plaintext": lambda c: signed_post(c, seal(os.urandom(64))),
    "decrypts to no XML": lambda c: signed_post(c, seal(padded(framed("hello, not xml")))),
    "decrypts to XML without a sender": lambda c: signed_post(
        c, seal(padded(framed("<xml><MsgType>text</MsgType><CreateTime>1</CreateTime></xml>")))
    ),
    "missing Encrypt": lambda c: signed_post(
        c, None, body=f"<xml><ToUserName>{SET_A.corp_id}</ToUserName></xml>"
    ),
    "not XML": lambda c: signed_post(c, None, body="hello"),
    "oversized body": lambda c: signed_post(c, None, body="<xml>" + "x" * MAX_BODY_BYTES),
    "missing msg_signature": lambda c: c.post(
        f"{CALLBACK_PATH}?timestamp={SET_A.post_timestamp}&nonce=1", data=SET_A.post_body
    ),
    "no query at all": lambda c: c.post(CALLBACK_PATH, data=SET_A.post_body),
    "timestamp not a number": lambda c: signed_post(c, SET_A_ENCRYPT, timestamp="soon"),
    "stale timestamp": lambda c: signed_post(c, SET_A_ENCRYPT, timestamp=1409659813 - 301),
    "future timestamp": lambda c: signed_post(c, SET_A_ENCRYPT, timestamp=1409659813 + 301),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_malformed_posts_are_refused_with_a_4xx_and_nothing_is_stored(
    case, callback_client, clock, session, runtime
):
    client = callback_client(**SET_A.settings)
    clock.current = at(SET_A.post_timestamp)

    answer = REFUSALS[case](client)

    assert 400 <= answer.status_code < 500, (answer.status_code, answer.data)
    assert len(answer.data) < 100
    assert stored(session) == []
    assert queued(runtime) == 0


def test_the_signed_envelope_of_the_refusal_tests_is_itself_accepted(
    callback_client, clock, session
):
    """The cases above fail for the reason they name, not for how they are sent."""
    client = callback_client(**SET_A.settings)
    clock.current = at(SET_A.post_timestamp + 300)  # the edge of the replay window

    answer = signed_post(client, seal(padded(framed(SET_A_XML))))

    assert answer.status_code == 200
    assert [r.payload for r in stored(session)] == [SET_A_MESSAGE]


# -- the clock-skew window -----------------------------------------------------------------------

SKEW_SETTING = "WECRM_CALLBACK_MAX_CLOCK_SKEW_SECONDS"


def test_a_signed_request_from_too_far_in_the_past_is_refused_naming_the_skew_and_the_setting(
    callback_client, clock, session, caplog
):
    client = callback_client(**SET_A.settings)
    clock.current = at(SET_A.post_timestamp + 412)  # this server's clock runs 412 s fast

    with caplog.at_level(logging.WARNING, logger="bot.callback"):
        answer = signed_post(client, seal(padded(framed(SET_A_XML))))

    assert answer.status_code == 403
    assert "412 s behind this server's clock" in caplog.text
    assert f"{SKEW_SETTING}=300" in caplog.text
    assert stored(session) == []


def test_a_wider_setting_accepts_the_same_request_and_zero_turns_the_check_off(
    callback_client, clock, session
):
    clock.current = at(SET_A.post_timestamp - 412)  # this server's clock runs 412 s slow
    wider = callback_client(**SET_A.settings, callback_max_clock_skew_seconds=600)
    assert signed_post(wider, seal(padded(framed(SET_A_XML)))).status_code == 200

    clock.current = at(SET_A.post_timestamp + 30 * 24 * 3600)
    unchecked = callback_client(**SET_A.settings, callback_max_clock_skew_seconds=0)
    other = SET_A_XML.replace("4561255354251345929", "4561255354251345930")  # a new MsgId
    assert signed_post(unchecked, seal(padded(framed(other)))).status_code == 200
    assert len(stored(session)) == 2


def test_a_forged_request_is_refused_for_its_signature_before_its_clock_is_judged(
    callback_client, clock, caplog
):
    client = callback_client(**SET_A.settings)
    clock.current = at(SET_A.post_timestamp + 3600)
    forged = SET_A.post_query.replace("msg_signature=4", "msg_signature=5")

    with caplog.at_level(logging.WARNING, logger="bot.callback"):
        answer = client.post(f"{CALLBACK_PATH}?{forged}", data=SET_A.post_body)

    assert answer.status_code == 403
    assert "bad signature" in caplog.text
    assert SKEW_SETTING not in caplog.text


def test_url_verification_is_refused_outside_the_window_and_answered_with_the_check_off(
    callback_client, clock
):
    clock.current = at(SET_A.get_timestamp + 301)

    refused = callback_client(**SET_A.settings).get(f"{CALLBACK_PATH}?{SET_A.get_query}")
    unchecked = callback_client(**SET_A.settings, callback_max_clock_skew_seconds=0)
    answered = unchecked.get(f"{CALLBACK_PATH}?{SET_A.get_query}")

    assert refused.status_code == 403 and SET_A.echo_plaintext not in refused.data
    assert answered.status_code == 200 and answered.data == SET_A.echo_plaintext


BAD_ECHOSTR = "**P9nAzCzy"  # signed correctly, but no ciphertext


@pytest.mark.parametrize(
    ("query", "status"),
    [
        (SET_A.get_query.replace("msg_signature=5", "msg_signature=6"), 403),
        (SET_A.get_query.split("&echostr=")[0], 400),
        (
            urlencode(
                {
                    "msg_signature": signature(SET_A.token, "1409659589", "263014780", BAD_ECHOSTR),
                    "timestamp": "1409659589",
                    "nonce": "263014780",
                    "echostr": BAD_ECHOSTR,
                }
            ),
            400,
        ),
    ],
    ids=["bad signature", "no echostr", "echostr not a ciphertext"],
)
def test_bad_url_verifications_are_refused(query, status, callback_client, clock):
    client = callback_client(**SET_A.settings)
    clock.current = at(SET_A.get_timestamp)

    answer = client.get(f"{CALLBACK_PATH}?{query}")

    assert answer.status_code == status
    assert SET_A.echo_plaintext not in answer.data


def test_an_unconfigured_callback_answers_503_and_says_so_in_the_log(
    callback_client, clock, session, caplog
):
    client = callback_client(wecom_token="", wecom_aes_key="")
    clock.current = at(SET_A.post_timestamp)

    with caplog.at_level(logging.ERROR, logger="bot.callback"):
        answer = client.post(f"{CALLBACK_PATH}?{SET_A.post_query}", data=SET_A.post_body)

    assert answer.status_code == 503
    assert "WECOM_TOKEN" in caplog.text
    assert stored(session) == []


def test_a_refusal_is_logged_by_kind_without_the_message_content(callback_client, clock, caplog):
    client = callback_client(**SET_A.settings)
    clock.current = at(SET_A.post_timestamp)
    secret = "客户王五的报价单"
    xml = f"<xml><MsgType>text</MsgType><Content>{secret}</Content></xml>"  # no sender

    with caplog.at_level(logging.INFO, logger="bot.callback"):
        answer = signed_post(client, seal(padded(framed(xml))))

    assert answer.status_code == 400
    assert "malformed message" in caplog.text
    assert secret not in caplog.text and secret not in answer.get_data(as_text=True)


# -- deduplication -------------------------------------------------------------------------------


def test_events_are_deduplicated_by_sender_second_and_what_the_event_is_about(wecom_side, session):
    added = wecom_side.event_fields(
        "sys",
        {
            "Event": "change_external_contact",
            "ChangeType": "add_external_contact",
            "UserID": "rep00",
            "ExternalUserID": "wmAAAA",
        },
    )
    for _ in range(2):  # a retry: the same event, encrypted afresh
        assert wecom_side.post(added).status_code == 200
    assert len(stored(session)) == 1

    # The same second, from the same sender, but another event: stored too.
    assert wecom_side.post({**added, "ExternalUserID": "wmBBBB"}).status_code == 200
    assert wecom_side.post({**added, "ChangeType": "del_follow_user"}).status_code == 200
    entered = wecom_side.event_fields("rep00", {"Event": "enter_agent", "EventKey": ""})
    assert wecom_side.post(entered).status_code == 200

    rows = stored(session)
    assert len(rows) == 4
    create_time = added["CreateTime"]
    assert {r.dedupe_key.rsplit(":", 1)[0] for r in rows} == {
        f"event:sys:{create_time}",
        f"event:rep00:{create_time}",
    }
    assert [(r.msg_type, r.event) for r in rows][-1] == ("event", "enter_agent")


def test_dedupe_keys_of_messages_and_events():
    message = {**SET_A_MESSAGE}
    event = {"FromUserName": "sys", "CreateTime": "1700000000", "MsgType": "event"}
    assert inbound.dedupe_key(message) == "msg:4561255354251345929"
    assert inbound.dedupe_key({**message, "CreateTime": "1"}) == "msg:4561255354251345929"
    # Only the sender, the second and the discriminators count, so a retry always matches.
    assert inbound.dedupe_key(event) == inbound.dedupe_key({**event, "AgentID": "1000003"})
    assert inbound.dedupe_key(event) != inbound.dedupe_key({**event, "CreateTime": "1700000001"})
    assert inbound.dedupe_key(event) != inbound.dedupe_key({**event, "Event": "enter_agent"})
    assert len(inbound.dedupe_key({**event, "FromUserName": "x" * 64, "TaskId": "t" * 500})) < 191


@pytest.mark.parametrize(
    "fields",
    [
        {"CreateTime": "1", "MsgType": "text"},
        {"FromUserName": "rep00", "MsgType": "text", "CreateTime": "yesterday"},
        {"FromUserName": "rep00", "CreateTime": "1"},
        {"FromUserName": "r" * 65, "MsgType": "text", "CreateTime": "1"},
        {"FromUserName": {"nested": "x"}, "MsgType": "text", "CreateTime": "1"},
    ],
    ids=["no sender", "bad time", "no type", "sender too long", "sender not text"],
)
def test_fields_no_wecom_message_has_are_malformed(fields, session, clock):
    with pytest.raises(inbound.MalformedMessage):
        inbound.message_values(fields, clock())


# -- processing ----------------------------------------------------------------------------------


def test_the_sweeper_handles_a_message_whose_enqueue_was_lost(wecom_side, runtime, clock, session):
    assert any(
        p.func is inbound_jobs.sweep_inbound and p.queue == queues.INBOUND for p in PERIODIC_JOBS
    )
    wecom_side.post(wecom_side.text_fields("rep00", "#帮助#"))
    Queue(queues.INBOUND, connection=runtime.redis).empty()  # the enqueue never happened
    runtime.redis.delete(inbound_jobs.INBOUND_LOCK_KEY)

    clock.advance(seconds=inbound_jobs.SWEEP_AFTER_SECONDS - 5)
    sweep(runtime)  # too young: its own job may still be on the way
    assert [r.status for r in stored(session)] == ["pending"]

    clock.advance(seconds=6)
    sweep(runtime)
    assert [(r.status, r.attempts) for r in stored(session)] == [("done", 1)]


def test_a_drain_lock_a_redis_restart_kept_without_its_job_holds_messages_only_until_the_sweep(
    wecom_side, runtime, clock, session
):
    wecom_side.post(wecom_side.text_fields("rep00", "#帮助#"))
    Queue(queues.INBOUND, connection=runtime.redis).empty()  # the snapshot predates the job
    wecom_side.post(wecom_side.text_fields("rep01", "#帮助#"))
    assert queued(runtime) == 0  # the kept lock says a drain is on its way
    assert 0 < runtime.redis.ttl(inbound_jobs.INBOUND_LOCK_KEY) <= inbound_jobs.INBOUND_LOCK_SECONDS

    clock.advance(seconds=inbound_jobs.SWEEP_AFTER_SECONDS + 1)
    sweep(runtime)
    assert [r.status for r in stored(session)] == ["done", "done"]


def test_a_message_whose_handling_raises_is_retried_then_failed_without_blocking_others(
    wecom_side, runtime, clock, session, monkeypatch
):
    make_company(session)  # rep00 is a member, so the failure can be told
    handled: list[str] = []

    def handle(session, message, **kwargs):
        if message.payload["Content"] == "boom":
            raise RuntimeError("handler broke")
        handled.append(message.payload["Content"])

    monkeypatch.setattr(dispatch, "handle", handle)
    wecom_side.post(wecom_side.text_fields("rep00", "boom"))
    wecom_side.post(wecom_side.text_fields("rep00", "after the boom"))
    work(runtime)

    broken, fine = stored(session)
    assert (broken.status, broken.attempts, broken.processed_at) == ("pending", 1, None)
    assert broken.last_error == "RuntimeError: handler broke"
    assert (fine.status, fine.attempts) == ("done", 1)
    assert handled == ["after the boom"]

    for attempt in range(2, inbound_jobs.MAX_ATTEMPTS + 1):
        clock.advance(seconds=inbound_jobs.SWEEP_AFTER_SECONDS + 1)
        sweep(runtime)
        assert stored(session)[0].attempts == attempt
    assert stored(session)[0].status == "failed"
    # The member hears that it failed (once), instead of nothing.
    wecom_side.work()
    assert wecom_side.inbox("rep00") == [dispatch.FAILED_REPLY]

    clock.advance(seconds=inbound_jobs.SWEEP_AFTER_SECONDS + 1)
    wecom_side.post(wecom_side.text_fields("rep00", "later"))
    sweep(runtime)
    work(runtime)
    assert [(r.status, r.attempts) for r in stored(session)] == [
        ("failed", inbound_jobs.MAX_ATTEMPTS),
        ("done", 1),
        ("done", 1),
    ]
    assert handled == ["after the boom", "later"]


def test_wecom_being_down_does_not_use_up_a_messages_attempts(
    wecom_side, runtime, clock, session, monkeypatch
):
    def unavailable(session, message, **kwargs):
        raise WeComUnavailable(-1, "HTTP 503")

    monkeypatch.setattr(dispatch, "handle", unavailable)
    wecom_side.post(wecom_side.text_fields("rep00", "#今日#"))
    for _ in range(inbound_jobs.MAX_ATTEMPTS + 1):
        work(runtime)
        clock.advance(seconds=inbound_jobs.SWEEP_AFTER_SECONDS + 1)
        inbound_jobs.enqueue_inbound(runtime.redis)
    (row,) = stored(session)
    assert (row.status, row.attempts) == ("pending", 0)
    assert "WeComUnavailable" in row.last_error

    monkeypatch.undo()
    sweep(runtime)
    assert [(r.status, r.attempts) for r in stored(session)] == [("done", 1)]


def test_redis_going_away_mid_drain_ends_the_run_and_leaves_the_messages_untouched(
    wecom_side, runtime, session, monkeypatch
):
    def redis_down(session, message, **kwargs):
        raise redis.ConnectionError("Connection closed by server.")

    monkeypatch.setattr(dispatch, "handle", redis_down)
    for text in ("#今日#", "#帮助#"):
        wecom_side.post(wecom_side.text_fields("rep00", text))
    with pytest.raises(redis.ConnectionError):
        inbound_jobs.drain(runtime)
    assert [(r.status, r.attempts, r.last_error) for r in stored(session)] == [
        ("pending", 0, None)
    ] * 2

    monkeypatch.undo()
    sweep(runtime)
    assert [(r.status, r.attempts) for r in stored(session)] == [("done", 1)] * 2


def test_a_claimed_message_cannot_be_claimed_again(wecom_side, runtime, clock):
    wecom_side.post(wecom_side.text_fields("rep00", "#帮助#"))
    with runtime.db.session(lock_for_write=True) as first:
        message_id = inbound.pending_ids(first, after_id=0, limit=10)[0]
        assert inbound.claim(first, message_id=message_id, now=clock()) is not None
        first.commit()
    with runtime.db.session(lock_for_write=True) as second:
        assert inbound.claim(second, message_id=message_id, now=clock()) is None


# -- the WeCom side harness ----------------------------------------------------------------------


def test_a_member_gets_the_bots_reply_through_the_fake_wecom(wecom_side, session):
    rep = make_company(session).reps[0][0]
    session.commit()

    replies = wecom_side.send_text(rep.wecom_userid, "#帮助#")

    assert len(replies) == 1 and replies[0].startswith("可用命令：")
    assert wecom_side.inbox(rep.wecom_userid) == replies
    assert [(r.status, r.attempts) for r in stored(session)] == [("done", 1)]


# -- storing under load --------------------------------------------------------------------------


def test_control_characters_are_refused_before_they_reach_the_database(wecom_side, session):
    response = wecom_side.post(wecom_side.text_fields("rep00", "#跟进# 张三 \x00"))
    assert response.status_code == 400
    assert stored(session) == []


def test_concurrent_posts_share_commits_and_each_message_is_stored_once(wecom_side, session):
    """Requests on many threads reach the writer together; retries among them still dedupe."""
    messages = [wecom_side.text_fields("rep00", f"#客户# {n}") for n in range(40)]
    posts = [*messages, *messages[::4]]  # every fourth one is posted twice, at the same time
    answers: list[int] = []
    barrier = threading.Barrier(8)

    def post_some(share: list[dict]) -> None:
        barrier.wait()
        answers.extend(wecom_side.post(fields).status_code for fields in share)

    threads = [threading.Thread(target=post_some, args=(posts[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * len(posts)
    rows = stored(session)
    assert sorted(r.dedupe_key for r in rows) == sorted(f"msg:{m['MsgId']}" for m in messages)
