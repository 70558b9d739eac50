"""WeCom's side of a conversation with the bot, for tests.

`WeComSide` does what WeCom does when a member types into the app: `fake_wecom.callback` renders
the message XML and encrypts and signs it with wechatpy exactly as WeCom would (the envelope
`<xml><ToUserName><Encrypt><AgentID></xml>`, msg_signature / timestamp / nonce in the query; the
time here is wecrm's clock), this posts it to `/wecom/callback`, then runs an RQ worker in
burst over the inbound and notification queues, and reads what the bot sent back from the fake
WeCom server's message/send log.

    side.send_text("rep00", "#今日#")   -> ["今日待办：…"]
    side.send_event("sys", {"Event": "change_external_contact", "ChangeType": …,
                            "UserID": "rep00", "ExternalUserID": "wm…"})
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import redis
from flask.testing import FlaskClient
from rq import SimpleWorker
from werkzeug.test import TestResponse

from bot.callback import CALLBACK_PATH
from config import Settings
from fake_wecom.callback import CallbackApp, Envelope
from fake_wecom.server import FakeWeCom
from workers import inbound as inbound_jobs
from workers import queues

# Far above anything the official vectors or a hand-written test use, so ids never collide.
FIRST_MSG_ID = 7_000_000_000_000_000_001


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
        self.app = CallbackApp(
            token=settings.wecom_token,
            aes_key=settings.wecom_aes_key,
            corp_id=settings.wecom_corp_id,
            agent_id=settings.wecom_agent_id,
        )
        self.clock = clock
        self.connection = connection
        self.fake_wecom = fake_wecom
        self._msg_ids = itertools.count(FIRST_MSG_ID)

    # -- what WeCom sends ------------------------------------------------------------------------

    def text_fields(self, userid: str, text: str) -> dict[str, Any]:
        """The fields of a member's text message, with a fresh MsgId."""
        return self.app.text(userid, text, msg_id=next(self._msg_ids), at=self.timestamp())

    def voice_fields(self, userid: str, media_id: str) -> dict[str, Any]:
        """The fields of a member's voice message (audio at `media_id`), with a fresh MsgId."""
        return self.app.voice(userid, media_id, msg_id=next(self._msg_ids), at=self.timestamp())

    def event_fields(self, userid: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of an event from `userid` ("sys" for WeCom's own), `fields` on top."""
        return self.app.event(userid, at=self.timestamp(), **fields)

    def timestamp(self) -> int:
        return int(self.clock().timestamp())

    def encrypt(self, fields: Mapping[str, Any], *, corp_id: str | None = None) -> Envelope:
        """The POST WeCom would make for these fields, signed at wecrm's clock; `corp_id`
        encrypts for another corp, as a misdirected or forged message would be."""
        app = self.app if corp_id is None else replace(self.app, corp_id=corp_id)
        return app.envelope(fields, timestamp=self.timestamp())

    def post(self, fields: Mapping[str, Any]) -> TestResponse:
        """Post one encrypted message to the callback, as WeCom does; the HTTP answer."""
        envelope = self.encrypt(fields)
        return self.client.post(
            f"{CALLBACK_PATH}?{urlencode(envelope.params)}",
            data=envelope.body,
            content_type="text/xml",
        )

    def work(self) -> None:
        """Process what was stored and send the replies (an RQ worker in burst)."""
        SimpleWorker([queues.INBOUND, queues.NOTIFICATIONS], connection=self.connection).work(
            burst=True
        )

    def sweep(self) -> None:
        """What the scheduler does every minute (the sweeper), then a worker."""
        queues.queue(self.connection, queues.INBOUND).enqueue(inbound_jobs.sweep_inbound)
        self.work()

    # -- the conversation ------------------------------------------------------------------------

    def send_text(self, userid: str, text: str) -> list[str]:
        """Member `userid` types `text`; the replies the bot sent to them because of it."""
        return self._exchange(self.text_fields(userid, text), userid)

    def send_voice(self, userid: str, audio: bytes, media_id: str) -> list[str]:
        """Member `userid` sends a voice message; the fake WeCom serves `audio` at `media_id`.
        The replies sent before it is transcribed (the transcription queue is not worked)."""
        self.fake_wecom.add_media(media_id, audio)
        return self._exchange(self.voice_fields(userid, media_id), userid)

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
