"""Strictly parsed settings: a wrong value stops start-up with a message naming the variable."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import time
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import limits

DEFAULT_WECOM_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
DEFAULT_TOKEN_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
# WeCom signs each callback with its current time; one further from ours than this is refused as
# a replay. Five minutes, as WeCom's own SDK samples allow.
DEFAULT_CALLBACK_MAX_CLOCK_SKEW_SECONDS = 300
# Sign-in attempts (`limits` notation, several joined by ";"). Per client address: every attempt,
# counted before WeCom is asked, so a flood of bad codes stops here; an office behind one NAT
# still has room for everyone's morning sign-in. Per member: attempts that name one WeCom
# account (a code that resolves to it, or a dev-login), good or refused.
DEFAULT_SIGN_IN_LIMIT_PER_CLIENT = "30/minute;300/hour"
DEFAULT_SIGN_IN_LIMIT_PER_MEMBER = "10/minute;60/hour"
# Masked in repr, and redacted from every log line and stored error (config/redaction.py).
SECRET_FIELDS = frozenset(
    {
        "wecom_secret",
        "wecom_aes_key",
        "wecom_token",
        "secret_key",
        "wecom_archive_secret",
        "wecom_archive_proxy_password",
    }
)
MASKED_URL_FIELDS = frozenset({"database_url", "redis_url", "smtp_url", "wecom_archive_proxy"})
# The Finance SDK takes its proxy as socks5://host:port or http://host:port (its header's words).
ARCHIVE_PROXY_SCHEMES = ("http", "https", "socks5")
# Chat capture: messages of one conversation at most this far apart make one window.
DEFAULT_CHAT_WINDOW_MINUTES = 30
# When the morning digest (每日晨报) goes out, Beijing time: "HH:MM".
DEFAULT_DIGEST_TIME = time(8, 0)
DIGEST_TIME_PATTERN = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
# Speech (speech/model.py). Empty model: the bundled faster-whisper base model, assembled into
# <data dir>/models/faster-whisper-base and checked against its SHA-256 hashes before use.
WHISPER_MODEL_SIZES = (
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "distil-small.en", "medium",
    "medium.en", "distil-medium.en", "large-v1", "large-v2", "large-v3", "large",
    "distil-large-v2", "distil-large-v3", "distil-large-v3.5", "large-v3-turbo", "turbo",
)  # fmt: skip
# CTranslate2's compute types; int8 runs the base model fastest on a laptop CPU.
WHISPER_COMPUTE_TYPES = (
    "default", "auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16",
    "float16", "bfloat16", "float32",
)  # fmt: skip
DEFAULT_WHISPER_COMPUTE_TYPE = "int8"
# Whisper's language code the transcriber is told to expect; "auto" lets Whisper detect it.
DEFAULT_WHISPER_LANGUAGE = "zh"
_WHISPER_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
# smtp: plain text; smtps: TLS from the first byte; smtp+starttls: plain, then STARTTLS before
# logging in.
SMTP_DEFAULT_PORTS = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}
_MAIL_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _parse_int(name: str, raw: str, *, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _parse_rate_limits(name: str, raw: str) -> str:
    try:
        limits.parse_many(raw)
    except ValueError:
        raise SettingsError(
            f"{name} must be rate limits like '30/minute;300/hour', got {raw!r}"
        ) from None
    return raw


def _parse_url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(raw)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in schemes:
        raise SettingsError(
            f"{name} must start with one of {', '.join(schemes)}; got {mask_url(raw)!r}"
        )
    if scheme not in {"sqlite", "unix"} and not parts.hostname:
        raise SettingsError(f"{name} has no host: {mask_url(raw)!r}")
    return raw


def _parse_whisper_model(raw: str) -> str:
    """A faster-whisper size name, or a folder holding a CTranslate2 model (model.bin)."""
    value = raw.strip()
    if not value or value in WHISPER_MODEL_SIZES:
        return value
    folder = Path(value).expanduser()
    if not (folder / "model.bin").is_file():
        raise SettingsError(
            f"WECRM_WHISPER_MODEL must be a faster-whisper size ({', '.join(WHISPER_MODEL_SIZES)}) "
            f"or a folder containing model.bin; got {raw!r}"
        )
    return str(folder.resolve())


def _parse_clock_time(name: str, raw: str) -> time:
    match = DIGEST_TIME_PATTERN.fullmatch(raw.strip())
    if match is None:
        raise SettingsError(f"{name} must be a time of day as HH:MM (Beijing time), got {raw!r}")
    return time(int(match[1]), int(match[2]))


def _parse_choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}; got {raw!r}")
    return value


def _parse_whisper_language(raw: str) -> str:
    value = raw.strip().lower()
    if value != "auto" and not _WHISPER_LANGUAGE.match(value):
        raise SettingsError(
            f"WECRM_WHISPER_LANGUAGE must be a Whisper language code (zh, en, …) or 'auto'; "
            f"got {raw!r}"
        )
    return value


def mask_url(url: str) -> str:
    """Hide the password of a URL so it can be logged."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def parse_archive_key_spec(name: str, raw: str) -> dict[int, Path]:
    """``"3:/etc/wecrm/archive_v3.pem,4:/etc/wecrm/archive_v4.pem"``: each public key version
    WeCom may name in ``publickey_ver`` with the private key file that decrypts it. Only the
    shape is checked here; the files are read when the Finance SDK is opened."""
    keys: dict[int, Path] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        version_raw, sep, path_raw = item.partition(":")
        if not sep or not path_raw.strip():
            raise SettingsError(
                f"{name} must list VERSION:PATH pairs like '3:/etc/wecrm/archive_v3.pem', "
                f"got {item!r}"
            )
        version = _parse_int(name, version_raw.strip(), minimum=1)
        if version in keys:
            raise SettingsError(f"{name} names key version {version} twice")
        keys[version] = Path(path_raw.strip()).expanduser()
    if not keys:
        raise SettingsError(f"{name} names no key; expected e.g. '3:/etc/wecrm/archive_v3.pem'")
    return keys


@dataclass(frozen=True)
class SmtpServer:
    """Where and how outgoing email is handed over; parsed from WECRM_SMTP_URL."""

    host: str
    port: int
    security: str  # "none", "tls" (implicit, smtps) or "starttls"
    username: str
    password: str = field(repr=False)


def parse_smtp_url(name: str, raw: str) -> SmtpServer:
    """smtp://user:pass@host:port, smtps://… or smtp+starttls://…; user and password may be
    percent-encoded (an @ in a login name is %40)."""
    parts = urlsplit(raw)
    if parts.scheme not in SMTP_DEFAULT_PORTS:
        raise SettingsError(
            f"{name} must start with smtp://, smtps:// or smtp+starttls://; got {mask_url(raw)!r}"
        )
    if not parts.hostname:
        raise SettingsError(f"{name} has no host: {mask_url(raw)!r}")
    try:
        port = parts.port or SMTP_DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise SettingsError(f"{name} has an invalid port: {mask_url(raw)!r}") from None
    security = {"smtp": "none", "smtps": "tls", "smtp+starttls": "starttls"}[parts.scheme]
    return SmtpServer(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def _parse_mail_from(raw: str) -> str:
    display, address = parseaddr(raw)
    if not _MAIL_ADDRESS.match(address) or not address.isascii():
        raise SettingsError(
            f"WECRM_MAIL_FROM must be an address like 'Name <a@b.com>'; got {raw!r}"
        )
    return str(Address(display_name=display, addr_spec=address))


def _default_mail_from(smtp: SmtpServer | None, company_name: str) -> str:
    """The SMTP login when it is an address (most providers insist From matches it), else
    wecrm@ the SMTP host; our company's name as the display name."""
    if smtp is None:
        return ""
    address = smtp.username if _MAIL_ADDRESS.match(smtp.username) else f"wecrm@{smtp.host}"
    return str(Address(display_name=company_name, addr_spec=address))


@dataclass(frozen=True)
class Settings:
    """Every setting wecrm reads; build with `Settings.from_env()`."""

    data_dir: Path
    database_url: str
    redis_url: str | None  # None means: run an embedded redis-server under data_dir
    secret_key: str
    wecom_corp_id: str = ""
    wecom_agent_id: int = 0
    wecom_secret: str = ""
    wecom_token: str = ""
    wecom_aes_key: str = ""
    wecom_api_base: str = DEFAULT_WECOM_API_BASE
    chat_window_minutes: int = DEFAULT_CHAT_WINDOW_MINUTES
    dev_login: bool = False
    token_ttl_seconds: int = DEFAULT_TOKEN_TTL_SECONDS
    sign_in_limit_per_client: str = DEFAULT_SIGN_IN_LIMIT_PER_CLIENT
    sign_in_limit_per_member: str = DEFAULT_SIGN_IN_LIMIT_PER_MEMBER
    # How many reverse proxies of ours stand in front of the app: their X-Forwarded-For entries
    # are trusted to name the client. 0 (the default) trusts none, so nobody can pick the address
    # their sign-in attempts are counted under by sending the header.
    trusted_proxies: int = 0
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    # 0 turns the replay check off (a server whose clock cannot be fixed).
    callback_max_clock_skew_seconds: int = DEFAULT_CALLBACK_MAX_CLOCK_SKEW_SECONDS
    # Where members open wecrm in a browser; WeCom textcard messages link here.
    public_url: str = DEFAULT_PUBLIC_URL
    # Where people see WeCom's side (the admin console, or the demo's fake WeCom page); the root
    # page links to it when set.
    wecom_console_url: str = ""
    # Empty: email is not configured and sending is refused.
    smtp_url: str = ""
    mail_from: str = ""  # the From header of customer emails
    company_name: str = ""  # our company, for the {公司} placeholder of email templates
    # 会话内容存档 (WeCom's message archive), read through Tencent's native Finance SDK
    # (wecom/finance_sdk.py). The archive has its own secret: the app's gives 48002, and its
    # token also calls the msgaudit APIs (check_single_agree).
    wecom_archive_secret: str = ""
    # "VERSION:PATH,…": one RSA private key per public key version, several during a rotation.
    wecom_archive_private_keys: str = ""
    wecom_archive_sdk_library: str = ""  # path to libWeWorkFinanceSdk_C.so
    wecom_archive_proxy: str = ""  # socks5://host:port or http://host:port; empty: direct
    wecom_archive_proxy_password: str = ""  # "user:password" for that proxy
    # Speech to text (speech/): "" is the bundled base model in the data folder, verified by
    # SHA-256; else a faster-whisper size name (downloaded on first use) or a model folder.
    whisper_model: str = ""
    whisper_compute_type: str = DEFAULT_WHISPER_COMPUTE_TYPE
    whisper_threads: int = 0  # 0: CTranslate2's default
    whisper_language: str = DEFAULT_WHISPER_LANGUAGE  # "auto": detect per recording
    digest_time: time = DEFAULT_DIGEST_TIME  # the morning digest's time of day, Beijing time

    @property
    def smtp(self) -> SmtpServer | None:
        """The parsed WECRM_SMTP_URL (validated at start-up), or None when email is off."""
        return parse_smtp_url("WECRM_SMTP_URL", self.smtp_url) if self.smtp_url else None

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret as it may appear in text: the logs must never show one."""
        values = [getattr(self, name) for name in sorted(SECRET_FIELDS)]
        smtp = self.smtp
        if smtp is not None and smtp.password:
            values += [smtp.password, quote(smtp.password, safe="")]  # the URL holds it encoded
        return tuple(v for v in values if v)

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def bundled_model_dir(self) -> Path:
        """Where the bundled speech model is assembled (`wecrm init`, `make install`)."""
        return self.data_dir / "models" / "faster-whisper-base"

    @property
    def embedded_redis_path(self) -> Path:
        return self.data_dir / "redis.db"

    @property
    def wecom_configured(self) -> bool:
        return bool(self.wecom_corp_id and self.wecom_secret)

    @property
    def archive_configured(self) -> bool:
        """Whether the message archive can be pulled: the SDK library, the archive secret,
        at least one private key, and the corp it belongs to."""
        return bool(
            self.wecom_corp_id
            and self.wecom_archive_secret
            and self.wecom_archive_private_keys
            and self.wecom_archive_sdk_library
        )

    @property
    def archive_consent_checkable(self) -> bool:
        """WeCom can be asked who agreed to archiving (check_single_agree)."""
        return bool(self.wecom_corp_id and self.wecom_archive_secret)

    @property
    def email_configured(self) -> bool:
        return bool(self.smtp_url)

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some values changed (tests and the demo use this)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            elif f.name in MASKED_URL_FIELDS and value:
                value = mask_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse the WECRM_* and WECOM_* variables; raise SettingsError on a bad value."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("WECRM_DATA_DIR") or Path.cwd() / ".wecrm").expanduser().resolve()

        database_url = env.get("WECRM_DATABASE_URL") or f"sqlite:///{data_dir / 'wecrm.sqlite3'}"
        database_url = _parse_url("WECRM_DATABASE_URL", database_url, ("sqlite", "postgresql"))
        if database_url.startswith("postgresql://"):
            # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
            database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
        redis_url = env.get("WECRM_REDIS_URL") or None
        if redis_url:
            redis_url = _parse_url("WECRM_REDIS_URL", redis_url, ("redis", "rediss", "unix"))

        agent_raw = env.get("WECOM_AGENT_ID", "")
        agent_id = _parse_int("WECOM_AGENT_ID", agent_raw) if agent_raw else 0
        aes_key = env.get("WECOM_AES_KEY", "")
        if aes_key and len(aes_key) != 43:
            raise SettingsError("WECOM_AES_KEY (EncodingAESKey) must be exactly 43 characters")
        token = env.get("WECOM_TOKEN", "")
        if token and (len(token) > 32 or not token.isalnum()):
            raise SettingsError("WECOM_TOKEN must be at most 32 letters or digits")
        api_base = env.get("WECOM_API_BASE") or DEFAULT_WECOM_API_BASE
        api_base = _parse_url("WECOM_API_BASE", api_base, ("http", "https"))
        if not api_base.endswith("/"):
            api_base += "/"

        public_url = env.get("WECRM_PUBLIC_URL") or DEFAULT_PUBLIC_URL
        public_url = _parse_url("WECRM_PUBLIC_URL", public_url, ("http", "https")).rstrip("/")

        console_url = env.get("WECRM_WECOM_CONSOLE_URL", "")
        if console_url:
            console_url = _parse_url("WECRM_WECOM_CONSOLE_URL", console_url, ("http", "https"))

        smtp_url = env.get("WECRM_SMTP_URL", "")
        smtp = parse_smtp_url("WECRM_SMTP_URL", smtp_url) if smtp_url else None
        company_name = env.get("WECRM_COMPANY_NAME", "").strip()
        mail_from_raw = env.get("WECRM_MAIL_FROM", "")
        mail_from = (
            _parse_mail_from(mail_from_raw)
            if mail_from_raw
            else _default_mail_from(smtp, company_name)
        )

        archive_keys = env.get("WECOM_ARCHIVE_PRIVATE_KEYS", "").strip()
        if archive_keys:
            parse_archive_key_spec("WECOM_ARCHIVE_PRIVATE_KEYS", archive_keys)
        archive_proxy = env.get("WECOM_ARCHIVE_PROXY", "").strip()
        if archive_proxy:
            _parse_url("WECOM_ARCHIVE_PROXY", archive_proxy, ARCHIVE_PROXY_SCHEMES)

        ttl_raw = env.get("WECRM_TOKEN_TTL_SECONDS", "")
        max_bytes_raw = env.get("WECRM_MAX_ATTACHMENT_BYTES", "")
        skew_raw = env.get("WECRM_CALLBACK_MAX_CLOCK_SKEW_SECONDS", "")
        proxies_raw = env.get("WECRM_TRUSTED_PROXIES", "")
        window_raw = env.get("WECRM_CHAT_WINDOW_MINUTES", "")
        threads_raw = env.get("WECRM_WHISPER_THREADS", "")
        digest_raw = env.get("WECRM_DIGEST_TIME", "")
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            redis_url=redis_url,
            secret_key=env.get("WECRM_SECRET_KEY") or _stored_secret_key(data_dir),
            wecom_corp_id=env.get("WECOM_CORP_ID", ""),
            wecom_agent_id=agent_id,
            wecom_secret=env.get("WECOM_SECRET", ""),
            wecom_token=token,
            wecom_aes_key=aes_key,
            wecom_api_base=api_base,
            chat_window_minutes=(
                _parse_int("WECRM_CHAT_WINDOW_MINUTES", window_raw, minimum=1)
                if window_raw
                else DEFAULT_CHAT_WINDOW_MINUTES
            ),
            dev_login=_parse_bool("WECRM_DEV_LOGIN", env.get("WECRM_DEV_LOGIN", "")),
            token_ttl_seconds=(
                _parse_int("WECRM_TOKEN_TTL_SECONDS", ttl_raw, minimum=60)
                if ttl_raw
                else DEFAULT_TOKEN_TTL_SECONDS
            ),
            sign_in_limit_per_client=_parse_rate_limits(
                "WECRM_SIGN_IN_LIMIT_PER_CLIENT",
                env.get("WECRM_SIGN_IN_LIMIT_PER_CLIENT") or DEFAULT_SIGN_IN_LIMIT_PER_CLIENT,
            ),
            sign_in_limit_per_member=_parse_rate_limits(
                "WECRM_SIGN_IN_LIMIT_PER_MEMBER",
                env.get("WECRM_SIGN_IN_LIMIT_PER_MEMBER") or DEFAULT_SIGN_IN_LIMIT_PER_MEMBER,
            ),
            trusted_proxies=(
                _parse_int("WECRM_TRUSTED_PROXIES", proxies_raw) if proxies_raw else 0
            ),
            max_attachment_bytes=(
                _parse_int("WECRM_MAX_ATTACHMENT_BYTES", max_bytes_raw, minimum=1024)
                if max_bytes_raw
                else DEFAULT_MAX_ATTACHMENT_BYTES
            ),
            callback_max_clock_skew_seconds=(
                _parse_int("WECRM_CALLBACK_MAX_CLOCK_SKEW_SECONDS", skew_raw)
                if skew_raw
                else DEFAULT_CALLBACK_MAX_CLOCK_SKEW_SECONDS
            ),
            public_url=public_url,
            wecom_console_url=console_url,
            smtp_url=smtp_url,
            mail_from=mail_from,
            company_name=company_name,
            wecom_archive_secret=env.get("WECOM_ARCHIVE_SECRET", ""),
            wecom_archive_private_keys=archive_keys,
            wecom_archive_sdk_library=env.get("WECOM_ARCHIVE_SDK_LIBRARY", "").strip(),
            wecom_archive_proxy=archive_proxy,
            wecom_archive_proxy_password=env.get("WECOM_ARCHIVE_PROXY_PASSWORD", ""),
            whisper_model=_parse_whisper_model(env.get("WECRM_WHISPER_MODEL", "")),
            whisper_compute_type=_parse_choice(
                "WECRM_WHISPER_COMPUTE_TYPE",
                env.get("WECRM_WHISPER_COMPUTE_TYPE") or DEFAULT_WHISPER_COMPUTE_TYPE,
                WHISPER_COMPUTE_TYPES,
            ),
            whisper_threads=(
                _parse_int("WECRM_WHISPER_THREADS", threads_raw) if threads_raw else 0
            ),
            whisper_language=_parse_whisper_language(
                env.get("WECRM_WHISPER_LANGUAGE") or DEFAULT_WHISPER_LANGUAGE
            ),
            digest_time=(
                _parse_clock_time("WECRM_DIGEST_TIME", digest_raw)
                if digest_raw
                else DEFAULT_DIGEST_TIME
            ),
        )


def _stored_secret_key(data_dir: Path) -> str:
    """A signing key kept in the data folder, so tokens survive restarts without configuration."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the database lives here too
    key = secrets.token_urlsafe(48)
    # Created readable by us alone: a chmod after writing would leave a moment when it is not.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(key)
    return key
