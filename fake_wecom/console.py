"""The fake WeCom's member console (/_fake/chat): type into the app as any member, tap the
buttons of an approval card, add a WeChat customer. Each becomes the encrypted callback request
WeCom itself would make, sent to the app's callback URL, so the demo talks to the bot exactly as
production does."""

from __future__ import annotations

import html
import itertools
import logging
import time
from typing import TYPE_CHECKING

import requests
from werkzeug.wrappers import Request, Response

from fake_wecom.callback import CallbackApp

if TYPE_CHECKING:
    from fake_wecom.server import FakeWeCom

log = logging.getLogger(__name__)
CHAT_PATH = "/_fake/chat"
POST_TIMEOUT_SECONDS = 5  # WeCom's own limit for a callback's answer
RECENT_CARDS = 10

PAGE = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>企业微信模拟：以成员身份操作</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; max-width: 60em; }}
form {{ margin: 0.6em 0; }} input[type=text] {{ width: 28em; }}
.note {{ background: #eef6ee; padding: 0.5em; }} .card {{ border: 1px solid #ccc; padding: 0.5em; }}
</style></head>
<body>
<h1>以成员身份操作</h1>
<p><a href="/">← 返回消息列表</a>　回调地址：<code>{url}</code></p>
{note}
<h2>给应用发消息</h2>
<form method="post"><input type="hidden" name="action" value="say">
<select name="userid">{members}</select>
<input type="text" name="content" placeholder="#今日#、#跟进# 客户 内容、#帮助# …" required>
<button>发送</button></form>
<h2>添加微信客户（触发“客户联系”事件）</h2>
<form method="post"><input type="hidden" name="action" value="contact">
<select name="userid">{members}</select>
<input type="text" name="name" placeholder="客户的微信昵称" required>
<button>添加</button></form>
<h2>最近的审批卡片</h2>
{cards}
</body></html>
"""


class Console:
    """Holds where the app's callback is and turns the page's forms into callback requests."""

    def __init__(self, fake: FakeWeCom) -> None:
        self.fake = fake
        self.url: str | None = None
        self.app: CallbackApp | None = None
        self._msg_ids = itertools.count(int(time.time()) * 1000)
        self._contacts = itertools.count(1)
        self._note = ""

    def connect(self, url: str, app: CallbackApp) -> None:
        self.url, self.app = url, app

    def say(self, userid: str, content: str) -> int:
        """Member `userid` types `content` into the app; the callback's HTTP status."""
        return self._deliver(self._app().text(userid, content, msg_id=next(self._msg_ids)))

    def click(self, userid: str, task_id: str, key: str) -> int:
        """Member `userid` taps the button `key` of the card `task_id`."""
        fields = self._app().event(
            userid,
            Event="template_card_event",
            EventKey=key,
            TaskId=task_id,
            CardType="button_interaction",
            ResponseCode=f"fake-{next(self._msg_ids)}",
        )
        return self._deliver(fields)

    def add_contact(self, userid: str, name: str) -> int:
        """Member `userid` adds a WeChat customer called `name`."""
        external_userid = f"wmfake{int(time.time())}{next(self._contacts)}"
        self.fake.add_external_contact(external_userid, name, userid=userid)
        fields = self._app().event(
            "sys",
            Event="change_external_contact",
            ChangeType="add_external_contact",
            UserID=userid,
            ExternalUserID=external_userid,
        )
        return self._deliver(fields)

    def handle(self, request: Request) -> Response:
        if request.method == "POST":
            form = request.form
            userid = form.get("userid", "")
            action = form.get("action")
            if action == "say":
                status = self.say(userid, form.get("content", ""))
            elif action == "click":
                status = self.click(userid, form.get("task_id", ""), form.get("key", ""))
            elif action == "contact":
                status = self.add_contact(userid, form.get("name", "").strip() or "微信客户")
            else:
                return Response("unknown action", status=400, mimetype="text/plain")
            self._note = (
                "已送达应用，回复稍后出现在消息列表。"
                if status == 200
                else f"应用回调返回 HTTP {status}。"
            )
            return Response("", status=303, headers={"Location": CHAT_PATH})
        return Response(self._page(), mimetype="text/html")

    def _app(self) -> CallbackApp:
        if self.app is None:
            raise RuntimeError("no app callback connected (FakeWeCom.console.connect)")
        return self.app

    def _deliver(self, fields: dict) -> int:
        envelope = self._app().envelope(fields)
        assert self.url is not None
        try:
            answer = requests.post(
                self.url, params=envelope.params, data=envelope.body, timeout=POST_TIMEOUT_SECONDS
            )
        except requests.RequestException as error:
            log.warning("callback unreachable: %s", type(error).__name__)
            return 0
        return answer.status_code

    def _page(self) -> str:
        members = "".join(
            f'<option value="{html.escape(u["userid"])}">{html.escape(u.get("name", ""))}'
            f"（{html.escape(u['userid'])}）</option>"
            for u in self.fake.members()
        )
        note, self._note = self._note, ""
        return PAGE.format(
            url=html.escape(self.url or "（未连接）"),
            note=f'<p class="note">{html.escape(note)}</p>' if note else "",
            members=members,
            cards="\n".join(self._cards()) or "<p>还没有审批卡片。</p>",
        )

    def _cards(self) -> list[str]:
        cards = [m for m in self.fake.messages if m["msgtype"] == "template_card"]
        rendered = []
        for message in reversed(cards[-RECENT_CARDS:]):
            card = message["template_card"]
            title = (card.get("main_title") or {}).get("title", "")
            forms = [
                '<form method="post" style="display:inline">'
                '<input type="hidden" name="action" value="click">'
                f'<input type="hidden" name="userid" value="{html.escape(userid)}">'
                f'<input type="hidden" name="task_id" value="{html.escape(card["task_id"])}">'
                f'<input type="hidden" name="key" value="{html.escape(button["key"])}">'
                f"<button>{html.escape(userid)}：{html.escape(button['text'])}</button></form>"
                for userid in message["touser"]
                for button in card.get("button_list", [])
            ]
            rendered.append(
                f'<div class="card"><b>{html.escape(title)}</b><br>{"".join(forms)}</div>'
            )
        return rendered
