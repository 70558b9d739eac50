"""The demo's voice follow-up: a rep's follow-up with a recorded voice memo, transcribed for real.

Once the sample company and its week of chats are in, a rep logs a follow-up through the same
service the API uses (`crm.followups.log_follow_up`): "已发送正式报价单…" typed, the brochure PDF
and the voice memo attached. The memo gets a queued Recording whose job starts at the commit;
the demo's transcription worker transcribes it with the bundled faster-whisper model after
start, and only then do the follow-up's triggers run, so the newcomer sees the customer move
意向 → 报价 and the manager's WeCom message arrive once the words are known (crm/recordings.py).

The memo, `voice_memo.ogg` beside this module (45 KB, Ogg/Opus, 3.3 s), is espeak-ng's en-us
voice saying MEMO_WORDS, re-encoded by PyAV with the test helpers (tests/audio.py), from the
repository root: `encode(speech_wav(MEMO_WORDS), "ogg")` written to wecrm/demo/voice_memo.ogg.
tests/wecrm/test_demo_voice.py checks that the model still gives MEMO_WORDS back. It is
committed so the demo needs no espeak-ng. It is English because espeak-ng's Mandarin is not
speech the base model recognises (its Hanzi are half read as English, and pinyin input comes
back as the Chinese prompt or as other words). English forced through WECRM_WHISPER_LANGUAGE=zh
is unreliable (some sentences come back translated or garbled), so the demo lets Whisper detect
the language (supervisor.py), which gives these words back exactly; what it detects as Chinese
is still written in simplified characters (speech/transcribe.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import followups
from crm.actors import Actor
from crm.followups import Upload
from crm.storage import FileStore
from crm.vocab import ContactMethod, Stage
from models import Customer, FollowUp, Recording, User
from models.users import Role
from wecrm.demo.brochure import BROCHURE_FILENAME, brochure_pdf

MEMO_FILENAME = "语音备忘.ogg"
MEMO_WORDS = "The customer will visit our showroom on Friday."
MEMO_SUMMARY = "已发送正式报价单和产品手册，电话里约了看样，见语音备忘"


@dataclass(frozen=True)
class VoiceFollowUp:
    """Where the banner sends the newcomer: the rep who logged it and the customer's page."""

    author_userid: str
    customer_id: int
    customer_name: str


def voice_memo() -> bytes:
    """The committed voice memo (Ogg/Opus)."""
    return resources.files(__package__).joinpath("voice_memo.ogg").read_bytes()


def seed_voice_follow_up(
    session: Session, *, store: FileStore, max_attachment_bytes: int, now: datetime
) -> FollowUp | None:
    """The first rep (by id) with a customer in 意向 logs the voice follow-up on it, the one
    followed up most recently; None when no rep has one (a very small demo). Flushes; its
    transcription starts once the caller commits."""
    found = session.execute(
        select(Customer, User)
        .join(User, Customer.owner_id == User.id)
        .where(User.role == Role.REP, Customer.stage == Stage.INTEREST)
        .order_by(User.id, Customer.last_follow_up_at.desc(), Customer.id)
        .limit(1)
    ).first()
    if found is None:
        return None
    customer, rep = found
    return followups.log_follow_up(
        session,
        actor=Actor.of(rep),
        customer_id=customer.id,
        method=ContactMethod.VOICE,
        summary=MEMO_SUMMARY,
        now=now,
        store=store,
        max_attachment_bytes=max_attachment_bytes,
        uploads=[Upload(BROCHURE_FILENAME, brochure_pdf()), Upload(MEMO_FILENAME, voice_memo())],
    )


def find_voice_follow_up(session: Session) -> VoiceFollowUp | None:
    """The seeded voice follow-up: the first follow-up with a recording (later ones are the
    newcomer's own), or None in a demo seeded without it."""
    found = session.execute(
        select(FollowUp.customer_id, Customer.name, User.wecom_userid)
        .join(Recording, Recording.follow_up_id == FollowUp.id)
        .join(Customer, Customer.id == FollowUp.customer_id)
        .join(User, User.id == FollowUp.author_id)
        .order_by(FollowUp.id)
        .limit(1)
    ).first()
    if found is None:
        return None
    customer_id, customer_name, userid = found
    return VoiceFollowUp(author_userid=userid, customer_id=customer_id, customer_name=customer_name)
