"""Redaction of credentials from text and log records (no services needed)."""

from __future__ import annotations

import logging

from config import Settings
from config.redaction import Redactor


def _record(message: str, *args: object, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("wecrm.test", logging.WARNING, __file__, 1, message, args, exc_info)


def test_credential_fields_in_urls_and_json_lose_their_values():
    redactor = Redactor()
    text = (
        "GET /cgi-bin/gettoken?corpid=ww1&corpsecret=S3cr3tValue HTTP/1.1 "
        '/message/send?access_token=TOK&debug=1 {"access_token": "TOK2", "expires_in": 7200}'
    )

    assert redactor.redact(text) == (
        "GET /cgi-bin/gettoken?corpid=ww1&corpsecret=*** HTTP/1.1 "
        '/message/send?access_token=***&debug=1 {"access_token": "***", "expires_in": 7200}'
    )


def test_known_secrets_and_recent_tokens_are_redacted_wherever_they_appear():
    redactor = Redactor()
    redactor.add_secrets(["corp-secret-value", "abc"])  # too short to redact safely
    for n in range(20):
        redactor.add_token(f"token-{n:02d}")

    text = "secret corp-secret-value, tokens token-19 token-12 token-00, word abc"
    assert redactor.redact(text) == "secret ***, tokens *** *** token-00, word abc"


def test_a_log_record_loses_secrets_in_its_arguments_and_its_traceback():
    redactor = Redactor()
    redactor.add_secrets(["corp-secret-value"])
    try:
        try:
            raise ConnectionError("GET /gettoken?corpsecret=corp-secret-value refused")
        except ConnectionError as inner:
            raise RuntimeError("send failed") from inner
    except RuntimeError as error:
        record = _record(
            "job %s failed: %s",
            7,
            "corp-secret-value",
            exc_info=(RuntimeError, error, error.__traceback__),
        )

    redactor.clean(record)
    formatted = logging.Formatter().format(record)

    assert "corp-secret-value" not in formatted
    assert "job 7 failed: ***" in formatted
    assert "corpsecret=*** refused" in formatted  # the chained cause is still told, cleaned


def test_a_clean_record_keeps_its_arguments():
    record = _record("message %d failed", 3)
    Redactor().clean(record)
    assert (record.msg, record.args) == ("message %d failed", (3,))


def test_settings_list_every_secret_including_the_smtp_password_as_the_url_holds_it():
    settings = Settings.from_env(
        {
            "WECRM_SECRET_KEY": "signing-key-123",
            "WECOM_SECRET": "wecom-secret-456",
            "WECOM_ARCHIVE_SECRET": "archive-secret-789",
            "WECOM_ARCHIVE_PROXY_PASSWORD": "proxyuser:proxy-pw",
            "WECRM_SMTP_URL": "smtp://crm%40a.example:p%40ss%3Aw%2Frd%2542@127.0.0.1:25",
        }
    )
    values = settings.secret_values
    assert {
        "signing-key-123",
        "wecom-secret-456",
        "archive-secret-789",
        "proxyuser:proxy-pw",
        "p@ss:w/rd%42",
        "p%40ss%3Aw%2Frd%2542",
    } <= set(values)
