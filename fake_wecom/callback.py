"""WeCom's side of an app's callback URL: a member's message or an event, encrypted and signed the
way WeCom sends it (https://developer.work.weixin.qq.com/document/path/90930), ready to POST.

Tests post the envelope through Flask's test client; the demo's fake WeCom posts it over HTTP
when someone types into its page as a member."""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import xmltodict
from wechatpy.enterprise.crypto import WeChatCrypto

AES_KEY_ALPHABET = string.ascii_letters + string.digits
# Fields WeCom sends as bare numbers; everything else goes in CDATA.
NUMERIC_FIELDS = frozenset({"CreateTime", "MsgId", "AgentID"})


def new_token() -> str:
    """A callback Token as the WeCom admin console makes one: up to 32 letters and digits."""
    return secrets.token_hex(16)


def new_aes_key() -> str:
    """An EncodingAESKey as the WeCom admin console makes one: 43 letters and digits."""
    return "".join(secrets.choice(AES_KEY_ALPHABET) for _ in range(43))


@dataclass(frozen=True)
class Envelope:
    """One callback request: the query string and the XML body."""

    params: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class CallbackApp:
    """An app's callback settings as the WeCom admin console holds them."""

    token: str
    aes_key: str
    corp_id: str
    agent_id: int

    def text(
        self, userid: str, content: str, *, msg_id: int | None = None, at: int | None = None
    ) -> dict[str, Any]:
        """The fields of a member's text message to the app."""
        return {
            "ToUserName": self.corp_id,
            "FromUserName": userid,
            "CreateTime": str(at if at is not None else int(time.time())),
            "MsgType": "text",
            "Content": content,
            "MsgId": str(msg_id if msg_id is not None else secrets.randbits(63)),
            "AgentID": str(self.agent_id),
        }

    def voice(
        self, userid: str, media_id: str, *, msg_id: int | None = None, at: int | None = None
    ) -> dict[str, Any]:
        """The fields of a member's voice message to the app: the audio itself is fetched
        from media/get by MediaId (FakeWeCom.add_media serves it)."""
        return {
            "ToUserName": self.corp_id,
            "FromUserName": userid,
            "CreateTime": str(at if at is not None else int(time.time())),
            "MsgType": "voice",
            "MediaId": media_id,
            "Format": "amr",
            "MsgId": str(msg_id if msg_id is not None else secrets.randbits(63)),
            "AgentID": str(self.agent_id),
        }

    def event(self, userid: str, *, at: int | None = None, **fields: Any) -> dict[str, Any]:
        """The fields of an event from `userid` ("sys" for WeCom's own): `Event` and the rest
        in `fields` (events carry no MsgId)."""
        return {
            "ToUserName": self.corp_id,
            "FromUserName": userid,
            "CreateTime": str(at if at is not None else int(time.time())),
            "MsgType": "event",
            "AgentID": str(self.agent_id),
            **fields,
        }

    def envelope(
        self, fields: Mapping[str, Any], *, timestamp: int | None = None, nonce: str | None = None
    ) -> Envelope:
        """Encrypt and sign `fields` into the request WeCom would make."""
        timestamp = timestamp if timestamp is not None else int(time.time())
        nonce = nonce or str(secrets.randbelow(10**10))
        crypto = WeChatCrypto(self.token, self.aes_key, self.corp_id)
        # wechatpy encrypts for replies; the Encrypt and its signature are what WeCom sends too.
        reply = xmltodict.parse(crypto.encrypt_message(render_xml(fields), nonce, timestamp))["xml"]
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{reply['Encrypt']}]]></Encrypt>"
            f"<AgentID><![CDATA[{self.agent_id}]]></AgentID></xml>"
        )
        signed = {"msg_signature": reply["MsgSignature"], "timestamp": str(timestamp)}
        return Envelope(params={**signed, "nonce": nonce}, body=body.encode())


def render_xml(fields: Mapping[str, Any]) -> str:
    """A message's fields as WeCom writes them: `<xml>`, text in CDATA, numbers bare."""

    def element(name: str, value: Any) -> str:
        if isinstance(value, Mapping):
            inner = "".join(element(k, v) for k, v in value.items())
        elif name in NUMERIC_FIELDS:
            inner = str(value)
        else:
            # "]]>" cannot appear inside CDATA: close the section and open a new one around it.
            inner = "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"
        return f"<{name}>{inner}</{name}>"

    return "<xml>" + "".join(element(k, v) for k, v in fields.items()) + "</xml>"
