"""The Finance SDK binding (wecom/finance_sdk.py) against a stand-in of Tencent's library.

The stand-in (finance_sdk_standin.c, built once per session with the system compiler) exports
the same functions and data shapes as libWeWorkFinanceSdk_C.so and serves records the tests
encrypt with test RSA keys; the binding under test is the production module.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from config import Settings, SettingsError
from tests.wecom.finance_standin import (
    ARCHIVE_ENV,
    StandinArchive,
    build_standin,
    encrypt_record,
    last_proxy,
    live_objects,
)
from wecom.finance_sdk import (
    FinanceSdk,
    FinanceSdkError,
    MediaTooLarge,
    load_private_keys,
    open_finance_sdk,
)

CORP_ID = "ww0123456789abcdef"
SECRET = "archive-secret-value"


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_standin(tmp_path_factory.mktemp("finance_sdk"))


@pytest.fixture(scope="session")
def keys() -> dict[int, rsa.RSAPrivateKey]:
    """Two key versions, as during a rotation (3 the old one, 4 the new one)."""
    return {v: rsa.generate_private_key(public_exponent=65537, key_size=2048) for v in (3, 4)}


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandinArchive:
    monkeypatch.setenv(ARCHIVE_ENV, str(tmp_path / "archive.txt"))
    return StandinArchive(tmp_path)


@pytest.fixture
def sdk(library: Path, keys, archive) -> Iterator[FinanceSdk]:
    with FinanceSdk(library, CORP_ID, SECRET, keys) as opened:
        yield opened
    assert live_objects(library) == 0


def text_message(n: int, content: str) -> dict:
    return {
        "msgid": f"msg-{n}",
        "action": "send",
        "from": "zhangwei",
        "tolist": ["wmCustomer1"],
        "roomid": "",
        "msgtime": 1_700_000_000_000 + n * 1000,
        "msgtype": "text",
        "text": {"content": content},
    }


def add_messages(archive, keys, versions: dict[int, int]) -> dict[int, dict]:
    """One text message per seq, encrypted for the key version given; the messages by seq."""
    messages = {}
    for seq, version in versions.items():
        messages[seq] = text_message(seq, f"第 {seq} 条：已发送正式报价单")
        archive.add_record(
            encrypt_record(
                seq, messages[seq], public_key=keys[version].public_key(), publickey_ver=version
            )
        )
    return messages


def test_records_are_paged_by_seq_and_each_message_is_decrypted(sdk, archive, keys):
    messages = add_messages(archive, keys, {seq: 3 for seq in range(1, 6)})

    pages = [sdk.fetch(after, 2) for after in (0, 2, 4, 5)]

    assert [[r.seq for r in page] for page in pages] == [[1, 2], [3, 4], [5], []]
    records = [r for page in pages for r in page]
    assert [r.message for r in records] == [messages[seq] for seq in range(1, 6)]
    assert [r.msgid for r in records] == [f"msg-{seq}" for seq in range(1, 6)]
    assert all(r.is_decrypted and r.error is None for r in records)


def test_two_key_versions_are_decrypted_in_one_batch(sdk, archive, keys):
    messages = add_messages(archive, keys, {1: 3, 2: 4, 3: 3, 4: 4})

    records = sdk.fetch(0, 100)

    assert [(r.seq, r.publickey_ver) for r in records] == [(1, 3), (2, 4), (3, 3), (4, 4)]
    assert [r.message for r in records] == list(messages.values())


def test_a_record_for_an_unconfigured_key_version_is_returned_flagged_and_later_decryptable(
    library, sdk, archive, keys, caplog
):
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    add_messages(archive, keys, {1: 3})
    rotated = text_message(2, "合同已盖章")
    archive.add_record(encrypt_record(2, rotated, public_key=new_key.public_key(), publickey_ver=5))
    add_messages(archive, keys, {3: 4})

    with caplog.at_level(logging.WARNING, logger="wecom.finance_sdk"):
        records = sdk.fetch(0, 100)

    assert [r.seq for r in records] == [1, 2, 3]  # the batch went on, the cursor can pass 2
    flagged = records[1]
    assert (flagged.msgid, flagged.message, flagged.publickey_ver) == ("msg-2", None, 5)
    assert flagged.error is not None and flagged.error.code == 10007
    assert "WECOM_ARCHIVE_PRIVATE_KEYS" in flagged.error.reason and "版本 5" in flagged.error.reason
    assert "seq=2" in caplog.text
    assert records[0].is_decrypted and records[2].is_decrypted

    # Once the key is configured, the record kept from the batch decrypts.
    with FinanceSdk(library, CORP_ID, SECRET, {**keys, 5: new_key}) as with_new_key:
        assert flagged.encrypted is not None
        assert with_new_key.decrypt(flagged.encrypted).message == rotated


def test_a_record_encrypted_for_another_key_is_flagged_as_a_decrypt_failure(library, archive, keys):
    add_messages(archive, keys, {1: 3, 2: 4})
    wrong = {3: keys[4], 4: keys[4]}  # version 3 configured with the wrong private key

    with FinanceSdk(library, CORP_ID, SECRET, wrong) as sdk:
        first, second = sdk.fetch(0, 10)

    assert first.message is None and first.error is not None and first.error.code == 10006
    assert second.is_decrypted
    assert live_objects(library) == 0


def test_a_server_ip_off_the_archive_whitelist_raises_10009_naming_the_fix(sdk, archive, caplog):
    archive.fail("GetChatData", 10009)

    with (
        caplog.at_level(logging.ERROR, logger="wecom.finance_sdk"),
        pytest.raises(FinanceSdkError) as raised,
    ):
        sdk.fetch(0, 100)

    assert raised.value.code == 10009
    assert "可信 IP" in raised.value.reason and "出口 IP" in raised.value.reason
    assert "10009" in caplog.text and "可信 IP" in caplog.text


def test_an_errcode_in_the_reply_raises_and_48002_points_at_the_app_secret(sdk, archive):
    archive.answer_errcode(48002, "api forbidden")

    with pytest.raises(FinanceSdkError) as raised:
        sdk.fetch(0, 100)

    assert raised.value.code == 48002
    assert "应用的 Secret" in raised.value.reason and "WECOM_ARCHIVE_SECRET" in raised.value.reason
    assert "api forbidden" in raised.value.reason


def test_a_failing_init_raises_and_destroys_the_sdk(library, keys, archive):
    with pytest.raises(FinanceSdkError) as raised:
        FinanceSdk(library, CORP_ID, "bad", keys)

    assert raised.value.code == 10000 and "WECOM_ARCHIVE_SECRET" in raised.value.reason
    assert live_objects(library) == 0


@pytest.mark.parametrize("limit", [0, 1001])
def test_a_limit_outside_1_to_1000_is_refused_before_the_sdk_is_asked(sdk, limit):
    with pytest.raises(ValueError, match="limit"):
        sdk.fetch(0, limit)


def test_media_over_a_megabyte_is_assembled_from_its_512_kb_chunks(sdk, archive):
    data = os.urandom(1_300_000)  # three chunks: 512 KB, 512 KB, the rest
    archive.add_media("sdkfile-quote-pdf", data)

    assert sdk.media("sdkfile-quote-pdf", max_bytes=2_000_000) == data


def test_media_beyond_max_bytes_is_refused(sdk, archive, library):
    archive.add_media("sdkfile-video", os.urandom(1_300_000))

    with pytest.raises(MediaTooLarge, match="1000000"):
        sdk.media("sdkfile-video", max_bytes=1_000_000)
    assert live_objects(library) == 1  # only the SDK handle itself


def test_an_unknown_media_file_raises_the_fileid_error(sdk, archive):
    with pytest.raises(FinanceSdkError) as raised:
        sdk.media("no-such-file", max_bytes=1_000_000)

    assert raised.value.code == 10005 and "sdkfileid" in raised.value.reason


def test_no_slice_or_media_object_outlives_its_call_even_when_calls_fail(
    library, sdk, archive, keys
):
    add_messages(archive, keys, {1: 3, 2: 4})
    archive.add_record(
        encrypt_record(3, text_message(3, "x"), public_key=keys[3].public_key(), publickey_ver=3)
        | {"encrypt_chat_msg": "00ff"}  # DecryptData refuses it
    )
    archive.add_media("sdkfile-1", os.urandom(600_000))

    records = sdk.fetch(0, 10)
    sdk.media("sdkfile-1", max_bytes=1_000_000)
    archive.fail("GetChatData", 10001)
    archive.fail("GetMediaData", 10001)
    for failing in (lambda: sdk.fetch(3, 10), lambda: sdk.media("sdkfile-1", max_bytes=10**6)):
        with pytest.raises(FinanceSdkError):
            failing()

    assert [r.is_decrypted for r in records] == [True, True, False]
    assert records[2].error is not None and records[2].error.code == 10006
    assert live_objects(library) == 1  # the open SDK handle; its fixture checks 0 after close


def _write_key(path: Path, key, *, fmt=serialization.PrivateFormat.TraditionalOpenSSL, **kw):
    encryption = kw.get("encryption", serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt, encryption))
    return path


def test_private_keys_of_several_versions_load_from_pkcs1_and_pkcs8_files(tmp_path, keys):
    v3 = _write_key(tmp_path / "v3.pem", keys[3])
    v4 = _write_key(tmp_path / "v4.pem", keys[4], fmt=serialization.PrivateFormat.PKCS8)

    loaded = load_private_keys(f"3:{v3}, 4:{v4}")

    assert sorted(loaded) == [3, 4]
    assert loaded[4].private_numbers() == keys[4].private_numbers()


@pytest.mark.parametrize(
    ("make_spec", "fragment"),
    [
        (lambda d, k: f"3:{d / 'missing.pem'}", "cannot be read"),
        (lambda d, k: f"3:{_text(d / 'notes.txt')}", "not a PEM private key"),
        (
            lambda d, k: f"3:{_write_key(d / 'ec.pem', ec.generate_private_key(ec.SECP256R1()))}",
            "not an RSA key",
        ),
        (
            lambda d, k: (
                "3:"
                + str(
                    _write_key(
                        d / "locked.pem",
                        k[3],
                        encryption=serialization.BestAvailableEncryption(b"pw"),
                    )
                )
            ),
            "passphrase",
        ),
        (lambda d, k: "/etc/wecrm/key.pem", "VERSION:PATH"),
        (lambda d, k: "v3:/etc/wecrm/key.pem", "integer"),
        (lambda d, k: "3:/a.pem,3:/b.pem", "twice"),
        (lambda d, k: " , ", "no key"),
    ],
)
def test_a_wrong_private_key_setting_names_the_variable(tmp_path, keys, make_spec, fragment):
    with pytest.raises(SettingsError, match="WECOM_ARCHIVE_PRIVATE_KEYS") as raised:
        load_private_keys(make_spec(tmp_path, keys))
    assert fragment in str(raised.value)


def _text(path: Path) -> Path:
    path.write_text("not a key")
    return path


def test_the_sdk_opened_from_settings_uses_the_archive_secret_keys_and_proxy(
    library, keys, archive, tmp_path
):
    key_file = _write_key(tmp_path / "v3.pem", keys[3])
    add_messages(archive, keys, {1: 3})
    settings = Settings.from_env(
        {
            "WECRM_DATA_DIR": str(tmp_path),
            "WECOM_CORP_ID": CORP_ID,
            "WECOM_ARCHIVE_SECRET": SECRET,
            "WECOM_ARCHIVE_PRIVATE_KEYS": f"3:{key_file}",
            "WECOM_ARCHIVE_SDK_LIBRARY": str(library),
            "WECOM_ARCHIVE_PROXY": "socks5://10.0.0.1:8081",
            "WECOM_ARCHIVE_PROXY_PASSWORD": "proxyuser:proxy-pw",
        }
    )

    with open_finance_sdk(settings) as sdk:
        [record] = sdk.fetch(0, 10)

    assert record.is_decrypted
    assert last_proxy(library) == ("socks5://10.0.0.1:8081", "proxyuser:proxy-pw")


def test_opening_an_unconfigured_archive_names_what_is_missing(tmp_path):
    settings = Settings.from_env({"WECRM_DATA_DIR": str(tmp_path), "WECOM_CORP_ID": CORP_ID})

    with pytest.raises(SettingsError) as raised:
        open_finance_sdk(settings)

    message = str(raised.value)
    assert "WECOM_ARCHIVE_SECRET" in message and "WECOM_ARCHIVE_SDK_LIBRARY" in message
    assert "WECOM_CORP_ID" not in message


def test_a_library_that_is_not_the_sdk_names_its_variable(tmp_path, keys):
    not_a_library = _text(tmp_path / "libWeWorkFinanceSdk_C.so")

    with pytest.raises(SettingsError, match="WECOM_ARCHIVE_SDK_LIBRARY"):
        FinanceSdk(not_a_library, CORP_ID, SECRET, keys)
