"""WeCom's message archive (会话内容存档) through Tencent's native Finance SDK.

Tencent ships the archive only as ``libWeWorkFinanceSdk_C.so``
(https://developer.work.weixin.qq.com/document/path/91774); we bind it with ctypes after its
header ``WeWorkFinanceSdk_C.h``. The library talks to WeCom's servers itself and cannot be
pointed at a fake, so the tests load a stand-in built from ``tests/wecom/finance_sdk_standin.c``
with the same exports; this module is the same in both cases.

`FinanceSdk.fetch` pulls the records after a ``seq`` and decrypts each one: the record's
``encrypt_random_key`` is RSA-decrypted (PKCS#1 v1.5) with the private key of its
``publickey_ver`` (several versions are configured at once while keys rotate), and the SDK's
``DecryptData`` opens ``encrypt_chat_msg`` with it. A record that cannot be decrypted (its key
version is not configured, or decryption fails) is returned all the same, with
``message=None``, the error and the encrypted record: the caller stores it as undecryptable and
moves its cursor past it, and can decrypt it later with `FinanceSdk.decrypt` once the key is
added. A batch is never stopped, and no record silently skipped, by one bad record.

Every native object (slices, media data, the SDK handle) is freed in a ``finally``. Errors
become `FinanceSdkError` with a Chinese reason that names the fix, logged where raised.
Where the archive's records go next is the capture pipeline's business (``crm.chat_capture``).
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import functools
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from config import Settings, SettingsError
from config.settings import parse_archive_key_spec

logger = logging.getLogger(__name__)

MAX_FETCH_LIMIT = 1000  # GetChatData answers an error beyond this (header)
DEFAULT_TIMEOUT_SECONDS = 10
PRIVATE_KEYS_VARIABLE = "WECOM_ARCHIVE_PRIVATE_KEYS"
LIBRARY_VARIABLE = "WECOM_ARCHIVE_SDK_LIBRARY"

# The SDK's return codes (header of WeWorkFinanceSdk_C.h) and the errcodes GetChatData's JSON
# may carry, each with what the admin should do about it.
PARAMETER_ERROR = 10000
NETWORK_ERROR = 10001
PARSE_ERROR = 10002
SYSTEM_ERROR = 10003
FILEID_ERROR = 10005
DECRYPT_ERROR = 10006
NO_PRIVATE_KEY = 10007
IP_NOT_ALLOWED = 10009
REASONS: dict[int, str] = {
    PARAMETER_ERROR: (
        "参数错误：检查企业 ID（WECOM_CORP_ID）和会话内容存档的 Secret（WECOM_ARCHIVE_SECRET）"
    ),
    NETWORK_ERROR: (
        "网络错误：本服务器连不上企业微信；检查出网和防火墙，需要走代理时设置 WECOM_ARCHIVE_PROXY"
        "（和 WECOM_ARCHIVE_PROXY_PASSWORD）"
    ),
    PARSE_ERROR: "数据解析失败：企业微信返回的数据无法解析；稍后重试，一直出现时更新 SDK",
    SYSTEM_ERROR: "SDK 系统错误：稍后重试，一直出现时更新 SDK",
    10004: (
        "密钥错误导致加密失败：检查 WECOM_ARCHIVE_SECRET 是否是管理后台「会话内容存档」里当前的 "
        "Secret（重置过 Secret 要一起更新）"
    ),
    FILEID_ERROR: "媒体文件 ID（sdkfileid）错误：只能原样使用解密后的消息里的 sdkfileid",
    DECRYPT_ERROR: (
        "解密失败：这个版本的私钥和上传到企业微信管理后台的公钥不是一对；"
        "检查 WECOM_ARCHIVE_PRIVATE_KEYS 里这个版本对应的私钥文件"
    ),
    NO_PRIVATE_KEY: (
        "找不到消息加密版本（publickey_ver）的私钥：在 WECOM_ARCHIVE_PRIVATE_KEYS 里加上这个版本的"
        "私钥，如 '3:/etc/wecrm/archive_v3.pem'（换密钥期间新旧版本都要配置）"
    ),
    10008: "解析 encrypt_key 出错：这个版本配置的私钥不对，检查 WECOM_ARCHIVE_PRIVATE_KEYS",
    IP_NOT_ALLOWED: (
        "服务器 IP 不在会话存档的可信 IP 列表里：到企业微信管理后台「管理工具 → 会话内容存档」"
        "把本服务器的出口 IP（走代理时是代理的出口 IP）加入可信 IP"
    ),
    10010: "数据已过期：企业微信只保留几天内的存档，过期的记录拉不到了；请让定时拉取一直运行",
    10011: "证书错误：SDK 校验企业微信的 HTTPS 证书失败；检查服务器时间、系统 CA 证书和代理",
    40001: "Secret 无效：检查 WECOM_ARCHIVE_SECRET 是否是「会话内容存档」的 Secret",
    48002: (
        "接口无权限（48002）：多半是把应用的 Secret 当成了会话内容存档的 Secret；"
        "WECOM_ARCHIVE_SECRET 要填管理后台「管理工具 → 会话内容存档」里的 Secret，"
        "并确认企业已开通会话内容存档"
    ),
    301052: "会话内容存档服务已过期：请在企业微信管理后台续费会话内容存档",
}


def reason_for(code: int, errmsg: str = "") -> str:
    """The Chinese reason, with its fix, for an SDK return code or a WeCom errcode."""
    reason = REASONS.get(code, f"企业微信会话内容存档返回错误 {code}")
    return f"{reason}（企业微信：{errmsg}）" if errmsg else reason


class FinanceSdkError(Exception):
    """The Finance SDK or WeCom refused: ``code`` is the SDK's return code (10000–10011) or the
    errcode of GetChatData's reply; ``reason`` says, in Chinese, what to fix."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)  # both to Exception, so the error pickles (RQ)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"会话内容存档错误 {self.code}：{self.reason}"


class MediaTooLarge(Exception):
    """A media file grew beyond the ``max_bytes`` its caller accepts; the download stopped."""

    def __init__(self, sdkfileid: str, max_bytes: int) -> None:
        super().__init__(sdkfileid, max_bytes)
        self.sdkfileid = sdkfileid
        self.max_bytes = max_bytes

    def __str__(self) -> str:
        return f"媒体文件超过 {self.max_bytes} 字节的上限，没有下载"


def _failure(code: int, errmsg: str = "", *, doing: str) -> FinanceSdkError:
    """The error for ``code``, logged with what we were doing."""
    error = FinanceSdkError(code, reason_for(code, errmsg))
    logger.error("Finance SDK %s failed: %s", doing, error)
    return error


@dataclass(frozen=True)
class ArchivedRecord:
    """One archive record: ``message`` is WeCom's decrypted message (``msgid``, ``action``,
    ``from``, ``tolist``, ``msgtime``, ``msgtype``, …), or None when it could not be decrypted;
    then ``error`` says why and ``encrypted`` keeps the record for `FinanceSdk.decrypt`."""

    seq: int
    msgid: str
    message: dict[str, Any] | None
    publickey_ver: int = 0
    error: FinanceSdkError | None = None
    encrypted: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def is_decrypted(self) -> bool:
        return self.message is not None


class _Slice(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("len", ctypes.c_int)]


class _MediaData(ctypes.Structure):
    _fields_ = [
        ("outindexbuf", ctypes.c_void_p),
        ("out_len", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("data_len", ctypes.c_int),
        ("is_finish", ctypes.c_int),
    ]


_SLICE_P = ctypes.POINTER(_Slice)
_MEDIA_P = ctypes.POINTER(_MediaData)
# name: (restype, argtypes). Pointers the SDK hands back are c_void_p: the default int restype
# would cut a 64-bit pointer, and c_char_p would stop binary data at its first NUL.
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "NewSdk": (ctypes.c_void_p, []),
    "Init": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]),
    "GetChatData": (
        ctypes.c_int,
        [
            ctypes.c_void_p,
            ctypes.c_ulonglong,
            ctypes.c_uint,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_int,
            _SLICE_P,
        ],
    ),
    "DecryptData": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p, _SLICE_P]),
    "GetMediaData": (
        ctypes.c_int,
        [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_int,
            _MEDIA_P,
        ],
    ),
    "DestroySdk": (None, [ctypes.c_void_p]),
    "NewSlice": (_SLICE_P, []),
    "FreeSlice": (None, [_SLICE_P]),
    "GetContentFromSlice": (ctypes.c_void_p, [_SLICE_P]),
    "GetSliceLen": (ctypes.c_int, [_SLICE_P]),
    "NewMediaData": (_MEDIA_P, []),
    "FreeMediaData": (None, [_MEDIA_P]),
    "GetOutIndexBuf": (ctypes.c_void_p, [_MEDIA_P]),
    "GetData": (ctypes.c_void_p, [_MEDIA_P]),
    "GetIndexLen": (ctypes.c_int, [_MEDIA_P]),
    "GetDataLen": (ctypes.c_int, [_MEDIA_P]),
    "IsMediaDataFinish": (ctypes.c_int, [_MEDIA_P]),
}


@functools.cache
def _load_library(path: str) -> ctypes.CDLL:
    """The SDK library with every function's C signature declared (once per path)."""
    try:
        library = ctypes.CDLL(path)
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(library, name)
            function.restype = restype
            function.argtypes = argtypes
    except (OSError, AttributeError) as error:
        raise SettingsError(
            f"{LIBRARY_VARIABLE} must be the Finance SDK (libWeWorkFinanceSdk_C.so) for this "
            f"machine; loading {path!r} failed: {error}"
        ) from None
    return library


def _read(pointer: int | None, length: int) -> bytes:
    return ctypes.string_at(pointer, length) if pointer and length > 0 else b""


def load_private_keys(spec: str) -> dict[int, RSAPrivateKey]:
    """The RSA private keys of ``"3:/path/key_v3.pem,4:/path/key_v4.pem"`` by key version;
    SettingsError naming WECOM_ARCHIVE_PRIVATE_KEYS for a missing, unreadable or non-RSA file."""
    keys: dict[int, RSAPrivateKey] = {}
    for version, path in parse_archive_key_spec(PRIVATE_KEYS_VARIABLE, spec).items():
        where = f"{PRIVATE_KEYS_VARIABLE}: the key of version {version} ({path})"
        try:
            pem = path.read_bytes()
        except OSError as error:
            raise SettingsError(f"{where} cannot be read: {error.strerror}") from None
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except TypeError:
            raise SettingsError(
                f"{where} is protected by a passphrase; store it without one (PKCS#1 PEM)"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise SettingsError(f"{where} is not a PEM private key") from None
        if not isinstance(key, RSAPrivateKey):
            raise SettingsError(f"{where} is not an RSA key; WeCom's archive keys are RSA")
        keys[version] = key
    return keys


class FinanceSdk:
    """One initialised SDK handle; use it as a context manager (or call `close`). Not for
    concurrent use: each worker opens its own."""

    def __init__(
        self,
        library_path: str | Path,
        corp_id: str,
        secret: str,
        private_keys: Mapping[int, RSAPrivateKey],
        *,
        proxy: str = "",
        proxy_password: str = "",
        timeout: int = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._lib = _load_library(str(library_path))
        self._private_keys = dict(private_keys)
        self._proxy = proxy.encode()
        self._proxy_password = proxy_password.encode()
        self._timeout = timeout
        sdk = self._lib.NewSdk()
        if not sdk:
            raise _failure(SYSTEM_ERROR, doing="NewSdk")
        code = self._lib.Init(sdk, corp_id.encode(), secret.encode())
        if code != 0:
            self._lib.DestroySdk(sdk)
            raise _failure(code, doing="Init")
        self._sdk: int | None = sdk

    def __enter__(self) -> FinanceSdk:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Destroy the SDK handle; closing twice does nothing."""
        if self._sdk is not None:
            self._lib.DestroySdk(self._sdk)
            self._sdk = None

    @property
    def _handle(self) -> int:
        if self._sdk is None:
            raise RuntimeError("this FinanceSdk is closed")
        return self._sdk

    @contextmanager
    def _slice(self) -> Iterator[Any]:
        slice_ = self._lib.NewSlice()
        try:
            yield slice_
        finally:
            self._lib.FreeSlice(slice_)

    def _slice_bytes(self, slice_: Any) -> bytes:
        return _read(self._lib.GetContentFromSlice(slice_), self._lib.GetSliceLen(slice_))

    def fetch(self, after_seq: int, limit: int) -> list[ArchivedRecord]:
        """The records after ``after_seq`` (at most ``limit``, 1–1000), in seq order, each
        decrypted or flagged with its error (https://developer.work.weixin.qq.com/document/path/91774)."""
        if not 1 <= limit <= MAX_FETCH_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_FETCH_LIMIT}, got {limit}")
        if after_seq < 0:
            raise ValueError(f"after_seq must be 0 or more, got {after_seq}")
        with self._slice() as slice_:
            code = self._lib.GetChatData(
                self._handle,
                after_seq,
                limit,
                self._proxy,
                self._proxy_password,
                self._timeout,
                slice_,
            )
            if code != 0:
                raise _failure(code, doing="GetChatData")
            raw = self._slice_bytes(slice_)
        try:
            reply = json.loads(raw)
            errcode = int(reply.get("errcode", 0))
            entries = reply.get("chatdata") or []
        except (ValueError, TypeError, AttributeError):
            raise _failure(
                PARSE_ERROR, doing="GetChatData (reply is not the expected JSON)"
            ) from None
        if errcode != 0:
            raise _failure(errcode, str(reply.get("errmsg", "")), doing="GetChatData")
        return [self.decrypt(entry) for entry in entries]

    def decrypt(self, entry: Mapping[str, Any]) -> ArchivedRecord:
        """One GetChatData record decrypted, or flagged with why it could not be."""
        try:
            seq, msgid = int(entry["seq"]), str(entry["msgid"])
            version = int(entry.get("publickey_ver", 0))
        except (KeyError, TypeError, ValueError):
            # Without a seq the cursor cannot pass the record, so the batch stops here.
            raise _failure(
                PARSE_ERROR, doing="GetChatData (a record has no seq or msgid)"
            ) from None
        try:
            message = self._decrypt_message(entry, version)
        except FinanceSdkError as error:
            logger.warning(
                "Archive record seq=%s msgid=%s (publickey_ver %s) is not decrypted: %s",
                seq,
                msgid,
                version,
                error,
            )
            return ArchivedRecord(seq, msgid, None, version, error, dict(entry))
        return ArchivedRecord(seq, msgid, message, version)

    def _decrypt_message(self, entry: Mapping[str, Any], version: int) -> dict[str, Any]:
        key = self._private_keys.get(version)
        if key is None:
            raise FinanceSdkError(NO_PRIVATE_KEY, f"{reason_for(NO_PRIVATE_KEY)}（版本 {version}）")
        try:
            encrypted_key = base64.b64decode(str(entry["encrypt_random_key"]), validate=True)
            random_key = key.decrypt(encrypted_key, padding.PKCS1v15())
            encrypted_message = str(entry["encrypt_chat_msg"]).encode()
        except (KeyError, ValueError, binascii.Error):
            raise FinanceSdkError(DECRYPT_ERROR, reason_for(DECRYPT_ERROR)) from None
        with self._slice() as slice_:
            code = self._lib.DecryptData(random_key, encrypted_message, slice_)
            if code != 0:
                raise FinanceSdkError(code, reason_for(code))
            plain = self._slice_bytes(slice_)
        try:
            message = json.loads(plain)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            raise FinanceSdkError(
                PARSE_ERROR, "解密后的消息不是 JSON 对象：" + reason_for(DECRYPT_ERROR)
            )
        return message

    def media(self, sdkfileid: str, *, max_bytes: int) -> bytes:
        """A file, image or voice message's content, pulled in the SDK's 512 KB chunks; raises
        MediaTooLarge as soon as it passes ``max_bytes``."""
        chunks: list[bytes] = []
        size = 0
        index = b""
        while True:
            media = self._lib.NewMediaData()
            try:
                code = self._lib.GetMediaData(
                    self._handle,
                    index,
                    sdkfileid.encode(),
                    self._proxy,
                    self._proxy_password,
                    self._timeout,
                    media,
                )
                if code != 0:
                    raise _failure(code, doing="GetMediaData")
                chunk = _read(self._lib.GetData(media), self._lib.GetDataLen(media))
                next_index = _read(self._lib.GetOutIndexBuf(media), self._lib.GetIndexLen(media))
                finished = bool(self._lib.IsMediaDataFinish(media))
            finally:
                self._lib.FreeMediaData(media)
            size += len(chunk)
            if size > max_bytes:
                logger.warning(
                    "Archive media %s passed %s bytes; not downloaded", sdkfileid, max_bytes
                )
                raise MediaTooLarge(sdkfileid, max_bytes)
            chunks.append(chunk)
            if finished:
                return b"".join(chunks)
            if not chunk or next_index == index:
                # Without progress the loop would never end.
                raise _failure(PARSE_ERROR, doing="GetMediaData (a chunk made no progress)")
            index = next_index


def open_finance_sdk(settings: Settings) -> FinanceSdk:
    """The Finance SDK as the settings configure it; SettingsError when the archive is not
    configured or a file it names is wrong, FinanceSdkError when Init refuses."""
    if not settings.archive_configured:
        missing = [
            name
            for name, value in (
                ("WECOM_CORP_ID", settings.wecom_corp_id),
                ("WECOM_ARCHIVE_SECRET", settings.wecom_archive_secret),
                (PRIVATE_KEYS_VARIABLE, settings.wecom_archive_private_keys),
                (LIBRARY_VARIABLE, settings.wecom_archive_sdk_library),
            )
            if not value
        ]
        raise SettingsError(f"the message archive is not configured: set {', '.join(missing)}")
    return FinanceSdk(
        settings.wecom_archive_sdk_library,
        settings.wecom_corp_id,
        settings.wecom_archive_secret,
        load_private_keys(settings.wecom_archive_private_keys),
        proxy=settings.wecom_archive_proxy,
        proxy_password=settings.wecom_archive_proxy_password,
    )
