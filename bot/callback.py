"""The WeCom callback URL (接收消息与事件): verify, decrypt, store, enqueue, answer.

GET answers WeCom's URL verification with the decrypted echostr; POST takes an encrypted
message or event. Signature and CorpID are checked by wechatpy's WeCom crypto
(https://developer.work.weixin.qq.com/document/path/91144). The message is committed before
the answer (WeCom retries what it got no answer for, and a crash then loses nothing) — through
`inbound.BatchWriter`, so concurrent requests share a commit — and the work happens in
`workers.inbound`; the answer is empty, since replies go out through the message
API. Whatever is wrong with a request gets a short 4xx, and the log names the kind of failure
but never the message's content.

WeCom signs its current time into every request; one whose time is further from this server's
clock than WECRM_CALLBACK_MAX_CLOCK_SKEW_SECONDS is refused as a replay. That check comes after
the signature: only a request WeCom really signed can say "this server's clock is off", so the
log line naming the skew is never a forger's noise.
"""

from __future__ import annotations

import logging
import struct
from functools import lru_cache
from xml.parsers.expat import ExpatError

import xmltodict
from flask import Blueprint, Response, current_app, g, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.exc import SQLAlchemyError
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from bot import inbound
from wecrm.runtime import Runtime
from workers.inbound import enqueue_inbound

log = logging.getLogger(__name__)

callback = Blueprint("wecom_callback", __name__)
CALLBACK_PATH = "/wecom/callback"
# WeCom's envelopes are a few KiB; anything far larger is not WeCom and is not decrypted.
MAX_BODY_BYTES = 64 * 1024
# WeCom gives up on an answer after 5 seconds and sends the message again.
STORE_TIMEOUT_SECONDS = 4.0
WRITER_KEY = "wecrm.inbound_writer"
# What malformed input makes wechatpy and the XML parser raise (binascii.Error and
# UnicodeDecodeError are ValueErrors); a request that raises one of them is the sender's fault.
MALFORMED_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError, struct.error, ExpatError)


@lru_cache(maxsize=4)
def _crypto(token: str, aes_key: str, corp_id: str) -> WeChatCrypto:
    return WeChatCrypto(token, aes_key, corp_id)


def _kind(error: Exception) -> str:
    """The error's class, qualified ("binascii.Error", "struct.error"), never its message."""
    return f"{type(error).__module__}.{type(error).__qualname__}".removeprefix("builtins.")


def _refuse(status: int, kind: str) -> Response:
    log.warning("WeCom callback refused (%d): %s", status, kind)
    return Response(kind, status=status, mimetype="text/plain")


def _checked_request(*names: str) -> tuple[WeChatCrypto, list[str]] | Response:
    """The crypto and the query parameters `names`, or the refusal to answer with."""
    settings = current_app.extensions["wecrm"].settings
    if not (settings.wecom_token and settings.wecom_aes_key and settings.wecom_corp_id):
        log.error("WeCom callback called but WECOM_TOKEN / WECOM_AES_KEY / WECOM_CORP_ID unset")
        return Response("callback not configured", status=503, mimetype="text/plain")
    values = [request.args.get(name, "") for name in names]
    if not all(values):
        return _refuse(400, "missing query parameters")
    timestamp = values[1]
    if not timestamp.isdigit() or len(timestamp) > 12:
        return _refuse(400, "timestamp is not a number")
    return _crypto(settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id), values


def _outside_clock_skew(timestamp: str) -> Response | None:
    """The refusal of a signed request whose time is too far from ours, or None to go on."""
    limit = current_app.extensions["wecrm"].settings.callback_max_clock_skew_seconds
    skew = int(timestamp) - g.now.timestamp()
    if not limit or abs(skew) <= limit:
        return None
    log.warning(
        "WeCom callback refused (403): WeCom's signed time is %d s %s this server's clock, "
        "beyond WECRM_CALLBACK_MAX_CLOCK_SKEW_SECONDS=%d; if every request is refused so, set "
        "the server's clock right (NTP) or raise the setting (0 turns the check off)",
        round(abs(skew)),
        "ahead of" if skew > 0 else "behind",
        limit,
    )
    return Response("timestamp outside the replay window", status=403, mimetype="text/plain")


@callback.get(CALLBACK_PATH)
def verify_url() -> Response:
    """URL verification: the echostr decrypted, exactly, as plain text."""
    checked = _checked_request("msg_signature", "timestamp", "nonce", "echostr")
    if isinstance(checked, Response):
        return checked
    crypto, (signature, timestamp, nonce, echostr) = checked
    try:
        plain = crypto.check_signature(signature, timestamp, nonce, echostr)
    except InvalidSignatureException:
        return _refuse(403, "bad signature")
    except InvalidCorpIdException:
        return _refuse(403, "wrong CorpID")
    except MALFORMED_INPUT_ERRORS as error:
        return _refuse(400, f"malformed echostr ({_kind(error)})")
    refusal = _outside_clock_skew(timestamp)
    if refusal is not None:
        return refusal
    return Response(plain, mimetype="text/plain")


@callback.post(CALLBACK_PATH)
def receive() -> Response:
    """An encrypted message or event: stored and committed, processing enqueued, empty 200."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _refuse(413, "body too large")
    checked = _checked_request("msg_signature", "timestamp", "nonce")
    if isinstance(checked, Response):
        return checked
    crypto, (signature, timestamp, nonce) = checked
    body = request.stream.read(MAX_BODY_BYTES + 1)  # a body sent without a length
    if len(body) > MAX_BODY_BYTES:
        return _refuse(413, "body too large")
    try:
        plain = crypto.decrypt_message(body, signature, timestamp, nonce)
        fields = xmltodict.parse(plain)["xml"]
        if not isinstance(fields, dict):
            raise TypeError("the decrypted XML has no fields")
    except InvalidSignatureException:
        return _refuse(403, "bad signature")
    except InvalidCorpIdException:
        return _refuse(403, "wrong CorpID")
    except MALFORMED_INPUT_ERRORS as error:
        return _refuse(400, f"malformed message ({_kind(error)})")
    refusal = _outside_clock_skew(timestamp)
    if refusal is not None:
        return refusal

    writer: inbound.BatchWriter = current_app.extensions[WRITER_KEY]
    try:
        writer.store(fields, g.now, timeout=STORE_TIMEOUT_SECONDS)
    except inbound.MalformedMessage as error:
        return _refuse(400, f"malformed message ({error})")
    except (TimeoutError, SQLAlchemyError) as error:
        # Not stored (or not known to be): no 200, so WeCom sends it again.
        log.error("WeCom callback could not store a message: %s", _kind(error))
        return Response("storage unavailable", status=503, mimetype="text/plain")
    return Response("", mimetype="text/plain")


@callback.record_once
def _install_writer(state: BlueprintSetupState) -> None:
    runtime: Runtime = state.app.extensions["wecrm"]
    state.app.extensions[WRITER_KEY] = inbound.BatchWriter(
        runtime.db,
        lambda: enqueue_inbound(runtime.redis),
    )
