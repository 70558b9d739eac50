"""A local stand-in for WeCom's server API, speaking its JSON on 127.0.0.1.

Tests drive the real ``wecom.WeComClient`` against it, and the demo runs it so newcomers can read,
on the page at ``/``, what reps and managers would receive. It implements only what wecrm calls:
gettoken, miniprogram/jscode2session, department/list, user/list, externalcontact/get,
msgaudit/check_single_agree (with the archive secret's token only), media/upload and media/get,
externalcontact/get_user_behavior_data (plausible figures per member and day, or those a test
set) and message/send (its per-member limit, template card task ids and duplicate check
included), with WeCom's errcodes (https://developer.work.weixin.qq.com/document/path/90313),
plus a few test controls. Its member console (``/_fake/chat``, fake_wecom/console.py) plays
WeCom's other half: it posts members' messages to an app's callback URL.

Like WeCom, every API answer is HTTP 200 with an ``errcode``; only ``set_unreachable(True)``
(HTTP 503) and unknown paths (HTTP 404) differ.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from fake_wecom.console import CHAT_PATH, Console

logger = logging.getLogger(__name__)

DEFAULT_CORP_ID = "wwfakecorp"
DEFAULT_SECRET = "fake-secret"
DEFAULT_ARCHIVE_SECRET = "fake-archive-secret"
# The app secret's token calling a msgaudit API: "api forbidden" (wecom-facts §4).
API_FORBIDDEN_ERRCODE = 48002
DEFAULT_AGENT_ID = 1000002
TOKEN_TTL_SECONDS = 7200
SHUTDOWN_POLL_SECONDS = 0.02
TEXT_CONTENT_MAX_BYTES = 2048
TEXTCARD_TITLE_MAX_CHARS = 128
TEXTCARD_DESCRIPTION_MAX_CHARS = 512
TEXTCARD_URL_MAX_BYTES = 2048
TEXTCARD_BTNTXT_MAX_CHARS = 4
# Template cards (https://developer.work.weixin.qq.com/document/path/90236). A task id is
# letters, digits and "_-@", at most 128 bytes, and the app may use it once: anything else
# answers 42014 ("taskid has existed or empty or exceed max len").
CARD_TYPES = frozenset(
    {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
)
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9_@-]+")
TASK_ID_MAX_BYTES = 128
TASK_ID_ERRCODE = 42014
CARD_MAX_BUTTONS = 6
CARD_MAX_HORIZONTAL_CONTENT = 6
BUTTON_KEY_MAX_BYTES = 1024
INVALID_PARAMETER_ERRCODE = 40058
MAX_USERS_PER_MESSAGE = 1000
MAX_PARTIES_PER_MESSAGE = 100
MAX_TAGS_PER_MESSAGE = 100
# WeCom accepts at most 30 app messages a minute to one member from one app; beyond that it
# drops them ("超过部分会被丢弃不下发", https://developer.work.weixin.qq.com/document/path/90312).
# WeCom documents no member-specific errcode; its global errcode page lists 45009 (接口调用超过
# 限制, https://developer.work.weixin.qq.com/document/path/90313) for broken frequency limits.
# The fake refuses with 45009 rather than dropping silently, so a test sees the limit broken.
MEMBER_MESSAGES_PER_MINUTE = 30
MEMBER_LIMIT_WINDOW_SECONDS = 60
MEMBER_LIMIT_ERRCODE = 45009
# message/send's enable_duplicate_check (90236): a message identical to one taken within
# duplicate_check_interval seconds (default 30 minutes, at most 4 hours) is not delivered again.
# The doc does not show the answer to a dropped duplicate; the fake answers ok with the first
# copy's msgid, which is what a sender that resends needs to read as "delivered".
DUPLICATE_CHECK_DEFAULT_SECONDS = 1800
DUPLICATE_CHECK_MAX_SECONDS = 4 * 3600
# get_user_behavior_data (92275): at most 100 members, a span of at most 30 days.
BEHAVIOR_MAX_USERS = 100
BEHAVIOR_MAX_DAYS = 30
BEHAVIOR_COUNTS = (
    "chat_cnt",
    "message_cnt",
    "negative_feedback_cnt",
    "new_apply_cnt",
    "new_contact_cnt",
)
SECONDS_PER_DAY = 86400
BEIJING_OFFSET_SECONDS = 8 * 3600

# media/upload (https://developer.work.weixin.qq.com/document/path/90253): an image is a JPG or
# PNG of 5 B to 10 MB; the fake checks images only, the one type wecrm uploads.
MEDIA_TYPES = frozenset({"image", "voice", "video", "file"})
IMAGE_MAX_BYTES = 10 * 1024 * 1024
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
INVALID_MEDIA_ERRCODE = 40007
MEDIA_PATH = "/_fake/media/"  # the page shows uploaded images from here, no token needed
MSGTYPES = frozenset(
    {
        "text",
        "image",
        "voice",
        "video",
        "file",
        "textcard",
        "news",
        "mpnews",
        "markdown",
        "miniprogram_notice",
        "template_card",
    }
)

# All user-facing Chinese text of the page at "/".
PAGE_TITLE = "企业微信模拟服务"
PAGE_TEMPLATE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #ccc; padding: 0.4em 0.6em; text-align: left; vertical-align: top; }}
td.content {{ white-space: pre-wrap; }}
td.content img {{ max-width: 480px; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>接口地址：<code>{base_url}</code>　已收到 {count} 条应用消息（最新的在最上面，每 5 秒刷新）。
机器可读版本：<a href="/_fake/messages">/_fake/messages</a>。
<a href="/_fake/chat">以成员身份给应用发消息、点审批卡片、添加微信客户</a></p>
<table>
<tr><th>时间</th><th>接收人</th><th>类型</th><th>内容</th></tr>
{rows}
</table>
</body>
</html>
"""
PAGE_EMPTY_ROW = '<tr><td colspan="4">还没有收到消息。</td></tr>'
PAGE_PARTY_LABEL = "部门"
PAGE_TAG_LABEL = "标签"


class _Fault(Exception):
    """A WeCom error answer: HTTP 200 with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


class _QuietRequestHandler(WSGIRequestHandler):
    """Send werkzeug's per-request lines to our logger instead of straight to stderr."""

    def log(self, type: str, message: str, *args: Any) -> None:
        logger.log(logging.ERROR if type == "error" else logging.INFO, message, *args)


class FakeWeCom:
    """An in-process WeCom HTTP server with test controls; see the module docstring."""

    def __init__(
        self,
        corp_id: str = DEFAULT_CORP_ID,
        secret: str = DEFAULT_SECRET,
        agent_id: int = DEFAULT_AGENT_ID,
        archive_secret: str = DEFAULT_ARCHIVE_SECRET,
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.archive_secret = archive_secret
        self.agent_id = agent_id
        self._lock = threading.RLock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._host = "127.0.0.1"
        # A handler answers a dict (sent as JSON with errcode 0) or a ready Response (a file).
        self._routes: dict[str, tuple[str, Callable[[Request], dict | Response]]] = {
            "gettoken": ("GET", self._gettoken),
            "miniprogram/jscode2session": ("GET", self._jscode2session),
            "department/list": ("GET", self._department_list),
            "user/list": ("GET", self._user_list),
            "message/send": ("POST", self._message_send),
            "externalcontact/get": ("GET", self._external_contact_get),
            "msgaudit/check_single_agree": ("POST", self._check_single_agree),
            "media/get": ("GET", self._media_get),
            "externalcontact/get_user_behavior_data": ("POST", self._user_behavior_data),
            "media/upload": ("POST", self._media_upload),
        }
        self.console = Console(self)
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeWeCom:
        """Serve in a daemon thread; port 0 picks a free port."""
        if self._server is not None:
            raise RuntimeError("FakeWeCom is already running")
        try:
            self._server = make_server(
                host, port, self._wsgi_app, threaded=True, request_handler=_QuietRequestHandler
            )
        except SystemExit:
            # werkzeug prints the reason and calls sys.exit() when it cannot bind.
            raise OSError(f"FakeWeCom cannot listen on {host}:{port}") from None
        self._host = host
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # How often the loop checks for stop(); werkzeug's 0.5 s made every test wait.
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="fake-wecom",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; safe to call twice."""
        if self._server is None:
            return
        self._server.shutdown()  # serve_forever() closes the listening socket on its way out
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeWeCom:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port being served (useful after start(port=0))."""
        if self._server is None:
            raise RuntimeError("FakeWeCom is not running")
        return self._server.port

    @property
    def page_url(self) -> str:
        """The human-readable page listing received messages."""
        host = "127.0.0.1" if self._host in ("", "0.0.0.0", "::") else self._host
        return f"http://{host}:{self.port}/"

    @property
    def base_url(self) -> str:
        """What to pass as WeComClient(api_base=...)."""
        return f"{self.page_url}cgi-bin/"

    # -- data and test controls ------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything: tokens, codes, directory, messages, counters and injected faults."""
        with self._lock:
            self._tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
            self._token_secrets: dict[str, str] = {}  # token -> the secret it was issued for
            # (userid, external_userid) pairs that refused archiving; every other pair agrees
            self._archive_refusals: set[tuple[str, str]] = set()
            self._codes: dict[str, str] = {}  # login code -> userid
            self._departments: list[dict] = []
            self._users: list[dict] = []
            self._external_contacts: dict[str, dict] = {}  # external_userid -> get's answer
            self._media: dict[str, tuple[bytes, str]] = {}  # media_id -> (bytes, content type)
            # (userid, stat_time) -> one day's 联系客户统计, where a test set it
            self._behavior: dict[tuple[str, int], dict] = {}
            self._failures: dict[str, list[int]] = {}  # endpoint -> errcodes still to answer
            self._unreachable = False
            self.messages: list[dict] = []  # accepted message/send bodies, oldest first
            # accepted media/upload files, oldest first: media_id, type, filename, data
            self.uploads: list[dict] = []
            self._member_sends: dict[str, list[float]] = {}  # lower-cased userid -> send times
            self._task_ids: set[str] = set()  # template card task ids used so far
            # what a message said (recipients, type, content) -> (when it was taken, its msgid)
            self._taken: dict[str, tuple[float, str]] = {}
            # The clock of the per-member limit and the duplicate check; tests that move
            # wecrm's clock may move this one too.
            self.clock: Callable[[], float] = time.time
            self.calls: list[str] = []  # every API endpoint called, in order
            self.token_requests = 0

    def register_code(self, code: str, userid: str) -> None:
        """Make ``code`` a valid, single-use wx.qy.login code for ``userid``."""
        with self._lock:
            self._codes[code] = userid

    def load_directory(self, departments: list[dict], users: list[dict]) -> None:
        """Replace the address book; users carry ``userid`` and ``department`` (a list of ids)."""
        for department in departments:
            if "id" not in department:
                raise ValueError(f"department without id: {department!r}")
        for user in users:
            if "userid" not in user or not isinstance(user.get("department"), list):
                raise ValueError(f"user needs userid and a department list: {user!r}")
        with self._lock:
            self._departments = [dict(d) for d in departments]
            self._users = [dict(u) for u in users]

    def add_external_contact(
        self,
        external_userid: str,
        name: str,
        *,
        userid: str,
        corp_name: str = "",
        mobiles: tuple[str, ...] = (),
    ) -> None:
        """Make ``external_userid`` a WeChat customer whom member ``userid`` added."""
        with self._lock:
            self._external_contacts[external_userid] = {
                "external_contact": {
                    "external_userid": external_userid,
                    "name": name,
                    "type": 2 if corp_name else 1,  # 1 WeChat user, 2 WeCom user
                    "corp_name": corp_name,
                },
                "follow_user": [
                    {"userid": userid, "remark_mobiles": list(mobiles), "createtime": 0}
                ],
            }

    def refuse_archiving(self, userid: str, external_userid: str) -> None:
        """Make check_single_agree answer Disagree for this member and external contact."""
        with self._lock:
            self._archive_refusals.add((userid, external_userid))

    def add_media(self, media_id: str, data: bytes, content_type: str = "audio/amr") -> None:
        """Serve ``data`` at media/get under ``media_id`` (a voice message's MediaId)."""
        with self._lock:
            self._media[media_id] = (data, content_type)

    def set_behavior(self, userid: str, stat_time: int, **figures: Any) -> None:
        """Answer these 联系客户统计 figures for ``userid`` on the day starting at ``stat_time``
        (unix seconds of a Beijing midnight) instead of the made-up ones."""
        with self._lock:
            self._behavior[userid, stat_time] = {"stat_time": stat_time, **figures}

    def expire_tokens(self) -> None:
        """Make every token issued so far expired, so using one answers 42001."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def fail_next(self, endpoint: str, errcode: int, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``endpoint`` ("user/list", ...) with ``errcode``."""
        with self._lock:
            self._failures.setdefault(endpoint, []).extend([errcode] * times)

    def set_unreachable(self, unreachable: bool) -> None:
        """While True, every API call answers HTTP 503, as if WeCom were down."""
        with self._lock:
            self._unreachable = unreachable

    # -- HTTP ------------------------------------------------------------------------------------

    def members(self) -> list[dict]:
        """The address book's members (as loaded), for the console."""
        with self._lock:
            return [dict(u) for u in self._users]

    def _wsgi_app(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        if request.path == CHAT_PATH:  # calls the app's callback: not while holding the lock
            return self.console.handle(request)(environ, start_response)
        with self._lock:
            response = self._dispatch(request)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        if request.path == "/":
            return Response(self._render_page(), mimetype="text/html")
        if request.path == "/_fake/messages":
            return _json_response({"messages": self.messages})
        if request.path.startswith(MEDIA_PATH):
            media = self._media.get(request.path.removeprefix(MEDIA_PATH))
            if media is None:
                return Response("not found", status=404, mimetype="text/plain")
            return Response(media[0], mimetype=media[1])
        if not request.path.startswith("/cgi-bin/"):
            return Response("not found", status=404, mimetype="text/plain")
        if self._unreachable:
            return Response("service unavailable", status=503, mimetype="text/plain")
        endpoint = request.path.removeprefix("/cgi-bin/")
        route = self._routes.get(endpoint)
        if route is None:
            return Response("not found", status=404, mimetype="text/plain")
        method, handler = route
        if request.method != method:
            return Response("method not allowed", status=405, mimetype="text/plain")
        self.calls.append(endpoint)
        if endpoint == "gettoken":
            self.token_requests += 1
        try:
            if self._failures.get(endpoint):
                raise _Fault(self._failures[endpoint].pop(0), "injected by FakeWeCom.fail_next")
            if endpoint != "gettoken":
                self._check_token(request.args.get("access_token"))
            if endpoint.startswith("msgaudit/"):
                secret = self._token_secrets.get(request.args.get("access_token", ""))
                if secret != self.archive_secret:
                    raise _Fault(API_FORBIDDEN_ERRCODE, "api forbidden")
            answer = handler(request)
            if isinstance(answer, Response):
                return answer
            body = {"errcode": 0, "errmsg": "ok", **answer}
        except _Fault as fault:
            body = {"errcode": fault.errcode, "errmsg": fault.errmsg}
        return _json_response(body)

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise _Fault(41001, "access_token missing")
        expires_at = self._tokens.get(token)
        if expires_at is None:
            raise _Fault(40014, "invalid access_token")
        if expires_at <= time.time():
            raise _Fault(42001, "access_token expired")

    # -- endpoints -------------------------------------------------------------------------------

    def _gettoken(self, request: Request) -> dict:
        """https://developer.work.weixin.qq.com/document/path/91039"""
        if request.args.get("corpid") != self.corp_id:
            raise _Fault(40013, "invalid corpid")
        secret = request.args.get("corpsecret")
        if secret not in (self.secret, self.archive_secret):
            raise _Fault(40001, "invalid credential")
        # Like WeCom, hand out the same token again until it expires (one per secret).
        now = time.time()
        live = [
            (expires, token)
            for token, expires in self._tokens.items()
            if expires > now and self._token_secrets.get(token) == secret
        ]
        if live:
            expires_at, token = max(live)
        else:
            token, expires_at = secrets.token_urlsafe(32), now + TOKEN_TTL_SECONDS
            self._tokens[token] = expires_at
            self._token_secrets[token] = secret
        return {"access_token": token, "expires_in": math.ceil(expires_at - now)}

    def _check_single_agree(self, request: Request) -> dict:
        """https://developer.work.weixin.qq.com/document/path/92951 ("exteranalopenid" sic)"""
        try:
            body = json.loads(request.get_data())
        except ValueError:
            body = None
        info = body.get("info") if isinstance(body, dict) else None
        if not isinstance(info, list) or not info:
            raise _Fault(INVALID_PARAMETER_ERRCODE, "info is required")
        answers = []
        for pair in info:
            if not isinstance(pair, dict) or not pair.get("userid"):
                raise _Fault(INVALID_PARAMETER_ERRCODE, "invalid info item")
            key = (pair["userid"], pair.get("exteranalopenid", ""))
            refused = key in self._archive_refusals
            answers.append(
                {
                    "userid": key[0],
                    "exteranalopenid": key[1],
                    "agree_status": "Disagree" if refused else "Agree",
                    "status_change_time": int(time.time()),
                }
            )
        return {"agreeinfo": answers}

    def _jscode2session(self, request: Request) -> dict:
        """https://developer.work.weixin.qq.com/document/path/91507"""
        userid = self._codes.pop(request.args.get("js_code", ""), None)  # each code works once
        if userid is None or request.args.get("grant_type") != "authorization_code":
            raise _Fault(40029, "invalid code")
        return {"corpid": self.corp_id, "userid": userid, "session_key": secrets.token_hex(16)}

    def _department_list(self, request: Request) -> dict:
        """https://developer.work.weixin.qq.com/document/path/90208"""
        if "id" not in request.args:
            return {"department": [dict(d) for d in self._departments]}
        root = _int_arg(request, "id")
        subtree = self._subtree(root)
        if not subtree:
            raise _Fault(60003, "department not found")
        return {"department": [dict(d) for d in self._departments if d["id"] in subtree]}

    def _user_list(self, request: Request) -> dict:
        """https://developer.work.weixin.qq.com/document/path/90201"""
        if "department_id" not in request.args:
            raise _Fault(41019, "missing department_id")
        department_id = _int_arg(request, "department_id")
        if request.args.get("fetch_child") == "1":
            wanted = self._subtree(department_id)
        else:
            wanted = {department_id} if self._find_department(department_id) else set()
        if not wanted:
            raise _Fault(60003, "department not found")
        users = [dict(u) for u in self._users if wanted.intersection(u["department"])]
        return {"userlist": users}

    def _message_send(self, request: Request) -> dict:
        """https://developer.work.weixin.qq.com/document/path/90236"""
        try:
            body = json.loads(request.get_data())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _Fault(47001, "data format error")
        if "agentid" not in body:
            raise _Fault(41011, "missing agentid")
        if str(body["agentid"]) != str(self.agent_id):
            raise _Fault(40056, "invalid agentid")
        touser = _recipients(body, "touser", MAX_USERS_PER_MESSAGE, 40032)
        toparty = _recipients(body, "toparty", MAX_PARTIES_PER_MESSAGE, 82002)
        totag = _recipients(body, "totag", MAX_TAGS_PER_MESSAGE, 82003)
        if not (touser or toparty or totag):
            raise _Fault(40058, "touser, toparty and totag are all empty")
        msgtype = body.get("msgtype")
        if msgtype not in MSGTYPES:
            raise _Fault(40008, "invalid message type")
        content = body.get(msgtype)
        if not isinstance(content, dict):
            raise _Fault(40058, f"missing {msgtype}")
        _check_content(msgtype, content)
        if msgtype == "image" and content.get("media_id") not in self._media:
            raise _Fault(INVALID_MEDIA_ERRCODE, "invalid media_id")
        task_id = content.get("task_id") if msgtype == "template_card" else None
        if task_id is not None and task_id in self._task_ids:
            raise _Fault(TASK_ID_ERRCODE, "taskid has existed or empty or exceed max len")

        # Unknown recipients are dropped and reported, as WeCom does, but only when a directory
        # is loaded: without one every recipient is accepted. Tags are never checked.
        invaliduser = [u for u in touser if u != "@all" and not self._is_known_user(u)]
        invalidparty = [p for p in toparty if self._departments and not self._is_known_party(p)]
        valid_users = [u for u in touser if u not in invaliduser]
        valid_parties = [p for p in toparty if p not in invalidparty]
        if not (valid_users or valid_parties or totag):
            raise _Fault(81013, "user & party & tag all invalid")
        said = json.dumps([touser, toparty, totag, msgtype, content], sort_keys=True)
        duplicate_of = self._duplicate_of(body, said)
        if duplicate_of is not None:
            return {**self._send_answer(invaliduser, invalidparty), "msgid": duplicate_of}
        self._count_member_sends([u for u in valid_users if u != "@all"])
        if task_id is not None:
            self._task_ids.add(task_id)

        msgid = secrets.token_urlsafe(16)
        self._taken[said] = (self.clock(), msgid)
        self.messages.append(
            {
                "msgid": msgid,
                "received_at": datetime.now().astimezone().isoformat(timespec="seconds"),
                "agentid": self.agent_id,
                "touser": valid_users,
                "toparty": valid_parties,
                "totag": totag,
                "msgtype": msgtype,
                msgtype: content,
            }
        )
        return {**self._send_answer(invaliduser, invalidparty), "msgid": msgid}

    def _duplicate_of(self, body: dict, said: str) -> str | None:
        """The msgid of the message this one repeats, when the sender asked for the check."""
        if body.get("enable_duplicate_check") != 1:
            return None
        interval = body.get("duplicate_check_interval", DUPLICATE_CHECK_DEFAULT_SECONDS)
        if not isinstance(interval, int) or not 0 < interval <= DUPLICATE_CHECK_MAX_SECONDS:
            raise _Fault(INVALID_PARAMETER_ERRCODE, "invalid duplicate_check_interval")
        taken = self._taken.get(said)
        if taken is None or self.clock() - taken[0] >= interval:
            return None
        return taken[1]

    @staticmethod
    def _send_answer(invaliduser: list[str], invalidparty: list[str]) -> dict:
        return {
            "invaliduser": "|".join(u.lower() for u in invaliduser),  # WeCom lower-cases these
            "invalidparty": "|".join(invalidparty),
            "invalidtag": "",
            "unlicenseduser": "",
        }

    def _media_get(self, request: Request) -> Response:
        """https://developer.work.weixin.qq.com/document/path/90254: the file itself; an
        unknown media_id answers JSON errcode 40007 like WeCom."""
        media = self._media.get(request.args.get("media_id", ""))
        if media is None:
            raise _Fault(40007, "invalid media_id")
        data, content_type = media
        return Response(data, mimetype=content_type)

    def _media_upload(self, request: Request) -> dict:
        """https://developer.work.weixin.qq.com/document/path/90253: multipart field "media"."""
        media_type = request.args.get("type", "")
        if media_type not in MEDIA_TYPES:
            raise _Fault(40004, "invalid media type")
        upload = request.files.get("media")
        if upload is None:
            raise _Fault(41001, "missing media")
        data = upload.read()
        upload.close()  # a large upload is spooled to a temporary file
        if media_type == "image" and not (
            5 <= len(data) <= IMAGE_MAX_BYTES and data.startswith(IMAGE_SIGNATURES)
        ):
            raise _Fault(40005, "invalid file type")
        media_id = secrets.token_urlsafe(24)
        content_type = upload.mimetype or "application/octet-stream"
        self._media[media_id] = (data, content_type)
        self.uploads.append(
            {"media_id": media_id, "type": media_type, "filename": upload.filename, "data": data}
        )
        return {"type": media_type, "media_id": media_id, "created_at": str(int(time.time()))}

    def _external_contact_get(self, request: Request) -> dict:
        """https://developer.work.weixin.qq.com/document/path/92114"""
        contact = self._external_contacts.get(request.args.get("external_userid", ""))
        if contact is None:
            raise _Fault(84061, "not external contact")
        return contact

    def _user_behavior_data(self, request: Request) -> dict:
        """https://developer.work.weixin.qq.com/document/path/92275: one entry per day of
        [start_time, end_time] (times rounded down to Beijing midnight), at most 30 days; several
        members answer their sum, as in WeCom."""
        try:
            body = json.loads(request.get_data())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _Fault(INVALID_PARAMETER_ERRCODE, "invalid json")
        userids = body.get("userid") or []
        start, end = body.get("start_time"), body.get("end_time")
        if not isinstance(userids, list) or not userids or len(userids) > BEHAVIOR_MAX_USERS:
            raise _Fault(INVALID_PARAMETER_ERRCODE, "userid is required, at most 100")
        if not isinstance(start, int) or not isinstance(end, int):
            raise _Fault(INVALID_PARAMETER_ERRCODE, "start_time and end_time are required")
        first, last = _beijing_midnight(start), _beijing_midnight(end)
        if last < first or (last - first) // SECONDS_PER_DAY >= BEHAVIOR_MAX_DAYS:
            raise _Fault(INVALID_PARAMETER_ERRCODE, "invalid time range, at most 30 days")
        for userid in userids:
            if not self._is_known_user(str(userid)):
                raise _Fault(60111, f"userid not found: {userid}")
        days = range(first, last + 1, SECONDS_PER_DAY)
        return {"behavior_data": [self._behavior_day(userids, day) for day in days]}

    def _behavior_day(self, userids: list[str], stat_time: int) -> dict:
        rows = [
            self._behavior.get((u, stat_time)) or _made_up_behavior(u, stat_time) for u in userids
        ]
        day: dict[str, Any] = {"stat_time": stat_time}
        for key in BEHAVIOR_COUNTS:
            day[key] = sum(int(r.get(key, 0)) for r in rows)
        for key in ("reply_percentage", "avg_reply_time"):  # only where there were chats
            values = [r[key] for r in rows if key in r]
            if values:
                day[key] = round(sum(values) / len(values), 2)
        return day

    def _count_member_sends(self, userids: list[str]) -> None:
        """Refuse the message if any member already had their minute's worth, else count it."""
        now = self.clock()
        window_start = now - MEMBER_LIMIT_WINDOW_SECONDS
        recent = {}
        for userid in {u.lower() for u in userids}:
            recent[userid] = [t for t in self._member_sends.get(userid, []) if t > window_start]
            if len(recent[userid]) >= MEMBER_MESSAGES_PER_MINUTE:
                raise _Fault(MEMBER_LIMIT_ERRCODE, f"api freq out of limit for member {userid}")
        for userid, times in recent.items():
            self._member_sends[userid] = [*times, now]

    # -- directory helpers -----------------------------------------------------------------------

    def _find_department(self, department_id: int) -> dict | None:
        return next((d for d in self._departments if d["id"] == department_id), None)

    def _subtree(self, root: int) -> set[int]:
        """``root`` and every department below it; empty if ``root`` is unknown."""
        if self._find_department(root) is None:
            return set()
        found = {root}
        frontier = [root]
        while frontier:
            parent = frontier.pop()
            for department in self._departments:
                if department.get("parentid") == parent and department["id"] not in found:
                    found.add(department["id"])
                    frontier.append(department["id"])
        return found

    def _is_known_user(self, userid: str) -> bool:
        # WeCom userids are case-insensitive. With no directory loaded, everyone is known.
        return not self._users or any(u["userid"].lower() == userid.lower() for u in self._users)

    def _is_known_party(self, party: str) -> bool:
        return any(str(d["id"]) == party for d in self._departments)

    # -- the page --------------------------------------------------------------------------------

    def _render_page(self) -> str:
        names = {u["userid"]: u.get("name", u["userid"]) for u in self._users}
        rows = []
        for message in reversed(self.messages):
            recipients = [f"{names[u]} ({u})" if u in names else u for u in message["touser"]]
            recipients += [f"{PAGE_PARTY_LABEL} {p}" for p in message["toparty"]]
            recipients += [f"{PAGE_TAG_LABEL} {t}" for t in message["totag"]]
            cells = [
                message["received_at"],
                "\n".join(recipients),
                message["msgtype"],
                _summarise(message["msgtype"], message[message["msgtype"]]),
            ]
            escaped = [html.escape(cell) for cell in cells]
            if message["msgtype"] == "image":
                src = html.escape(MEDIA_PATH + message["image"]["media_id"], quote=True)
                escaped[3] = f'<a href="{src}"><img src="{src}" alt="{escaped[3]}"></a>'
            rows.append(
                f"<tr><td>{escaped[0]}</td><td class=content>{escaped[1]}</td>"
                f"<td>{escaped[2]}</td><td class=content>{escaped[3]}</td></tr>"
            )
        return PAGE_TEMPLATE.format(
            title=PAGE_TITLE,
            base_url=html.escape(self.base_url),
            count=len(self.messages),
            rows="\n".join(rows) or PAGE_EMPTY_ROW,
        )


def _beijing_midnight(unix_seconds: int) -> int:
    return unix_seconds - (unix_seconds + BEIJING_OFFSET_SECONDS) % SECONDS_PER_DAY


def _made_up_behavior(userid: str, stat_time: int) -> dict:
    """Plausible figures, the same for the same member and day: a rep chats with a handful of
    customers a day, answers most chats within an hour; quieter at weekends."""
    seed = int.from_bytes(hashlib.sha256(f"{userid}:{stat_time}".encode()).digest()[:8], "big")
    weekday = datetime.fromtimestamp(stat_time + BEIJING_OFFSET_SECONDS, UTC).weekday()
    chats = (seed % 9 + 2) // (3 if weekday >= 5 else 1)
    figures: dict[str, Any] = {
        "stat_time": stat_time,
        "chat_cnt": chats,
        "message_cnt": chats * (3 + seed // 9 % 6),
        "negative_feedback_cnt": int(seed // 54 % 20 == 0),
        "new_apply_cnt": seed // 1080 % 3,
        "new_contact_cnt": seed // 3240 % 3,
    }
    if chats:
        figures["reply_percentage"] = float(60 + seed // 9720 % 41)
        figures["avg_reply_time"] = 2 + seed // 398520 % 58
    return figures


def _json_response(body: dict) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), mimetype="application/json")


def _int_arg(request: Request, name: str) -> int:
    try:
        return int(request.args[name])
    except ValueError:
        raise _Fault(40058, f"invalid {name}") from None


def _recipients(body: dict, field: str, limit: int, too_many_errcode: int) -> list[str]:
    """Split a "a|b|c" recipient field; WeCom wants a string, not a JSON list."""
    value = body.get(field, "")
    if not isinstance(value, str):
        raise _Fault(40058, f"{field} must be a string joined by '|'")
    recipients = [part for part in value.split("|") if part]
    if len(recipients) > limit:
        raise _Fault(too_many_errcode, f"too many {field}")
    return recipients


def _check_content(msgtype: str, content: dict) -> None:
    """Check the per-type object against WeCom's documented limits for the types we send."""
    if msgtype in ("text", "markdown"):
        text = content.get("content")
        if not isinstance(text, str) or not text:
            raise _Fault(44004, "empty content")
        if len(text.encode()) > TEXT_CONTENT_MAX_BYTES:
            raise _Fault(45002, "content size out of limit")
    elif msgtype == "textcard":
        for field, errcode in (("title", 41016), ("description", 41033), ("url", 41010)):
            if not content.get(field):
                raise _Fault(errcode, f"missing {field}")
        if (
            len(content["title"]) > TEXTCARD_TITLE_MAX_CHARS
            or len(content["description"]) > TEXTCARD_DESCRIPTION_MAX_CHARS
            or len(content["url"].encode()) > TEXTCARD_URL_MAX_BYTES
            or len(content.get("btntxt", "")) > TEXTCARD_BTNTXT_MAX_CHARS
        ):
            raise _Fault(45002, "content size out of limit")
    elif msgtype == "template_card":
        _check_template_card(content)
    elif msgtype == "image" and not content.get("media_id"):
        raise _Fault(41006, "missing media_id")


def _check_template_card(card: dict) -> None:
    """A template card's shape; button_interaction (the type wecrm sends) in full."""
    card_type = card.get("card_type")
    if card_type not in CARD_TYPES:
        raise _Fault(INVALID_PARAMETER_ERRCODE, "invalid card_type")
    task_id = card.get("task_id")
    # Cards that call back need a task id; notice cards only when they carry an action menu.
    needs_task_id = card_type.endswith("_interaction") or "action_menu" in card
    if (task_id is not None or needs_task_id) and not _is_task_id(task_id):
        raise _Fault(TASK_ID_ERRCODE, "taskid has existed or empty or exceed max len")
    if card_type != "button_interaction":
        return
    main_title = card.get("main_title") or {}
    if not isinstance(main_title, dict) or not (
        main_title.get("title") or card.get("sub_title_text")
    ):
        raise _Fault(INVALID_PARAMETER_ERRCODE, "main_title.title and sub_title_text are empty")
    lines = card.get("horizontal_content_list", [])
    if not isinstance(lines, list) or len(lines) > CARD_MAX_HORIZONTAL_CONTENT:
        raise _Fault(INVALID_PARAMETER_ERRCODE, "invalid horizontal_content_list")
    if not all(isinstance(line, dict) and line.get("keyname") for line in lines):
        raise _Fault(INVALID_PARAMETER_ERRCODE, "horizontal_content_list.keyname missing")
    buttons = card.get("button_list")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= CARD_MAX_BUTTONS:
        raise _Fault(INVALID_PARAMETER_ERRCODE, "button_list needs 1 to 6 buttons")
    keys = []
    for button in buttons:
        if not isinstance(button, dict) or not button.get("text"):
            raise _Fault(INVALID_PARAMETER_ERRCODE, "button_list.text missing")
        if button.get("type", 0) == 1:
            if not button.get("url"):
                raise _Fault(INVALID_PARAMETER_ERRCODE, "button_list.url missing")
            continue
        key = button.get("key")
        if not isinstance(key, str) or not key or len(key.encode()) > BUTTON_KEY_MAX_BYTES:
            raise _Fault(INVALID_PARAMETER_ERRCODE, "invalid button_list.key")
        keys.append(key)
    if len(set(keys)) != len(keys):
        raise _Fault(INVALID_PARAMETER_ERRCODE, "button_list.key repeated")


def _is_task_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and TASK_ID_PATTERN.fullmatch(value) is not None
        and len(value.encode()) <= TASK_ID_MAX_BYTES
    )


def _summarise(msgtype: str, content: dict) -> str:
    """The part of a message a reader cares about, as plain text."""
    if msgtype in ("text", "markdown"):
        return content["content"]
    if msgtype == "textcard":
        lines = [content["title"], content["description"], content["url"]]
        return "\n".join(lines + ([content["btntxt"]] if content.get("btntxt") else []))
    if msgtype == "image":
        return content["media_id"]
    if msgtype == "template_card" and content.get("card_type") == "button_interaction":
        lines = [content.get("main_title", {}).get("title", ""), content.get("sub_title_text", "")]
        lines += [
            f"{i['keyname']}：{i.get('value', '')}"
            for i in content.get("horizontal_content_list", [])
        ]
        lines.append("  ".join(f"[{b['text']}]" for b in content["button_list"]))
        return "\n".join(line for line in lines if line)
    return json.dumps(content, ensure_ascii=False, indent=2)
