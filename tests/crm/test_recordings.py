"""Recordings: deferred follow-up triggers, transcripts written once, stalled runs requeued."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from crm import after_commit, followups, recordings
from crm.actors import Actor
from crm.errors import Invalid
from models import Attachment, Customer, FollowUp, Recording, StageChange, Task
from tests.factories import make_company, make_customer

PDF = b"%PDF-1.4 quote"
AMR = b"#!AMR\n" + bytes(64)
LEASE = timedelta(minutes=40)


@pytest.fixture
def rep(session):
    return make_company(session).reps[0][0]


def _log(session, runtime, clock, rep, customer, summary, files):
    follow_up = followups.log_follow_up(
        session,
        actor=Actor.of(rep),
        customer_id=customer.id,
        method="电话",
        summary=summary,
        now=clock(),
        store=runtime.store,
        max_attachment_bytes=10**6,
        uploads=[followups.Upload(name, data) for name, data in files],
    )
    session.commit()
    return follow_up


def _recordings(session, follow_up_id):
    session.expire_all()
    return session.scalars(
        select(Recording).where(Recording.follow_up_id == follow_up_id).order_by(Recording.id)
    ).all()


def _quote_moves(session, customer_id):
    return session.scalar(
        select(func.count())
        .select_from(StageChange)
        .where(StageChange.customer_id == customer_id, StageChange.to_stage == "报价")
    )


def test_a_quote_said_in_a_recording_moves_to_quote_when_transcribed_and_only_once(
    session, runtime, clock, rep
):
    customer = make_customer(session, rep, clock(), stage="意向")
    follow_up = _log(
        session,
        runtime,
        clock,
        rep,
        customer,
        "电话沟通",
        [("通话.amr", AMR), ("报价.pdf", PDF)],
    )
    (recording,) = _recordings(session, follow_up.id)
    assert recording.status == "queued" and recording.attempts == 0
    assert session.get(Customer, customer.id).stage == "意向"  # deferred: words not known yet

    clock.advance(minutes=1)
    claim = recordings.claim(session, recording.id, clock())
    session.commit()
    assert claim is not None and claim.filename == "通话.amr" and claim.attempt == 1
    assert runtime.store.path(claim.storage_key).read_bytes() == AMR
    assert session.get(Customer, customer.id).stage == "意向"

    clock.advance(minutes=1)
    assert recordings.finish(
        session, recording.id, " 王总，已发送正式报价单 ", clock(), language="zh"
    )
    session.commit()
    # A second worker (the job delivered twice, or requeued) finishes the same recording.
    assert not recordings.finish(session, recording.id, "另一段转写", clock())
    session.commit()

    session.expire_all()
    assert session.get(Customer, customer.id).stage == "报价"
    assert _quote_moves(session, customer.id) == 1
    assert session.scalar(select(func.count()).select_from(Task)) == 1
    written = session.get(FollowUp, follow_up.id)
    assert written.summary == "电话沟通"
    assert written.transcript == "王总，已发送正式报价单"
    assert written.capture == {"categories": ["报价"], "keywords": ["正式报价单"], "files": []}
    (recording,) = _recordings(session, follow_up.id)
    assert (recording.status, recording.language, recording.finished_at) == ("done", "zh", clock())


def test_a_failed_recording_runs_the_deferred_triggers_on_the_typed_text(
    session, runtime, clock, rep
):
    customer = make_customer(session, rep, clock(), stage="意向")
    follow_up = _log(
        session,
        runtime,
        clock,
        rep,
        customer,
        "已发送正式报价单",
        [("通话.m4a", b"\x00\x00\x00\x18ftypM4A "), ("报价.pdf", PDF)],
    )
    (recording,) = _recordings(session, follow_up.id)
    assert session.get(Customer, customer.id).stage == "意向"

    assert recordings.claim(session, recording.id, clock()) is not None
    assert recordings.fail(session, recording.id, "录音文件已损坏，无法识别", clock())
    session.commit()
    assert not recordings.fail(session, recording.id, "再失败一次", clock())
    assert not recordings.finish(session, recording.id, "迟到的转写", clock())
    session.commit()

    session.expire_all()
    assert session.get(Customer, customer.id).stage == "报价"
    assert _quote_moves(session, customer.id) == 1
    written = session.get(FollowUp, follow_up.id)
    assert written.transcript is None and written.capture is None
    (recording,) = _recordings(session, follow_up.id)
    assert (recording.status, recording.reason) == ("failed", "录音文件已损坏，无法识别")
    assert session.get(Attachment, recording.attachment_id) is not None  # the file is kept


def test_the_triggers_wait_for_the_last_of_several_recordings(session, runtime, clock, rep):
    customer = make_customer(session, rep, clock(), stage="意向")
    follow_up = _log(
        session,
        runtime,
        clock,
        rep,
        customer,
        "",
        [("一.amr", AMR), ("二.wav", b"RIFF\x00\x00\x00\x00WAVEfmt "), ("报价.pdf", PDF)],
    )
    first, second = _recordings(session, follow_up.id)
    assert session.get(FollowUp, follow_up.id).summary == recordings.VOICE_SUMMARY

    recordings.finish(session, second.id, "已发送正式报价单", clock())
    session.commit()
    session.expire_all()
    assert session.get(FollowUp, follow_up.id).transcript == "已发送正式报价单"  # known so far
    assert session.get(Customer, customer.id).stage == "意向"

    recordings.finish(session, first.id, "王总您好", clock())
    session.commit()
    session.expire_all()
    assert session.get(FollowUp, follow_up.id).transcript == "王总您好\n已发送正式报价单"
    assert session.get(Customer, customer.id).stage == "报价"
    assert _quote_moves(session, customer.id) == 1


def test_a_follow_up_without_audio_runs_its_triggers_at_once(session, runtime, clock, rep):
    customer = make_customer(session, rep, clock(), stage="意向")
    follow_up = _log(
        session, runtime, clock, rep, customer, "已发送正式报价单", [("报价.pdf", PDF)]
    )
    assert _recordings(session, follow_up.id) == []
    assert session.get(Customer, customer.id).stage == "报价"


def test_a_voice_only_follow_up_needs_audio(session, runtime, clock, rep):
    customer = make_customer(session, rep, clock())
    with pytest.raises(Invalid) as refused:
        _log(session, runtime, clock, rep, customer, " ", [("报价.pdf", PDF)])
    assert refused.value.code == "required"
    session.rollback()
    follow_up = _log(session, runtime, clock, rep, customer, "", [("语音.silk", b"\x02#!SILK_V3")])
    assert follow_up.summary == "语音跟进"
    assert len(_recordings(session, follow_up.id)) == 1


def test_a_recording_is_claimed_once_and_its_job_starts_after_the_commit(
    session, runtime, clock, rep
):
    customer = make_customer(session, rep, clock())
    follow_up = followups.log_follow_up(
        session,
        actor=Actor.of(rep),
        customer_id=customer.id,
        method="电话",
        summary="",
        now=clock(),
        store=runtime.store,
        max_attachment_bytes=10**6,
        uploads=[followups.Upload("通话.amr", AMR)],
    )
    session.flush()
    recording = session.scalars(select(Recording)).one()
    assert after_commit.take(session) == {(after_commit.TRANSCRIBE, recording.id)}
    session.commit()
    assert follow_up.id == recording.follow_up_id

    assert recordings.claim(session, recording.id, clock()) is not None
    assert recordings.claim(session, recording.id, clock()) is None  # held by the first claim
    session.commit()
    session.expire_all()
    assert (recording.status, recording.attempts) == ("running", 1)


def test_the_sweep_requeues_a_stalled_recording_then_fails_it_after_the_last_attempt(
    session, runtime, clock, rep
):
    customer = make_customer(session, rep, clock(), stage="意向")
    follow_up = _log(
        session,
        runtime,
        clock,
        rep,
        customer,
        "已发送正式报价单",
        [("通话.amr", AMR), ("报价.pdf", PDF)],
    )
    (recording,) = _recordings(session, follow_up.id)
    for attempt in range(1, recordings.MAX_ATTEMPTS + 1):
        assert recordings.claim(session, recording.id, clock()).attempt == attempt
        session.commit()
        clock.advance(seconds=LEASE.total_seconds() - 1)
        assert recordings.requeue_stalled(session, clock(), LEASE) == recordings.SweepResult(
            0, 0, 0
        )
        after_commit.take(session)
        clock.advance(seconds=2)  # the worker died: the lease has passed
        result = recordings.requeue_stalled(session, clock(), LEASE)
        jobs = after_commit.take(session)
        session.commit()
        session.expire_all()
        if attempt < recordings.MAX_ATTEMPTS:
            assert result == recordings.SweepResult(requeued=1, failed=0, restarted=0)
            assert jobs == {(after_commit.TRANSCRIBE, recording.id)}
            assert recording.status == "queued"
            assert session.get(Customer, customer.id).stage == "意向"
    assert result == recordings.SweepResult(requeued=0, failed=1, restarted=0)
    assert (recording.status, recording.reason) == ("failed", recordings.STALLED_REASON)
    assert session.get(Customer, customer.id).stage == "报价"  # the triggers ran on the text
    assert _quote_moves(session, customer.id) == 1


def test_the_sweep_starts_the_job_again_for_a_recording_queued_too_long(
    session, runtime, clock, rep
):
    customer = make_customer(session, rep, clock())
    follow_up = _log(session, runtime, clock, rep, customer, "", [("通话.amr", AMR)])
    (recording,) = _recordings(session, follow_up.id)
    clock.advance(seconds=LEASE.total_seconds() + 1)  # Redis lost the job the commit started
    result = recordings.requeue_stalled(session, clock(), LEASE)
    assert result == recordings.SweepResult(requeued=0, failed=0, restarted=1)
    assert after_commit.take(session) == {(after_commit.TRANSCRIBE, recording.id)}
    session.commit()
    session.expire_all()
    assert recording.status == "queued"
