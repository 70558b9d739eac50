"""The archive puller: WeCom's message archive (会话内容存档) pulled with the Finance SDK.

WeCom keeps archived records for a few days only, so the pull runs periodically as well as when
WeCom's `msgaudit_notify` event says there is more (the bot starts it after that event's commit).
Each batch is fetched after the stored cursor (wecom/finance_sdk.py decrypts it), the bytes of
its file and voice messages are fetched and put in the FileStore, and then the messages and the
cursor's new seq are committed together (crm/chat_capture.py): a worker killed between fetch and
commit leaves the cursor where it was, the next pull fetches the batch again and the msgid keeps
each message once. Records that cannot be decrypted yet (a key version not configured) are kept
encrypted and tried again on every pull. A failure is logged and kept on the cursor with its
reason, which /healthz shows beside the time of the last good pull.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePath

import redis
from redis.exceptions import LockNotOwnedError

from config import SettingsError
from crm import chat_capture, followups
from crm.errors import Invalid
from models.chat import ArchiveOrigin
from wecom.finance_sdk import (
    MAX_FETCH_LIMIT,
    NETWORK_ERROR,
    SYSTEM_ERROR,
    ArchivedRecord,
    FinanceSdk,
    FinanceSdkError,
    MediaTooLarge,
    open_finance_sdk,
)
from wecrm.runtime import Runtime
from workers import context, queues

log = logging.getLogger(__name__)

PULL_PENDING_KEY = "wecrm:pending:pull_archive"  # a pull is queued: another enqueue is a no-op
PULL_LOCK_KEY = "wecrm:lock:pull_archive"  # a pull is running: a second one does nothing
PULL_LOCK_SECONDS = 1800
MEDIA_TYPES = ("file", "voice")  # what the follow-up keeps (files) or transcribes (voice)
RETRY_UNDECRYPTABLE = 1000  # encrypted records tried again per pull
# Worth another try later; any other media error (a bad sdkfileid, expired data) would fail
# every pull again, so that file stays known by its name only.
TRANSIENT_MEDIA_ERRORS = (NETWORK_ERROR, SYSTEM_ERROR)


def enqueue_pull(connection: redis.Redis) -> None:
    """Start one pull, however many wake-ups arrive meanwhile (WeCom sends one per 15 s)."""
    queues.enqueue_once(
        connection,
        pull_archive,
        queue_name=queues.CAPTURE,
        pending_key=PULL_PENDING_KEY,
        pending_seconds=PULL_LOCK_SECONDS,
        job_timeout=PULL_LOCK_SECONDS,
    )


def pull_archive() -> dict[str, int]:
    """Pull everything new from the archive; {} when the archive is not configured."""
    rt = context.runtime()
    rt.redis.delete(PULL_PENDING_KEY)
    if not rt.settings.archive_configured:
        return {}
    lock = rt.redis.lock(PULL_LOCK_KEY, timeout=PULL_LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        return {}  # the running pull fetches what this one would have
    try:
        with open_finance_sdk(rt.settings) as sdk:
            counts = pull(rt, sdk)
    except (FinanceSdkError, SettingsError) as error:
        reason = error.reason if isinstance(error, FinanceSdkError) else str(error)
        log.error("archive pull failed: %s", reason)
        with rt.db.session(lock_for_write=True) as session:
            chat_capture.record_pull_failure(session, reason, rt.clock())
            session.commit()
        return {"failed": 1}
    finally:
        # A backlog may outlast the lock's timeout; the work is committed either way.
        with contextlib.suppress(LockNotOwnedError):
            lock.release()
    if counts:
        log.info("archive pull: %s", counts)
    return counts


def pull(rt: Runtime, sdk: FinanceSdk) -> dict[str, int]:
    """Records still waiting for their key first, then batch after batch from the cursor until
    the archive has nothing newer; each batch committed with the cursor's new seq."""
    totals: Counter[str] = Counter(recovered=_retry_undecryptable(rt, sdk))
    while True:
        with rt.db.session() as session:
            state = chat_capture.cursor_state(session)
            after = state.seq if state is not None else 0
        records = sdk.fetch(after, MAX_FETCH_LIMIT)
        decrypted = [r for r in records if r.message is not None]
        media = _fetch_media(rt, sdk, decrypted)
        with rt.db.session(lock_for_write=True) as session:
            now = rt.clock()
            stored = chat_capture.store_messages(
                session,
                [r.message for r in decrypted],
                origin=ArchiveOrigin.SDK,
                now=now,
                media=media,
            )
            waiting = [
                chat_capture.Encrypted(
                    r.msgid, r.encrypted or {}, r.error.reason if r.error else ""
                )
                for r in records
                if r.message is None
            ]
            totals["undecryptable"] += chat_capture.store_undecryptable(session, waiting, now=now)
            chat_capture.advance_cursor(session, max((r.seq for r in records), default=after), now)
            session.commit()
        totals.update(stored=stored.stored, duplicates=stored.duplicates, rejected=stored.rejected)
        totals["media"] += len(media)
        if len(records) < MAX_FETCH_LIMIT:
            return {name: count for name, count in totals.items() if count}


def _retry_undecryptable(rt: Runtime, sdk: FinanceSdk) -> int:
    with rt.db.session() as session:
        waiting = chat_capture.undecryptable(session, RETRY_UNDECRYPTABLE)
    opened = [(row_id, sdk.decrypt(record)) for row_id, record in waiting]
    opened = [(row_id, r) for row_id, r in opened if r.message is not None]
    if not opened:
        return 0
    with rt.db.session(lock_for_write=True) as session:
        recovered = sum(
            chat_capture.decrypted_later(session, row_id, record.message or {})
            for row_id, record in opened
        )
        session.commit()
    return recovered


def _fetch_media(
    rt: Runtime, sdk: FinanceSdk, records: Sequence[ArchivedRecord]
) -> dict[str, followups.StoredFile]:
    """The bytes of the batch's file and voice messages, checked like any attachment and in the
    FileStore before the batch commits (a file no row names is purged as an orphan). A file we
    do not keep (a type reps do not attach, too large, refused by the SDK) stays known by its
    name only."""
    fetched: dict[str, followups.StoredFile] = {}
    for record in records:
        message = record.message or {}
        kind = message.get("msgtype")
        body = message.get(kind) if isinstance(kind, str) and kind in MEDIA_TYPES else None
        if not isinstance(body, dict) or not body.get("sdkfileid"):
            continue
        name = _media_name(kind or "", body, record.msgid)
        try:
            data = sdk.media(str(body["sdkfileid"]), max_bytes=rt.settings.max_attachment_bytes)
            upload, suffix, content_type = followups.check_upload(
                followups.Upload(filename=name, data=data), rt.settings.max_attachment_bytes
            )
        except FinanceSdkError as error:
            if error.code in TRANSIENT_MEDIA_ERRORS:
                raise  # the batch is fetched again on the next pull
            log.warning("archive media of %s not fetched: %s", record.msgid, error)
            continue
        except (MediaTooLarge, Invalid) as refusal:
            log.info("archive media of %s not kept: %s", record.msgid, refusal)
            continue
        key, digest = rt.store.save(upload.data, suffix=suffix)
        fetched[record.msgid] = followups.StoredFile(
            upload.filename, content_type, len(upload.data), digest, key
        )
    return fetched


def _media_name(kind: str, body: dict, msgid: str) -> str:
    if kind == "file":
        name = str(body.get("filename") or "")
        extension = str(body.get("fileext") or "")
        if PurePath(name).suffix or not extension:
            return name
        return f"{name}.{extension}"
    return f"语音_{msgid[:12]}.amr"  # WeCom voice is AMR (or SILK under that name)
