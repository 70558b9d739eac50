"""Settings are parsed strictly at start-up and never print their secrets."""

from __future__ import annotations

from datetime import time

import pytest

from config import Settings, SettingsError
from config.settings import SmtpServer


def test_no_urls_means_the_embedded_default_under_the_data_dir(tmp_path):
    settings = Settings.from_env({"WECRM_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'wecrm.sqlite3'}"
    assert settings.redis_url is None
    assert settings.embedded_redis_path == tmp_path / "redis.db"
    assert settings.wecom_api_base == "https://qyapi.weixin.qq.com/cgi-bin/"


def test_the_signing_key_is_generated_once_and_kept(tmp_path):
    first = Settings.from_env({"WECRM_DATA_DIR": str(tmp_path)}).secret_key
    second = Settings.from_env({"WECRM_DATA_DIR": str(tmp_path)}).secret_key
    assert first == second and len(first) > 40


def test_public_url_defaults_to_the_local_server_and_loses_its_trailing_slash(tmp_path):
    assert Settings.from_env({"WECRM_DATA_DIR": str(tmp_path)}).public_url == (
        "http://127.0.0.1:8000"
    )
    configured = {"WECRM_DATA_DIR": str(tmp_path), "WECRM_PUBLIC_URL": "https://crm.example.com/"}
    assert Settings.from_env(configured).public_url == "https://crm.example.com"


def test_postgres_url_gets_the_shipped_driver(tmp_path):
    settings = Settings.from_env(
        {"WECRM_DATA_DIR": str(tmp_path), "WECRM_DATABASE_URL": "postgresql://u:pw@db:5432/crm"}
    )
    assert settings.database_url == "postgresql+psycopg://u:pw@db:5432/crm"


@pytest.mark.parametrize(("raw", "seconds"), [(None, 300), ("900", 900), ("0", 0)])
def test_the_callback_clock_skew_defaults_to_five_minutes_and_zero_is_allowed(
    tmp_path, raw, seconds
):
    env = {"WECRM_DATA_DIR": str(tmp_path)}
    if raw is not None:
        env["WECRM_CALLBACK_MAX_CLOCK_SKEW_SECONDS"] = raw
    assert Settings.from_env(env).callback_max_clock_skew_seconds == seconds


def test_sign_in_limits_default_to_a_few_a_minute_and_no_proxy_is_trusted(tmp_path):
    settings = Settings.from_env({"WECRM_DATA_DIR": str(tmp_path)})
    assert settings.sign_in_limit_per_client == "30/minute;300/hour"
    assert settings.sign_in_limit_per_member == "10/minute;60/hour"
    assert settings.trusted_proxies == 0
    configured = Settings.from_env(
        {
            "WECRM_DATA_DIR": str(tmp_path),
            "WECRM_SIGN_IN_LIMIT_PER_CLIENT": "100 per hour",
            "WECRM_TRUSTED_PROXIES": "2",
        }
    )
    assert configured.sign_in_limit_per_client == "100 per hour"
    assert configured.trusted_proxies == 2


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("WECRM_DATABASE_URL", "mysql://x/y", "WECRM_DATABASE_URL"),
        ("WECRM_REDIS_URL", "http://localhost", "WECRM_REDIS_URL"),
        ("WECOM_AGENT_ID", "abc", "WECOM_AGENT_ID"),
        ("WECOM_AES_KEY", "short", "WECOM_AES_KEY"),
        ("WECOM_TOKEN", "has space", "WECOM_TOKEN"),
        ("WECRM_DEV_LOGIN", "maybe", "WECRM_DEV_LOGIN"),
        ("WECRM_TOKEN_TTL_SECONDS", "5", "WECRM_TOKEN_TTL_SECONDS"),
        ("WECOM_API_BASE", "ftp://x", "WECOM_API_BASE"),
        ("WECRM_PUBLIC_URL", "crm.example.com", "WECRM_PUBLIC_URL"),
        ("WECRM_SMTP_URL", "http://mail.example.com", "WECRM_SMTP_URL"),
        ("WECRM_SMTP_URL", "smtp://", "WECRM_SMTP_URL"),
        ("WECRM_SMTP_URL", "smtps://mail.example.com:port", "WECRM_SMTP_URL"),
        ("WECRM_MAIL_FROM", "湘瓷 <not-an-address>", "WECRM_MAIL_FROM"),
        ("WECRM_CALLBACK_MAX_CLOCK_SKEW_SECONDS", "5m", "WECRM_CALLBACK_MAX_CLOCK_SKEW_SECONDS"),
        ("WECRM_WECOM_CONSOLE_URL", "work.weixin.qq.com", "WECRM_WECOM_CONSOLE_URL"),
        ("WECRM_CALLBACK_MAX_CLOCK_SKEW_SECONDS", "-1", "WECRM_CALLBACK_MAX_CLOCK_SKEW_SECONDS"),
        ("WECRM_SIGN_IN_LIMIT_PER_CLIENT", "30 a minute", "WECRM_SIGN_IN_LIMIT_PER_CLIENT"),
        ("WECRM_SIGN_IN_LIMIT_PER_MEMBER", "10/fortnight", "WECRM_SIGN_IN_LIMIT_PER_MEMBER"),
        ("WECRM_TRUSTED_PROXIES", "-1", "WECRM_TRUSTED_PROXIES"),
        ("WECRM_TRUSTED_PROXIES", "nginx", "WECRM_TRUSTED_PROXIES"),
        ("WECOM_ARCHIVE_PRIVATE_KEYS", "/etc/wecrm/key.pem", "WECOM_ARCHIVE_PRIVATE_KEYS"),
        ("WECOM_ARCHIVE_PRIVATE_KEYS", "0:/etc/wecrm/key.pem", "WECOM_ARCHIVE_PRIVATE_KEYS"),
        ("WECOM_ARCHIVE_PRIVATE_KEYS", "3:/a.pem,3:/b.pem", "WECOM_ARCHIVE_PRIVATE_KEYS"),
        ("WECOM_ARCHIVE_PROXY", "ftp://10.0.0.1:21", "WECOM_ARCHIVE_PROXY"),
        ("WECOM_ARCHIVE_PROXY", "10.0.0.1:8081", "WECOM_ARCHIVE_PROXY"),
        ("WECRM_CHAT_WINDOW_MINUTES", "0", "WECRM_CHAT_WINDOW_MINUTES"),
        ("WECRM_CHAT_WINDOW_MINUTES", "half an hour", "WECRM_CHAT_WINDOW_MINUTES"),
        ("WECRM_WHISPER_MODEL", "huge", "WECRM_WHISPER_MODEL"),
        ("WECRM_WHISPER_MODEL", "/nowhere/faster-whisper-base", "WECRM_WHISPER_MODEL"),
        ("WECRM_WHISPER_COMPUTE_TYPE", "int4", "WECRM_WHISPER_COMPUTE_TYPE"),
        ("WECRM_WHISPER_THREADS", "-2", "WECRM_WHISPER_THREADS"),
        ("WECRM_WHISPER_LANGUAGE", "Chinese", "WECRM_WHISPER_LANGUAGE"),
        ("WECRM_DIGEST_TIME", "8am", "WECRM_DIGEST_TIME"),
        ("WECRM_DIGEST_TIME", "24:00", "WECRM_DIGEST_TIME"),
    ],
)
def test_a_wrong_value_fails_naming_the_variable(tmp_path, name, value, fragment):
    with pytest.raises(SettingsError, match=fragment):
        Settings.from_env({"WECRM_DATA_DIR": str(tmp_path), name: value})


def test_secrets_are_masked_when_settings_are_printed(tmp_path):
    settings = Settings.from_env(
        {
            "WECRM_DATA_DIR": str(tmp_path),
            "WECRM_DATABASE_URL": "postgresql://crm:hunter2@db/crm",
            "WECOM_SECRET": "topsecretvalue",
            "WECOM_AES_KEY": "a" * 43,
            "WECOM_TOKEN": "tok123",
            "WECRM_SECRET_KEY": "signing-key",
            "WECRM_SMTP_URL": "smtps://crm:mailpass@smtp.example.com",
            "WECOM_ARCHIVE_SECRET": "archivesecret",
            "WECOM_ARCHIVE_PROXY": "http://px:proxyurlpw@10.0.0.1:8081",
            "WECOM_ARCHIVE_PROXY_PASSWORD": "user:proxypw",
        }
    )
    shown = repr(settings)
    for secret in (
        "hunter2",
        "topsecretvalue",
        "a" * 43,
        "tok123",
        "signing-key",
        "mailpass",
        "archivesecret",
        "proxyurlpw",
        "user:proxypw",
    ):
        assert secret not in shown
    assert "archivesecret" in settings.secret_values
    assert "postgresql+psycopg://crm:***@db/crm" in shown
    assert "smtps://crm:***@smtp.example.com" in shown
    assert "mailpass" not in repr(settings.smtp)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://crm%40xiangci.com:p%40ss%3Aw@mail.example.com:2525",
            SmtpServer("mail.example.com", 2525, "none", "crm@xiangci.com", "p@ss:w"),
        ),
        ("smtps://u:p@mail.example.com", SmtpServer("mail.example.com", 465, "tls", "u", "p")),
        (
            "smtp+starttls://mail.example.com",
            SmtpServer("mail.example.com", 587, "starttls", "", ""),
        ),
        ("smtp://mail.example.com", SmtpServer("mail.example.com", 25, "none", "", "")),
    ],
)
def test_the_smtp_url_gives_host_port_security_and_a_decoded_login(tmp_path, url, expected):
    settings = Settings.from_env({"WECRM_DATA_DIR": str(tmp_path), "WECRM_SMTP_URL": url})
    assert settings.email_configured and settings.smtp == expected


def test_without_an_smtp_url_email_is_off_and_has_no_sender(tmp_path):
    settings = Settings.from_env({"WECRM_DATA_DIR": str(tmp_path)})
    assert (settings.email_configured, settings.smtp, settings.mail_from) == (False, None, "")


def test_the_sender_defaults_to_the_smtp_login_with_our_company_name(tmp_path):
    base = {"WECRM_DATA_DIR": str(tmp_path), "WECRM_COMPANY_NAME": "湖南湘瓷建材有限公司"}
    login = Settings.from_env(base | {"WECRM_SMTP_URL": "smtps://crm%40xiangci.com:p@mail.x.com"})
    assert login.mail_from == "湖南湘瓷建材有限公司 <crm@xiangci.com>"
    assert login.company_name == "湖南湘瓷建材有限公司"
    no_address = Settings.from_env(base | {"WECRM_SMTP_URL": "smtp://relay.x.com"})
    assert no_address.mail_from == "湖南湘瓷建材有限公司 <wecrm@relay.x.com>"
    chosen = Settings.from_env(
        base | {"WECRM_SMTP_URL": "smtp://relay.x.com", "WECRM_MAIL_FROM": "销售部 <sales@x.com>"}
    )
    assert chosen.mail_from == "销售部 <sales@x.com>"


def test_the_archive_is_configured_with_corp_library_archive_secret_and_keys(tmp_path):
    env = {"WECRM_DATA_DIR": str(tmp_path), "WECOM_CORP_ID": "ww1", "WECOM_SECRET": "app"}
    assert not Settings.from_env(env).archive_configured
    archive = {
        "WECOM_ARCHIVE_SECRET": "archive-secret",
        "WECOM_ARCHIVE_PRIVATE_KEYS": "3:/etc/wecrm/archive_v3.pem, 4:/etc/wecrm/archive_v4.pem",
        "WECOM_ARCHIVE_SDK_LIBRARY": "/opt/wecom/libWeWorkFinanceSdk_C.so",
    }
    settings = Settings.from_env({**env, **archive})
    assert settings.archive_configured
    assert (settings.wecom_archive_proxy, settings.wecom_archive_proxy_password) == ("", "")
    for name in archive:  # each one is needed
        assert not Settings.from_env({**env, **archive, name: ""}).archive_configured


def test_chat_windows_default_to_half_an_hour(tmp_path):
    assert Settings.from_env({"WECRM_DATA_DIR": str(tmp_path)}).chat_window_minutes == 30
    env = {"WECRM_DATA_DIR": str(tmp_path), "WECRM_CHAT_WINDOW_MINUTES": "45"}
    assert Settings.from_env(env).chat_window_minutes == 45


def test_the_digest_goes_out_at_eight_unless_set(tmp_path):
    assert Settings.from_env({"WECRM_DATA_DIR": str(tmp_path)}).digest_time == time(8, 0)
    env = {"WECRM_DATA_DIR": str(tmp_path), "WECRM_DIGEST_TIME": "7:30"}
    assert Settings.from_env(env).digest_time == time(7, 30)


def test_speech_defaults_to_the_bundled_model_int8_and_chinese(tmp_path):
    settings = Settings.from_env({"WECRM_DATA_DIR": str(tmp_path)})
    assert settings.whisper_model == ""
    assert settings.bundled_model_dir == tmp_path / "models" / "faster-whisper-base"
    assert (settings.whisper_compute_type, settings.whisper_threads) == ("int8", 0)
    assert settings.whisper_language == "zh"


def test_the_speech_model_may_be_a_size_name_or_a_folder_with_model_bin(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"")
    env = {"WECRM_DATA_DIR": str(tmp_path), "WECRM_WHISPER_LANGUAGE": "auto"}
    assert Settings.from_env({**env, "WECRM_WHISPER_MODEL": "small"}).whisper_model == "small"
    by_folder = Settings.from_env({**env, "WECRM_WHISPER_MODEL": str(folder)})
    assert by_folder.whisper_model == str(folder)
    assert by_folder.whisper_language == "auto"
