"""A voice message to the app becomes a follow-up: through the real callback, the fake WeCom's
media/get, a real RQ worker on the transcription queue and the real speech model; and, without
the model, what a transcript does as the member's `#跟进#` command (bot/voice.py)."""

from __future__ import annotations

from rq import SimpleWorker
from sqlalchemy import select

from bot import voice
from crm import recordings
from models import Attachment, FollowUp, InboundMessage, OutboxMessage, Recording
from tests.audio import encode, speech_wav
from tests.factories import make_company, make_customer
from workers import inbound as inbound_jobs
from workers import queues

SAID = "Wang. The customer signed the contract this morning."


def _transcribe(runtime):
    SimpleWorker([queues.TRANSCRIPTION], connection=runtime.redis).work(burst=True)


def _follow_ups(session, customer):
    session.rollback()  # a fresh snapshot: the workers committed meanwhile
    return session.scalars(select(FollowUp).where(FollowUp.customer_id == customer.id)).all()


def test_a_voice_message_naming_a_customer_ends_as_a_follow_up_with_its_audio(
    session, clock, runtime, wecom_side
):
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock(), name="Wang")
    session.commit()
    amr = encode(speech_wav(SAID), "amr")
    assert amr.startswith(b"#!AMR\n")

    assert wecom_side.send_voice(rep.wecom_userid, amr, "media-1") == [voice.RECEIVED_REPLY]
    assert _follow_ups(session, customer) == []

    _transcribe(runtime)
    wecom_side.work()  # the reply goes out through the outbox

    (follow_up,) = _follow_ups(session, customer)
    assert wecom_side.inbox(rep.wecom_userid)[-1] == (
        f"已记录对「Wang」的跟进（{follow_up.method}）。"
    )
    assert follow_up.source == "voice"
    # AMR-NB at 8 kHz costs the base model a word's ending now and then ("signs"): the words
    # that carry the meaning are checked, and that the summary is the transcript after the name.
    assert follow_up.transcript.startswith("Wang. The customer sign")
    assert "the contract this morning" in follow_up.transcript
    assert follow_up.summary == follow_up.transcript.removeprefix("Wang. ").rstrip(".")
    (attachment,) = session.scalars(
        select(Attachment).where(Attachment.follow_up_id == follow_up.id)
    ).all()
    assert (attachment.content_type, runtime.store.path(attachment.storage_key).read_bytes()) == (
        "audio/amr",
        amr,
    )
    session.rollback()
    (recording,) = session.scalars(select(Recording)).all()
    assert (recording.status, recording.follow_up_id, recording.attachment_id) == (
        "done",
        follow_up.id,
        attachment.id,
    )


def test_a_voice_message_wecom_will_not_give_asks_the_member_to_send_it_again(session, wecom_side):
    rep = make_company(session).reps[0][0]
    session.commit()
    fields = wecom_side.voice_fields(rep.wecom_userid, "expired-media")
    assert wecom_side._exchange(fields, rep.wecom_userid) == [voice.UNAVAILABLE_REPLY]
    assert session.scalars(select(Recording)).all() == []


def test_a_voice_message_waits_while_wecom_is_down_without_using_up_attempts(
    session, wecom_side, fake_wecom, clock, runtime
):
    rep = make_company(session).reps[0][0]
    session.commit()
    fake_wecom.add_media("media-2", b"#!AMR\n" + b"\x3c" * 64)
    fake_wecom.set_unreachable(True)
    assert wecom_side._exchange(wecom_side.voice_fields(rep.wecom_userid, "media-2"), "x") == []
    message = session.scalars(select(InboundMessage)).one()
    assert (message.status, message.attempts) == ("pending", 0)

    fake_wecom.set_unreachable(False)
    clock.advance(seconds=inbound_jobs.SWEEP_AFTER_SECONDS + 1)
    wecom_side.sweep()
    assert wecom_side.inbox(rep.wecom_userid) == [voice.RECEIVED_REPLY]
    session.rollback()
    (recording,) = session.scalars(select(Recording)).all()
    assert runtime.store.path(recording.storage_key).read_bytes() == b"#!AMR\n" + b"\x3c" * 64


# -- a transcript read as the member's command (no model) ---------------------------------------


def _heard(session, runtime, clock, member, transcript):
    """`member` sent a voice message that transcribed to `transcript`: the bot's reply."""
    recording = recordings.queue_voice_command(
        session, member=member, data=b"#!AMR\n\x3c", store=runtime.store, now=clock()
    )
    assert recordings.claim(session, recording.id, clock()) is not None
    assert voice.answer(
        session, recording.id, transcript, clock(), store=runtime.store, settings=runtime.settings
    )
    session.commit()
    assert not voice.answer(  # delivered twice: nothing runs again
        session, recording.id, transcript, clock(), store=runtime.store, settings=runtime.settings
    )
    (reply,) = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.dedupe_key == f"voice-reply:{recording.id}:{member.id}"
        )
    ).all()
    return reply.content["content"], session.get(Recording, recording.id)


def test_a_chinese_transcript_with_its_punctuation_logs_a_phone_follow_up(session, runtime, clock):
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock(), name="张三")
    reply, recording = _heard(session, runtime, clock, rep, "张三，电话，已发送正式报价单。")
    (follow_up,) = _follow_ups(session, customer)
    assert reply == "已记录对「张三」的跟进（电话）。"
    assert (follow_up.method, follow_up.summary) == ("电话", "已发送正式报价单")
    assert follow_up.transcript == "张三，电话，已发送正式报价单。"
    assert recording.follow_up_id == follow_up.id


def test_a_transcript_without_pauses_finds_the_longest_name_it_begins_with(session, runtime, clock):
    rep = make_company(session).reps[0][0]
    make_customer(session, rep, clock(), name="张三")
    longer = make_customer(session, rep, clock(), name="张三丰")
    reply, _ = _heard(session, runtime, clock, rep, "张三丰电话已发送正式报价单")
    (follow_up,) = _follow_ups(session, longer)
    assert reply == "已记录对「张三丰」的跟进（电话）。"
    assert (follow_up.method, follow_up.summary) == ("电话", "已发送正式报价单")


def test_a_name_run_into_words_that_are_no_method_keeps_them_all(session, runtime, clock):
    rep = make_company(session).reps[0][0]
    customer = make_customer(session, rep, clock(), name="Wang")
    reply, _ = _heard(session, runtime, clock, rep, "wang asked for samples")
    (follow_up,) = _follow_ups(session, customer)
    assert reply == "已记录对「Wang」的跟进（语音）。"
    assert (follow_up.method, follow_up.summary) == ("语音", "asked for samples")


def test_another_reps_customer_is_not_found_by_the_start_of_a_transcript(session, runtime, clock):
    company = make_company(session)
    rep, other = company.reps[0][0], company.reps[0][1]
    make_customer(session, other, clock(), name="赵六")
    reply, _ = _heard(session, runtime, clock, rep, "赵六电话已经报价了")
    assert "没有找到客户「赵六电话已经报价了」，或不在你的权限范围内。" in reply
    assert session.scalars(select(FollowUp)).all() == []


def test_several_matching_customers_come_back_with_the_transcript_to_pick_by_number(
    session, runtime, clock
):
    rep = make_company(session).reps[0][0]
    first = make_customer(session, rep, clock(), name="李四", company="甲公司")
    second = make_customer(session, rep, clock(), name="李四", company="乙公司")
    reply, recording = _heard(session, runtime, clock, rep, "李四 拜访 聊了新需求")
    assert reply.startswith("没听清要记到哪里。语音识别为：「李四 拜访 聊了新需求」\n")
    assert "「李四」对应多个客户，请用编号指定" in reply
    assert f"{first.id}　李四" in reply and f"{second.id}　李四" in reply
    assert _follow_ups(session, first) == _follow_ups(session, second) == []
    assert (recording.status, recording.follow_up_id) == ("done", None)


def test_a_transcript_naming_nobody_or_nothing_is_answered_not_logged(session, runtime, clock):
    rep = make_company(session).reps[0][0]
    reply, _ = _heard(session, runtime, clock, rep, "今天天气不错 我们下周再聊")
    assert reply == (
        "没听清要记到哪里。语音识别为：「今天天气不错 我们下周再聊」\n"
        "没有找到客户「今天天气不错」，或不在你的权限范围内。"
    )
    assert _heard(session, runtime, clock, rep, "")[0] == voice.HEARD_NOTHING_REPLY
    assert session.scalars(select(FollowUp)).all() == []


def test_a_voice_command_that_fails_tells_its_member_why(session, runtime, clock):
    rep = make_company(session).reps[0][0]
    recording = recordings.queue_voice_command(
        session, member=rep, data=b"junk", store=runtime.store, now=clock()
    )
    recordings.claim(session, recording.id, clock())
    assert recordings.fail(session, recording.id, "音频文件已损坏", clock())
    session.commit()
    (reply,) = session.scalars(select(OutboxMessage)).all()
    assert reply.content["content"] == recordings.VOICE_FAILED_REPLY.format(reason="音频文件已损坏")
    assert runtime.store.path(recording.storage_key).read_bytes() == b"junk"  # the file is kept
