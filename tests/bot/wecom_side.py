"""WeCom's side of a conversation with the bot, for tests.

`WeComSide` does what WeCom does when a member types into the app: it renders the message XML,
encrypts and signs it with wechatpy exactly as WeCom would (the envelope `<xml><ToUserName>
<Encrypt><AgentID></xml>`, msg_signature / timestamp / nonce in the query, the time taken from
wecrm's clock), posts it to `/wecom/callback`, then runs an RQ worker in burst over the inbound
and notification queues, and reads what the bot sent back from the fake WeCom server's
message/send log.

    side.send_text("rep00", "#今日#")   -> ["今日待办：…"]
    side.send_event("sys", {"Event": "change_external_contact", "ChangeType": …,
                            "UserID": "rep00", "ExternalUserID": "wm…"})
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import redis
import xmltodict
from flask.testing import FlaskClient
from rq import SimpleWorker
from wechatpy.enterprise.crypto import WeChatCrypto
from werkzeug.test import TestResponse

from bot.callback import CALLBACK_PATH
from config import Settings
from fake_wecom.server import FakeWeCom
from workers import queues

# Fields WeCom sends as bare numbers; everything else goes in CDATA.
NUMERIC_FIELDS = frozenset({"CreateTime", "MsgId", "AgentID"})
# Far above anything the official vectors or a hand-written test use, so ids never collide.
FIRST_MSG_ID = 7_000_000_000_000_000_001


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


class WeComSide:
    """Encrypts, signs and posts messages like WeCom, and reads the bot's answers."""

    def __init__(
        self,
        client: FlaskClient,
        *,
        settings: Settings,
        clock: Callable[[], datetime],
        connection: redis.Redis,
        fake_wecom: FakeWeCom,
    ) -> None:
        self.client = client
        self.corp_id = settings.wecom_corp_id
        self.agent_id = settings.wecom_agent_id
        self.token, self.aes_key = settings.wecom_token, settings.wecom_aes_key
        self.crypto = WeChatCrypto(self.token, self.aes_key, self.corp_id)
        self.clock = clock
        self.connection = connection
        self.fake_wecom = fake_wecom
        self._msg_ids = itertools.count(FIRST_MSG_ID)

    # -- what WeCom sends ------------------------------------------------------------------------

    def text_fields(self, userid: str, text: str) -> dict[str, Any]:
        """The fields of a member's text message, with a fresh MsgId."""
        return {
            "ToUserName": self.corp_id,
            "FromUserName": userid,
            "CreateTime": self.timestamp(),
            "MsgType": "text",
            "Content": text,
            "MsgId": next(self._msg_ids),
            "AgentID": self.agent_id,
        }

    def event_fields(self, userid: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of an event from `userid` ("sys" for WeCom's own), `fields` on top."""
        base: dict[str, Any] = {
            "ToUserName": self.corp_id,
            "FromUserName": userid,
            "CreateTime": self.timestamp(),
            "MsgType": "event",
            "AgentID": self.agent_id,
        }
        return {**base, **fields}

    def timestamp(self) -> int:
        return int(self.clock().timestamp())

    def encrypt(self, fields: Mapping[str, Any], *, corp_id: str | None = None) -> tuple[str, str]:
        """(query string, body) of the POST WeCom would make for these fields; `corp_id`
        encrypts for another corp, as a misdirected or forged message would be."""
        crypto = self.crypto
        if corp_id is not None:
            crypto = WeChatCrypto(self.token, self.aes_key, corp_id)
        timestamp, nonce = str(self.timestamp()), str(secrets.randbelow(10**10))
        # wechatpy's reply envelope carries exactly what WeCom's request needs: the ciphertext
        # and its signature over (token, timestamp, nonce, ciphertext).
        sealed = xmltodict.parse(crypto.encrypt_message(render_xml(fields), nonce, timestamp))
        encrypt, signature = sealed["xml"]["Encrypt"], sealed["xml"]["MsgSignature"]
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            f"<AgentID><![CDATA[{self.agent_id}]]></AgentID></xml>"
        )
        query = urlencode({"msg_signature": signature, "timestamp": timestamp, "nonce": nonce})
        return query, body

    def post(self, fields: Mapping[str, Any]) -> TestResponse:
        """Post one encrypted message to the callback, as WeCom does; the HTTP answer."""
        query, body = self.encrypt(fields)
        return self.client.post(
            f"{CALLBACK_PATH}?{query}", data=body.encode(), content_type="text/xml"
        )

    def work(self) -> None:
        """Process what was stored and send the replies (an RQ worker in burst)."""
        SimpleWorker([queues.INBOUND, queues.NOTIFICATIONS], connection=self.connection).work(
            burst=True
        )

    # -- the conversation ------------------------------------------------------------------------

    def send_text(self, userid: str, text: str) -> list[str]:
        """Member `userid` types `text`; the replies the bot sent to them because of it."""
        return self._exchange(self.text_fields(userid, text), userid)

    def send_event(self, userid: str, fields: Mapping[str, Any]) -> list[str]:
        """WeCom reports an event from `userid`; the replies to the member it concerns (its
        `UserID`, as in change_external_contact, else the sender)."""
        return self._exchange(self.event_fields(userid, fields), str(fields.get("UserID", userid)))

    def inbox(self, userid: str) -> list[str]:
        """Everything the app has sent to member `userid` so far, oldest first."""
        return self._messages_to(userid, self.fake_wecom.messages)

    def _exchange(self, fields: Mapping[str, Any], reader: str) -> list[str]:
        seen = len(self.fake_wecom.messages)
        answer = self.post(fields)
        assert (answer.status_code, answer.data) == (200, b""), answer.get_data(as_text=True)
        self.work()
        return self._messages_to(reader, self.fake_wecom.messages[seen:])

    @staticmethod
    def _messages_to(userid: str, messages: list[dict[str, Any]]) -> list[str]:
        wanted = userid.lower()  # WeCom userids ignore case
        return [
            _readable(message)
            for message in messages
            if wanted in (u.lower() for u in message["touser"])
        ]


def _readable(message: dict[str, Any]) -> str:
    """What the member reads: a text's content, a card's title and description."""
    kind = message["msgtype"]
    content = message[kind]
    if kind in ("text", "markdown"):
        return str(content["content"])
    if kind == "textcard":
        return f"{content['title']}\n{content['description']}"
    return json.dumps(content, ensure_ascii=False)
