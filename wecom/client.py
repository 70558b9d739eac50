"""WeCom server API client: wechatpy underneath, with our own token handling and errors.

wechatpy 1.8.18 (``wechatpy.enterprise``) does the HTTP plumbing. We wrap it because, as shipped:
it fetches tokens from a hard-coded host and without a timeout, its retry on token errors never
stops, it keys the shared token by the secret's first characters, and it reports failures as a
mix of its own and ``requests`` exceptions whose text and chain quote the URL, ``corpsecret=`` or
``access_token=`` included. Our errors carry neither: they are raised outside the ``except``
block, so no ``__cause__`` or ``__context__`` leads back to the request.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import requests
from redis import Redis
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.redisstorage import RedisStorage

from config import redaction

logger = logging.getLogger(__name__)

TOKEN_STORAGE_PREFIX = "wecrm:wecom"
DEFAULT_TOKEN_TTL_SECONDS = 7200
# 40014 invalid and 42001 expired token: refetch and retry once. 40001 means a bad secret, which a
# refetch cannot fix. See https://developer.work.weixin.qq.com/document/path/90313
TOKEN_ERRCODES = frozenset({40014, 42001})
UNAVAILABLE_ERRCODE = -1


class WeComError(Exception):
    """WeCom answered with an errcode other than 0, or with an HTTP error."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        # Both go to Exception so the error pickles (RQ, multiprocessing) and reprs usefully.
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    def __str__(self) -> str:
        return f"WeCom error {self.errcode}: {self.errmsg}"


class WeComUnavailable(WeComError):
    """WeCom could not be reached: network failure, timeout, HTTP 5xx or a reply that is not JSON.

    Always has errcode -1 (WeCom's own "system busy, retry later"); worth retrying later.
    """


class _WeChatClient(WeChatClient):
    """wechatpy's enterprise client pointed at ``api_base`` for every call, gettoken included."""

    def __init__(self, *, api_base: str, **kwargs: Any) -> None:
        # _request() builds URLs from self.API_BASE_URL, so an instance attribute is enough.
        self.API_BASE_URL = api_base
        super().__init__(**kwargs)

    @property
    def access_token_key(self) -> str:
        """The shared token's key: one per (corp, secret), naming neither secret nor part of it."""
        # wechatpy's own key holds the secret's first 10 characters, readable by anyone who can
        # list the Redis keys.
        app = hashlib.sha256(f"{self.corp_id}\0{self.secret}".encode()).hexdigest()[:16]
        return f"{self.corp_id}_{app}_access_token"

    @property
    def access_token(self) -> str:
        """The shared token (fetched when missing); this process's logs redact it from now on."""
        token = super().access_token
        redaction.add_token(token)
        return token

    def fetch_access_token(self) -> dict:
        """Fetch a token and store it (https://developer.work.weixin.qq.com/document/path/91039)."""
        # wechatpy's version calls https://qyapi.weixin.qq.com with no timeout, so a stalled
        # network would hang the caller forever.
        result = _decode(
            self._http.get(
                f"{self.API_BASE_URL}gettoken",
                params={"corpid": self.corp_id, "corpsecret": self.secret},
                timeout=self.timeout,
            )
        )
        # The Redis TTL alone decides when every process refetches: expires_at stays None, so
        # wechatpy trusts whatever Redis holds. No safety margin: WeCom hands out the same token
        # until it expires, so a margin would only shorten its last stretch, and a token that
        # expires in flight costs one 42001 and one retry.
        ttl = int(result.get("expires_in", DEFAULT_TOKEN_TTL_SECONDS))
        self.session.set(self.access_token_key, result["access_token"], ttl)
        return result


def _decode(response: requests.Response) -> dict:
    """Turn a gettoken HTTP response into its JSON, or raise the matching WeComError."""
    if response.status_code >= 400:
        raise _http_error("gettoken", response.status_code)
    try:
        result = response.json()
    except ValueError:
        raise WeComUnavailable(UNAVAILABLE_ERRCODE, "gettoken answered non-JSON") from None
    if result.get("errcode", 0) != 0:
        raise WeComError(int(result["errcode"]), str(result.get("errmsg", "")))
    return result


def _http_error(endpoint: str, status: int) -> WeComError:
    """WeCom answers errors as HTTP 200 + errcode, so an HTTP error status came from elsewhere."""
    # 5xx: WeCom or a gateway is down, so retry later. 4xx: our request or api_base is wrong.
    error_class = WeComUnavailable if status >= 500 else WeComError
    return error_class(UNAVAILABLE_ERRCODE, f"{endpoint} answered HTTP {status}")


class WeComClient:
    """Our one door to WeCom's server API: token shared in Redis, bounded retry, WeComError."""

    def __init__(
        self,
        *,
        corp_id: str,
        secret: str,
        agent_id: int,
        api_base: str,
        redis: Redis,
        timeout: float = 5.0,
    ) -> None:
        self.agent_id = agent_id
        self._wechat = _WeChatClient(
            api_base=api_base,
            corp_id=corp_id,
            secret=secret,
            session=RedisStorage(redis, prefix=TOKEN_STORAGE_PREFIX),
            timeout=timeout,
            # wechatpy's own retry on token errors recurses without a bound; ours is in _call().
            auto_retry=False,
        )

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._wechat._http.close()

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(self, endpoint: str, **params: Any) -> dict:
        """GET a WeCom endpoint (https://developer.work.weixin.qq.com/document/path/90664)."""
        return self._call(endpoint, params=params)

    def post(self, endpoint: str, payload: dict) -> dict:
        """POST JSON to a WeCom endpoint (https://developer.work.weixin.qq.com/document/path/90664)."""
        return self._call(endpoint, payload=payload)

    def code_to_session(self, code: str) -> dict:
        """Exchange a wx.qy.login code (https://developer.work.weixin.qq.com/document/path/91507)."""
        return self.get("miniprogram/jscode2session", js_code=code, grant_type="authorization_code")

    def list_departments(self) -> list[dict]:
        """All departments (https://developer.work.weixin.qq.com/document/path/90208)."""
        return self.get("department/list")["department"]

    def list_department_users(self, department_id: int) -> list[dict]:
        """Members of one department (https://developer.work.weixin.qq.com/document/path/90201)."""
        return self.get("user/list", department_id=department_id, fetch_child=0)["userlist"]

    def get_external_contact(self, external_userid: str) -> dict:
        """A customer's WeChat profile and the members who added them
        (https://developer.work.weixin.qq.com/document/path/92114)."""
        return self.get("externalcontact/get", external_userid=external_userid)

    def check_single_agree(self, pairs: Sequence[tuple[str, str]]) -> list[dict]:
        """Whether each (member userid, external_userid) pair agreed to chat archiving
        (msgaudit/check_single_agree, https://developer.work.weixin.qq.com/document/path/92951).
        Only a client built with the archive secret may call it (the app secret gets 48002)."""
        # "exteranalopenid" is WeCom's own spelling.
        info = [{"userid": userid, "exteranalopenid": external} for userid, external in pairs]
        return list(self.post("msgaudit/check_single_agree", {"info": info}).get("agreeinfo", []))

    def get_user_behavior_data(self, userid: str, start_time: int, end_time: int) -> list[dict]:
        """One member's 联系客户统计 per day, both ends included, at most 30 days, in unix
        seconds of Beijing midnights (externalcontact/get_user_behavior_data,
        https://developer.work.weixin.qq.com/document/path/92275). Several userids would answer
        their sum, so it takes one."""
        payload = {"userid": [userid], "start_time": start_time, "end_time": end_time}
        return list(self.post("externalcontact/get_user_behavior_data", payload)["behavior_data"])

    def download_media(self, media_id: str) -> bytes:
        """A temporary media file's bytes, e.g. a voice message's AMR (media/get,
        https://developer.work.weixin.qq.com/document/path/90254). WeCom answers the file itself,
        or JSON when it refuses (an expired or unknown MediaId: WeComError)."""
        body = self._call("media/get", params={"media_id": media_id}, binary=True)
        if not isinstance(body, bytes):  # JSON with errcode 0 and no file: not a media answer
            raise WeComError(UNAVAILABLE_ERRCODE, "media/get answered JSON without a file")
        return body

    def upload_media(self, media_type: str, filename: str, data: bytes, content_type: str) -> str:
        """Upload a temporary media file, valid three days; returns its media_id (media/upload,
        https://developer.work.weixin.qq.com/document/path/90253)."""
        files = {"media": (filename, data, content_type)}
        result = self._call("media/upload", params={"type": media_type}, files=files)
        return str(result["media_id"])

    def send_message(
        self, touser: list[str], msgtype: str, content: dict, *, duplicate_check_seconds: int = 0
    ) -> dict:
        """Send an app message (https://developer.work.weixin.qq.com/document/path/90236); with
        `duplicate_check_seconds`, WeCom drops it if it took the same one within that time."""
        payload: dict[str, Any] = {
            "touser": "|".join(touser),
            "msgtype": msgtype,
            "agentid": self.agent_id,
            msgtype: content,
        }
        if duplicate_check_seconds:
            payload["enable_duplicate_check"] = 1
            payload["duplicate_check_interval"] = duplicate_check_seconds
        return self.post("message/send", payload)

    def _call(self, endpoint: str, **kwargs: Any) -> Any:
        """One WeCom call (its JSON, or with `binary` a file's bytes); on a token error, one
        refetch and one retry."""
        try:
            return self._send(endpoint, **kwargs)
        except WeComError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
            # WeCom may revoke a token before its expiry. Drop it so the next call refetches, and
            # retry once; a second token error means something else is wrong, so it is raised.
            logger.info("WeCom rejected the access token (%s); refetching once", exc.errcode)
            self._wechat.session.delete(self._wechat.access_token_key)
            return self._send(endpoint, **kwargs)

    def _send(
        self,
        endpoint: str,
        *,
        params: dict | None = None,
        payload: dict | None = None,
        files: dict | None = None,
        binary: bool = False,
    ) -> dict | bytes:
        """One HTTP attempt: GET, or POST when there is a payload or files (multipart); failures
        become WeComError. With `binary`, a body that is not JSON is the answer (a downloaded
        file)."""
        # wechatpy writes access_token into the params dict it is given and then never replaces
        # it, so every attempt needs a fresh dict or a retry would resend the rejected token.
        fresh_params = dict(params or {})
        try:
            if files is not None:
                result = self._wechat.post(endpoint, params=fresh_params, files=files)
            elif payload is None:
                result = self._wechat.get(endpoint, params=fresh_params)
            else:
                result = self._wechat.post(endpoint, params=fresh_params, data=payload)
        except WeChatClientException as exc:
            error = _wechat_error(endpoint, exc)
        except requests.RequestException as exc:
            # The exception's text holds the URL, secret or token included: name the failure only.
            error = WeComUnavailable(UNAVAILABLE_ERRCODE, f"{endpoint}: {type(exc).__name__}")
        else:
            # wechatpy hands back the raw Response when the body is not JSON: a proxy or gateway
            # answered, not WeCom.
            if isinstance(result, requests.Response) and binary:
                return result.content
            if not isinstance(result, dict):
                raise WeComUnavailable(UNAVAILABLE_ERRCODE, f"{endpoint} answered non-JSON")
            return result
        # Raised here, after the except blocks, so the error has no __context__: the caught
        # exception (and the requests error wechatpy chained to it) holds the URL.
        raise error


def _wechat_error(endpoint: str, exc: WeChatClientException) -> WeComError:
    """Our error for one of wechatpy's: an HTTP error status, or WeCom's errcode."""
    if exc.errcode is None:
        # wechatpy's raise_for_status() failed: an HTTP error status, not a WeCom errcode.
        return _http_error(endpoint, getattr(exc.response, "status_code", 0))
    errcode = int(exc.errcode)
    error_class = WeComUnavailable if errcode == UNAVAILABLE_ERRCODE else WeComError
    return error_class(errcode, str(exc.errmsg))
