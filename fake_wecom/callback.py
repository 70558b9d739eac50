"""WeCom's side of an app's callback URL: a member's message or an event, encrypted and signed the
way WeCom sends it (https://developer.work.weixin.qq.com/document/path/90930), ready to POST.

Tests post the envelope through Flask's test client; the demo's fake WeCom posts it over HTTP
when someone types into its page as a member."""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass
from xml.sax.saxutils import escape

import xmltodict
from wechatpy.enterprise.crypto import WeChatCrypto

AES_KEY_ALPHABET = string.ascii_letters + string.digits


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
    ) -> dict[str, str]:
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

    def event(self, userid: str, event: str, *, at: int | None = None, **fields: str) -> dict:
        """The fields of an event (events carry no MsgId)."""
        return {
            "ToUserName": self.corp_id,
            "FromUserName": userid,
            "CreateTime": str(at if at is not None else int(time.time())),
            "MsgType": "event",
            "Event": event,
            "AgentID": str(self.agent_id),
            **fields,
        }

    def envelope(
        self, fields: dict[str, str], *, timestamp: int | None = None, nonce: str | None = None
    ) -> Envelope:
        """Encrypt and sign `fields` into the request WeCom would make."""
        timestamp = timestamp if timestamp is not None else int(time.time())
        nonce = nonce or str(secrets.randbelow(10**10))
        plain = "<xml>" + "".join(f"<{k}>{_cdata(v)}</{k}>" for k, v in fields.items()) + "</xml>"
        crypto = WeChatCrypto(self.token, self.aes_key, self.corp_id)
        # wechatpy encrypts for replies; the Encrypt and its signature are what WeCom sends too.
        reply = xmltodict.parse(crypto.encrypt_message(plain, nonce, timestamp))["xml"]
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{reply['Encrypt']}]]></Encrypt>"
            f"<AgentID><![CDATA[{self.agent_id}]]></AgentID></xml>"
        )
        params = {
            "msg_signature": reply["MsgSignature"],
            "timestamp": str(timestamp),
            "nonce": nonce,
        }
        return Envelope(params=params, body=body.encode())


def _cdata(value: object) -> str:
    text = str(value)
    if text.isdigit():
        return text
    # A CDATA section cannot hold "]]>"; escaped text is equivalent for any XML reader.
    return escape(text) if "]]>" in text else f"<![CDATA[{text}]]>"
