"""The archive puller against the Finance SDK stand-in: records pulled after the cursor,
decrypted with their key version, their files fetched, stored once, and captured like an export;
a failure kept on the cursor and shown by /healthz."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from crm import chat_capture
from models import ArchiveMessage, Attachment, Customer, FollowUp
from models.chat import ArchiveStatus
from tests.archive import CUSTOMER_ID, Chat
from tests.factories import make_company, make_customer
from tests.wecom.finance_standin import ARCHIVE_ENV, StandinArchive, build_standin, encrypt_record
from wecrm.app import create_app
from wecrm.runtime import Runtime
from wecrm.wiring import build_runtime
from workers import archive, capture, context

PDF = b"%PDF-1.4\n" + b"0" * 2048 + b"\n%%EOF\n"


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_standin(tmp_path_factory.mktemp("finance_sdk_pull"))


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Two key versions on disk, as during a rotation."""
    folder = tmp_path_factory.mktemp("archive_keys")
    paths = {}
    for version in (3, 4):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        paths[version] = folder / f"v{version}.pem"
        paths[version].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    return paths


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandinArchive:
    monkeypatch.setenv(ARCHIVE_ENV, str(tmp_path / "archive.txt"))
    return StandinArchive(tmp_path)


def archive_runtime(runtime: Runtime, library: Path, keys: dict[int, Path]) -> Runtime:
    spec = ",".join(f"{version}:{path}" for version, path in keys.items())
    settings = runtime.settings.with_overrides(
        wecom_archive_private_keys=spec, wecom_archive_sdk_library=str(library)
    )
    return build_runtime(settings, clock=runtime.clock)


@pytest.fixture
def pulling(runtime: Runtime, library: Path, keys: dict[int, Path]) -> Iterator[Runtime]:
    """A runtime whose archive is configured (both key versions), used by the jobs."""
    rt = archive_runtime(runtime, library, keys)
    context.use(rt)
    yield rt
    context.use(runtime)
    rt.close()


def serve(standin: StandinArchive, keys: dict[int, Path], messages: list[dict], *, first_seq=1):
    """Put the messages in the stand-in's archive, alternating the two key versions."""
    for offset, message in enumerate(messages):
        version = (3, 4)[offset % 2]
        private = serialization.load_pem_private_key(keys[version].read_bytes(), password=None)
        assert isinstance(private, rsa.RSAPrivateKey)
        standin.add_record(
            encrypt_record(
                first_seq + offset,
                message,
                public_key=private.public_key(),
                publickey_ver=version,
            )
        )


def quote_customer(session, clock):
    company = make_company(session)
    rep = company.reps[0][0]
    customer = make_customer(session, rep, clock(), name="王建国", stage="意向")
    customer.external_userid = CUSTOMER_ID
    session.commit()
    return company, rep, customer


def test_a_pull_stores_each_record_once_with_its_pdf_and_capture_moves_the_quote(
    session, pulling, standin, keys, clock
):
    _company, rep, customer = quote_customer(session, clock)
    quote = Chat(clock() - timedelta(hours=2)).quote(rep.wecom_userid)
    serve(standin, keys, quote)
    sdkfileid = next(m["file"]["sdkfileid"] for m in quote if m["msgtype"] == "file")
    standin.add_media(sdkfileid, PDF)

    assert archive.pull_archive() == {"stored": 3, "media": 1}
    assert archive.pull_archive() == {}  # nothing after the cursor: nothing stored twice
    counts, finished = capture.run_capture(pulling)
    assert finished and counts["follow_ups"] == 1

    session.rollback()  # a fresh snapshot
    session.expire_all()
    assert chat_capture.cursor_state(session).seq == 3
    assert session.get(Customer, customer.id).stage == "报价"
    [attachment] = session.scalars(select(Attachment)).all()
    assert attachment.content_type == "application/pdf"
    assert pulling.store.path(attachment.storage_key).read_bytes() == PDF


def test_a_batch_whose_commit_fails_is_pulled_again_without_duplicates(
    session, pulling, standin, keys, clock, monkeypatch
):
    quote_customer(session, clock)
    serve(standin, keys, Chat(clock() - timedelta(hours=2)).quote("zhangsan"))
    real_advance = chat_capture.advance_cursor

    def dies(*args, **kwargs):
        raise RuntimeError("worker killed before the commit")

    monkeypatch.setattr(chat_capture, "advance_cursor", dies)
    with pytest.raises(RuntimeError):
        archive.pull_archive()
    session.rollback()  # a fresh snapshot
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(ArchiveMessage)) == 0
    monkeypatch.setattr(chat_capture, "advance_cursor", real_advance)
    assert archive.pull_archive()["stored"] == 3
    assert archive.pull_archive() == {}
    session.rollback()  # a fresh snapshot
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(ArchiveMessage)) == 3


def test_a_record_for_a_missing_key_version_waits_and_is_captured_once_the_key_is_added(
    session, runtime, library, keys, standin, clock
):
    _company, rep, customer = quote_customer(session, clock)
    serve(standin, keys, Chat(clock() - timedelta(hours=2)).quote(rep.wecom_userid))
    only_v3 = archive_runtime(runtime, library, {3: keys[3]})
    context.use(only_v3)
    try:
        assert archive.pull_archive() == {"stored": 2, "undecryptable": 1}
    finally:
        context.use(runtime)
        only_v3.close()
    session.rollback()  # a fresh snapshot
    session.expire_all()
    waiting = session.scalars(
        select(ArchiveMessage).where(ArchiveMessage.status == ArchiveStatus.UNDECRYPTABLE)
    ).all()
    assert len(waiting) == 1 and chat_capture.cursor_state(session).seq == 3

    both = archive_runtime(runtime, library, keys)
    context.use(both)
    try:
        assert archive.pull_archive() == {"recovered": 1}
        capture.run_capture(both)
    finally:
        context.use(runtime)
        both.close()
    session.rollback()  # a fresh snapshot
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 1
    assert session.get(Customer, customer.id).stage == "报价"


def test_a_failing_pull_is_kept_with_its_reason_and_healthz_shows_it_then_staleness(
    session, pulling, standin, clock
):
    client = create_app(pulling).test_client()
    assert client.get("/healthz").json["archive"]["status"] == "stale"  # never pulled yet

    standin.fail("GetChatData", 10009)
    assert archive.pull_archive() == {"failed": 1}
    health = client.get("/healthz")
    assert health.status_code == 200  # the web process itself is fine
    assert health.json["status"] == "degraded"
    assert health.json["archive"]["status"] == "failing"
    assert "可信 IP" in health.json["archive"]["error"]

    standin.path.write_text("")  # the admin whitelisted the server
    assert archive.pull_archive() == {}
    assert client.get("/healthz").json == {
        "status": "ok",
        "database": "ok",
        "redis": "ok",
        "archive": {"status": "ok", "last_pull_at": clock().isoformat()},
    }
    clock.advance(minutes=20)
    assert client.get("/healthz").json["archive"]["status"] == "stale"


def test_without_the_archive_configured_a_pull_does_nothing_and_healthz_says_off(runtime, client):
    context.use(runtime)
    assert archive.pull_archive() == {}
    assert client.get("/healthz").json["archive"] == {"status": "off"}
