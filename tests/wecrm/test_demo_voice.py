"""The demo's voice follow-up (wecrm/demo/voice.py): seeded with its memo queued, and transcribed
to the memo's words by the transcription job with the real bundled model, as the demo's worker
does after start (the running demo is tested in test_demo.py)."""

from __future__ import annotations

from rq import SimpleWorker
from sqlalchemy import select

from crm.vocab import ContactMethod, Stage
from models import Customer, Task
from models.recordings import RecordingStatus
from tests.speech_model import link_assembled_model
from wecrm.demo import seeding, voice
from wecrm.demo.brochure import BROCHURE_FILENAME
from wecrm.demo.directory import directory_from_db
from workers import queues


def _seed_with_voice(session, runtime, clock):
    company = seeding.seed_company(session, now=clock(), customer_count=60)
    follow_up = voice.seed_voice_follow_up(
        session,
        store=runtime.store,
        max_attachment_bytes=runtime.settings.max_attachment_bytes,
        now=clock(),
    )
    session.commit()
    if follow_up is not None:
        session.refresh(follow_up, ["author", "attachments", "recordings"])
    return company, follow_up


def test_the_demo_seeds_a_reps_voice_follow_up_with_its_memo_queued(session, runtime, clock):
    company, follow_up = _seed_with_voice(session, runtime, clock)

    assert follow_up is not None
    assert follow_up.author in company.reps
    assert follow_up.method == ContactMethod.VOICE and follow_up.transcript is None
    by_name = {a.filename: a for a in follow_up.attachments}
    assert set(by_name) == {BROCHURE_FILENAME, voice.MEMO_FILENAME}
    memo = by_name[voice.MEMO_FILENAME]
    assert memo.content_type == "audio/ogg"
    assert runtime.store.path(memo.storage_key).read_bytes() == voice.voice_memo()
    (recording,) = follow_up.recordings
    assert (recording.status, recording.attachment_id) == (RecordingStatus.QUEUED, memo.id)
    assert queues.queue(runtime.redis, queues.TRANSCRIPTION).count == 1  # started at the commit
    # The triggers wait for the transcript: the customer is still 意向.
    customer = session.get(Customer, follow_up.customer_id)
    assert customer.stage == Stage.INTEREST

    # The banner signs in as its author, whom the fake WeCom's directory lists.
    found = voice.find_voice_follow_up(session)
    assert found == voice.VoiceFollowUp(
        author_userid=follow_up.author.wecom_userid,
        customer_id=customer.id,
        customer_name=customer.name,
    )
    _, members = directory_from_db(session)
    assert found.author_userid in {m["userid"] for m in members}


def test_the_transcription_job_gives_back_the_memos_words_and_moves_the_customer_to_quote(
    session, runtime, clock
):
    link_assembled_model(runtime.settings.bundled_model_dir)
    _, follow_up = _seed_with_voice(session, runtime, clock)

    SimpleWorker([queues.TRANSCRIPTION], connection=runtime.redis).work(burst=True)

    session.rollback()  # the job committed in its own sessions: read afresh
    session.refresh(follow_up, ["recordings"])
    (recording,) = follow_up.recordings
    assert recording.status == RecordingStatus.DONE, recording.reason
    assert (recording.transcript, recording.language) == (voice.MEMO_WORDS, "en")
    assert follow_up.transcript == voice.MEMO_WORDS
    customer = session.get(Customer, follow_up.customer_id)
    assert customer.stage == Stage.QUOTE
    review = session.scalars(select(Task).where(Task.customer_id == customer.id)).all()
    assert any(t.title == f"审核报价：{customer.name}" for t in review)
