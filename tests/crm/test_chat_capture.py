"""Chat capture: archived WeCom messages stored once and turned into one follow-up per window."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, true

from crm import after_commit, chat_capture, recordings
from crm.chat_capture import ConsentAnswer, SkipReason
from crm.contacts import ContactInfo
from crm.followups import StoredFile
from crm.rules import conditions, grading, timers
from crm.rules.facts import BUILT_IN
from models import (
    ArchiveMessage,
    Attachment,
    ChatWindow,
    ContactEvent,
    Customer,
    FollowUp,
    OutboxMessage,
    Recording,
    Task,
)
from models.chat import ArchiveStatus
from tests.archive import CUSTOMER_ID, Chat
from tests.factories import make_company, make_customer


@pytest.fixture
def company(session):
    return make_company(session)


@pytest.fixture
def rep(company):
    return company.reps[0][0]


@pytest.fixture
def customer(session, rep, clock):
    customer = make_customer(session, rep, clock(), name="王建国", stage="意向")
    customer.external_userid = CUSTOMER_ID
    session.commit()
    return customer


def store(session, messages, clock, origin="file", media=None):
    result = chat_capture.store_messages(session, messages, origin=origin, now=clock(), media=media)
    session.commit()
    return result


def fetched_voice(message):
    """What the SDK puller keeps of a voice message's bytes (unit tests never open the file)."""
    msgid = message["msgid"]
    return StoredFile(f"语音_{msgid}.amr", "audio/amr", 4000, "ab" * 32, f"voice/{msgid}.amr")


def store_with_voices(session, messages, clock):
    """Store as the SDK puller does: each voice message with its fetched bytes."""
    voices = {m["msgid"]: fetched_voice(m) for m in messages if m["msgtype"] == "voice"}
    return store(session, messages, clock, origin="sdk", media=voices)


def recording_of(session, message):
    return session.scalar(
        select(Recording).join(ArchiveMessage).where(ArchiveMessage.msgid == message["msgid"])
    )


def window_of(session, message):
    return session.scalar(
        select(ChatWindow).join(ArchiveMessage).where(ArchiveMessage.msgid == message["msgid"])
    )


def capture_all(session, clock, **kwargs):
    """Capture until nothing is left, committing each batch as the job does."""
    total = chat_capture.CaptureResult()
    while True:
        result = chat_capture.capture(session, now=clock(), **kwargs)
        session.commit()
        total.captured += result.captured
        total.skipped.update(result.skipped)
        total.recalled += result.recalled
        total.follow_ups += result.follow_ups
        total.withdrawn += result.withdrawn
        total.windows_closed += result.windows_closed
        total.contacts_created += result.contacts_created
        if not result.more:
            return total


def chat_follow_ups(session, customer_id):
    return session.scalars(
        select(FollowUp).where(FollowUp.customer_id == customer_id, FollowUp.source == "chat")
    ).all()


def test_a_quote_conversation_imported_twice_makes_one_follow_up_and_moves_the_stage(
    session, company, rep, customer, clock
):
    chat = Chat(clock() - timedelta(days=2))
    messages = chat.quote(rep.wecom_userid)
    first = store(session, messages, clock)
    again = store(session, messages, clock)
    assert (first.stored, first.duplicates, first.rejected) == (3, 0, 0)
    assert (again.stored, again.duplicates) == (0, 3)

    result = capture_all(session, clock)
    assert (result.captured, result.follow_ups, result.windows_closed) == (3, 1, 1)
    assert capture_all(session, clock).follow_ups == 0  # a second run writes nothing

    [follow_up] = chat_follow_ups(session, customer.id)
    assert follow_up.method == "企微会话"
    assert follow_up.author_id == rep.id
    assert (
        follow_up.happened_at == datetime.fromtimestamp(messages[-1]["msgtime"] / 1000).astimezone()
    )
    assert follow_up.summary.splitlines()[1:] == [
        f"{rep.name}：王总您好，已发送正式报价单，请查收",
        f"{rep.name}：[文件] 瓷砖报价单-2026.pdf",
        "客户：收到，我看一下",
    ]
    assert follow_up.capture["categories"] == ["报价"]
    assert follow_up.capture["files"] == ["瓷砖报价单-2026.pdf"]
    session.refresh(customer)
    assert customer.stage == "报价"
    manager = company.managers[0]
    [task] = session.scalars(select(Task).where(Task.customer_id == customer.id)).all()
    assert task.assignee_id == manager.id and task.title == "审核报价：王建国"
    assert customer.last_customer_message_at == follow_up.happened_at


def test_small_talk_and_substring_traps_make_no_follow_up(session, rep, customer, clock):
    chat = Chat(clock() - timedelta(days=1))
    me, them = rep.wecom_userid, CUSTOMER_ID
    store(
        session,
        [
            chat.text(me, [them], "王总早上好，周末愉快"),
            chat.text(them, [me], "我先汇报价格给领导"),
            chat.text(me, [them], "这个方案符合同行业标准"),
            chat.text(them, [me], "还没报价吧？"),
        ],
        clock,
    )
    result = capture_all(session, clock)
    assert (result.captured, result.follow_ups, result.windows_closed) == (4, 0, 1)
    assert chat_follow_ups(session, customer.id) == []


def test_a_window_without_keywords_still_keeps_the_customer_out_of_the_pool(
    session, rep, customer, clock
):
    customer.created_at = customer.last_follow_up_at = clock() - timedelta(days=40)
    session.commit()
    chat = Chat(clock() - timedelta(days=2))
    store(session, [chat.text(rep.wecom_userid, [CUSTOMER_ID], "王总，最近工地忙吗")], clock)
    capture_all(session, clock)
    session.refresh(customer)
    assert customer.last_follow_up_at == chat.at.replace(microsecond=chat.at.microsecond)

    timers.sweep(session, now=clock())
    session.commit()
    session.refresh(customer)
    assert customer.owner_id == rep.id  # the 30-day release did not fire


def test_only_the_customer_writing_does_not_count_as_contact(session, rep, customer, clock):
    before = clock() - timedelta(days=40)
    customer.last_follow_up_at = before
    session.commit()
    chat = Chat(clock() - timedelta(days=2))
    store(session, [chat.text(CUSTOMER_ID, [rep.wecom_userid], "在吗")], clock)
    capture_all(session, clock)
    session.refresh(customer)
    assert customer.last_follow_up_at == before
    assert customer.last_customer_message_at is not None


def test_messages_half_an_hour_apart_make_two_windows(session, rep, customer, clock):
    chat = Chat(clock() - timedelta(days=1))
    me = rep.wecom_userid
    store(
        session,
        [
            chat.text(me, [CUSTOMER_ID], "合同我今天发给您"),
            chat.text(me, [CUSTOMER_ID], "定金收到了，谢谢", gap_s=31 * 60),
        ],
        clock,
    )
    result = capture_all(session, clock)
    assert (result.windows_closed, result.follow_ups) == (2, 2)
    assert sorted(f.capture["categories"][0] for f in chat_follow_ups(session, customer.id)) == [
        "合同",
        "定金",
    ]


def test_a_window_stays_open_until_its_half_hour_has_passed(session, rep, customer, clock):
    chat = Chat(clock() - timedelta(minutes=10))
    store(session, [chat.text(rep.wecom_userid, [CUSTOMER_ID], "合同已经盖章寄出")], clock)
    assert capture_all(session, clock).follow_ups == 0
    clock.advance(minutes=25)
    assert capture_all(session, clock).follow_ups == 1


def test_a_recall_withdraws_its_capture(session, company, rep, customer, clock):
    chat = Chat(clock() - timedelta(days=1))
    me = rep.wecom_userid
    contract = chat.text(me, [CUSTOMER_ID], "合同我已经发到您邮箱")
    store(session, [chat.text(me, [CUSTOMER_ID], "王总您好"), contract], clock)
    assert capture_all(session, clock).follow_ups == 1
    [follow_up] = chat_follow_ups(session, customer.id)

    store(session, [chat.recall(me, [CUSTOMER_ID], contract)], clock)
    result = capture_all(session, clock)
    assert (result.recalled, result.withdrawn) == (1, 1)
    session.refresh(follow_up)
    assert follow_up.withdrawn_at == clock()
    recalled = session.scalar(
        select(ArchiveMessage).where(ArchiveMessage.msgid == contract["msgid"])
    )
    assert recalled.status == ArchiveStatus.RECALLED
    told = session.scalars(select(OutboxMessage.touser)).all()
    assert company.managers[0].wecom_userid in told


def test_a_recall_before_the_window_closes_keeps_the_recalled_text_out(
    session, rep, customer, clock
):
    chat = Chat(clock() - timedelta(days=1))
    me = rep.wecom_userid
    contract = chat.text(me, [CUSTOMER_ID], "合同我已经发到您邮箱")
    deposit = chat.text(me, [CUSTOMER_ID], "定金请转到公司账户")
    store(session, [contract, deposit, chat.recall(me, [CUSTOMER_ID], contract)], clock)
    capture_all(session, clock)
    [follow_up] = chat_follow_ups(session, customer.id)
    assert "合同" not in follow_up.summary
    assert follow_up.capture["categories"] == ["定金"]


def test_a_recall_stored_before_its_message_still_withdraws_it(session, rep, customer, clock):
    chat = Chat(clock() - timedelta(days=1))
    me = rep.wecom_userid
    contract = chat.text(me, [CUSTOMER_ID], "合同我已经发到您邮箱")
    store(session, [chat.recall(me, [CUSTOMER_ID], contract)], clock)
    capture_all(session, clock)
    store(session, [contract], clock)
    assert capture_all(session, clock).recalled == 1
    assert chat_follow_ups(session, customer.id) == []


def test_every_message_type_is_handled_and_skipped_ones_are_counted(
    session, company, rep, customer, clock
):
    chat = Chat(clock() - timedelta(days=1))
    me = rep.wecom_userid
    colleague = company.reps[0][1].wecom_userid
    location = {**chat._base(me, [CUSTOMER_ID], "location", "", 60), "location": {"title": "x"}}
    voice = chat.voice(CUSTOMER_ID, [me])
    store(
        session,
        [
            chat.mixed(CUSTOMER_ID, [me], ["货什么时候到货？", "看图"]),
            chat.image(me, [CUSTOMER_ID]),
            voice,
            location,
            chat.switch(me),
            chat.text(me, [colleague], "这个客户的报价单你看下"),  # members only
            chat.text("ghost", [CUSTOMER_ID], "报价单已发"),  # not one of our users
            chat.text(me, [CUSTOMER_ID, "wbBot0001"], "好的"),  # a bot beside the customer
        ],
        clock,
    )
    result = capture_all(session, clock)
    assert result.captured == 4
    assert dict(result.skipped) == {
        SkipReason.UNREAD_TYPE: 1,
        SkipReason.SWITCH: 1,
        SkipReason.INTERNAL: 1,
        SkipReason.UNKNOWN_MEMBER: 1,
    }
    [follow_up] = chat_follow_ups(session, customer.id)
    lines = follow_up.summary.splitlines()
    assert "客户：货什么时候到货？ 看图 [图片]" in lines
    assert f"{rep.name}：[图片]" in lines
    assert "客户：[语音]（无音频）" in lines  # an export file's voice: no bytes to transcribe
    assert session.scalar(select(func.count()).select_from(Recording)) == 0


def test_malformed_lines_are_rejected_with_their_reason(session, clock):
    chat = Chat(clock() - timedelta(days=1))
    good = chat.text("rep00", [CUSTOMER_ID], "你好")
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"msgid": "x1", "action": "send"}),  # no msgtype, from or msgtime
        json.dumps({**good, "msgid": "x2", "action": "forward"}),
        json.dumps([1, 2]),
        "",
        json.dumps({**good, "msgid": "x3", "text": {"content": "a\u0000b"}}),
    ]
    result = store(session, chat_capture.read_export(lines), clock)
    assert (result.stored, result.duplicates, result.rejected) == (1, 0, 5)
    assert [line for line, _ in result.rejections] == [2, 3, 4, 5, 7]
    assert result.rejections[1] == (3, "no msgtype")


def test_a_group_chat_maps_to_the_customer_whose_rep_is_in_the_room(
    session, company, rep, customer, clock
):
    other_rep = company.reps[1][0]
    other = make_customer(session, other_rep, clock(), name="李四")
    other.external_userid = "wmOtherCustomer"
    stranger = "wmStranger0001"
    session.commit()
    chat = Chat(clock() - timedelta(days=1))
    room = "wrProjectRoom01"
    people = [rep.wecom_userid, CUSTOMER_ID, other.external_userid, stranger]

    def to(sender):
        return [p for p in people if p != sender]

    store(
        session,
        [
            chat.text(rep.wecom_userid, to(rep.wecom_userid), "合同明天寄出", room=room),
            chat.text(stranger, to(stranger), "好的", room=room),
            chat.text("manager1", ["manager0"], "合同呢", room="wrInternalRoom"),
        ],
        clock,
    )
    result = capture_all(session, clock)
    assert result.skipped == {SkipReason.INTERNAL: 1}
    [follow_up] = chat_follow_ups(session, customer.id)
    assert follow_up.summary.splitlines()[1:] == [f"{rep.name}：合同明天寄出", "客户：好的"]
    assert chat_follow_ups(session, other.id) == []  # its rep is not in the room
    window = session.scalar(select(ChatWindow))
    assert window.roomid == room


def test_a_group_without_our_customers_is_skipped(session, rep, clock):
    chat = Chat(clock() - timedelta(days=1))
    store(
        session,
        [chat.text(rep.wecom_userid, ["wmNobody"], "合同", room="wrSomewhere")],
        clock,
    )
    assert capture_all(session, clock).skipped == {SkipReason.NO_CUSTOMER: 1}


def test_a_pair_that_refused_archiving_is_not_captured(session, rep, customer, clock):
    chat = Chat(clock() - timedelta(days=1))
    store(session, chat.quote(rep.wecom_userid), clock)
    needs = chat_capture.needs_from_wecom(session, now=clock())
    assert needs.consent_pairs == [(rep.wecom_userid, CUSTOMER_ID)]
    refused = [ConsentAnswer(rep.wecom_userid, CUSTOMER_ID, agreed=False)]
    result = capture_all(session, clock, consents=refused, assume_consent=False)
    assert result.skipped == {SkipReason.CONSENT: 3}
    assert chat_follow_ups(session, customer.id) == []
    assert chat_capture.needs_from_wecom(session, now=clock()).consent_pairs == []


def test_without_an_answer_a_pair_counts_as_agreed_only_when_told_so(session, rep, customer, clock):
    chat = Chat(clock() - timedelta(days=1))
    store(session, chat.quote(rep.wecom_userid), clock)
    assert capture_all(session, clock, assume_consent=False).skipped == {SkipReason.CONSENT: 3}


def test_an_unknown_contact_becomes_the_reps_customer(session, rep, clock):
    chat = Chat(clock() - timedelta(days=1))
    newcomer = "wmNewcomer0001"
    store(session, [chat.text(newcomer, [rep.wecom_userid], "你好，想问下瓷砖报价")], clock)
    needs = chat_capture.needs_from_wecom(session, now=clock())
    assert needs.contacts == [(newcomer, rep.wecom_userid)]
    profiles = {newcomer: ContactInfo(name="赵先生", corp_name="赵氏装饰")}
    result = capture_all(session, clock, contact_profiles=profiles)
    assert result.contacts_created == 1
    made = session.scalar(select(Customer).where(Customer.external_userid == newcomer))
    assert (made.name, made.company, made.owner_id) == ("赵先生", "赵氏装饰", rep.id)
    assert session.scalar(select(func.count()).select_from(ContactEvent)) == 1
    assert [f.customer_id for f in chat_follow_ups(session, made.id)] == [made.id]


def test_risk_words_of_the_customer_tell_the_manager_once(session, company, rep, customer, clock):
    chat = Chat(clock() - timedelta(days=1))
    me = rep.wecom_userid
    store(
        session,
        [
            chat.text(CUSTOMER_ID, [me], "上次的砖有质量问题，我要投诉"),
            chat.text(CUSTOMER_ID, [me], "再不处理就退货"),
            chat.text(me, [CUSTOMER_ID], "投诉我们马上处理"),
        ],
        clock,
    )
    capture_all(session, clock)
    capture_all(session, clock)
    sent = session.scalars(select(OutboxMessage)).all()
    assert [m.touser for m in sent] == [company.managers[0].wecom_userid]
    said = sent[0].content["description"].split("\n")[0].split("：")[1]
    assert sorted(said.split("、")) == sorted(["质量问题", "投诉", "退货"])


def test_the_sdk_cursor_only_moves_forward(session, clock):
    assert chat_capture.cursor(session).seq == 0
    chat_capture.advance_cursor(session, 120, clock())
    chat_capture.advance_cursor(session, 80, clock())
    session.commit()
    row = chat_capture.cursor(session)
    assert (row.seq, row.last_pull_at) == (120, clock())


SILENT_AFTER_QUOTE = {
    "rules": [
        {
            "name": "报价后客户沉默",
            "when": {"fact": "stage", "op": "==", "value": "报价"},
            "clock": "customer_message",
            "steps": [{"after_days": 7, "do": [{"action": "notify", "to": "owner", "text": "x"}]}],
        }
    ]
}


def test_a_customer_silent_after_a_quote_is_seen_from_the_chat(session, rep, customer, clock):
    chat = Chat(clock())
    store(session, chat.quote(rep.wecom_userid), clock)  # the quote, answered at once
    clock.advance(minutes=40)
    capture_all(session, clock)
    session.refresh(customer)
    assert customer.stage == "报价"
    clock.advance(days=10)  # and not a word since

    def silent_days_over(days):
        return conditions.evaluate(
            {"fact": "days_since_customer_message", "op": ">", "value": days},
            BUILT_IN,
            grading.subject_of(session, customer, clock()),
        )

    assert silent_days_over(9) and not silent_days_over(11)
    counts, _ = timers.preview(session, document=SILENT_AFTER_QUOTE, now=clock(), scope=true())
    assert counts == {"报价后客户沉默#1": 1}
    customer.last_customer_message_at = clock() - timedelta(days=2)  # the customer wrote again
    session.flush()
    counts, _ = timers.preview(session, document=SILENT_AFTER_QUOTE, now=clock(), scope=true())
    assert counts == {}


def test_a_voice_message_holds_its_window_until_transcribed_then_its_words_are_captured(
    session, rep, customer, clock
):
    chat = Chat(clock() - timedelta(days=1))
    voice = chat.voice(CUSTOMER_ID, [rep.wecom_userid])
    store_with_voices(session, [voice], clock)
    result = capture_all(session, clock)
    assert (result.captured, result.windows_closed, result.follow_ups) == (1, 1, 0)
    recording = recording_of(session, voice)
    assert recording.status == "queued" and recording.storage_key == f"voice/{voice['msgid']}.amr"
    assert window_of(session, voice).settled_at is None
    assert capture_all(session, clock).follow_ups == 0  # still waiting for the transcript

    assert recordings.finish(session, recording.id, "合同我已经签好了，明天寄回", clock())
    assert (after_commit.CAPTURE,) in session.info[after_commit.KEY]  # the window settles soon
    session.commit()
    assert capture_all(session, clock).follow_ups == 1
    assert capture_all(session, clock).follow_ups == 0  # exactly one, however often it runs

    [follow_up] = chat_follow_ups(session, customer.id)
    assert follow_up.summary.splitlines()[1:] == ["客户：[语音] 合同我已经签好了，明天寄回"]
    assert follow_up.capture["categories"] == ["合同"]
    assert follow_up.transcript == "合同我已经签好了，明天寄回"
    session.refresh(recording)
    attachment = session.get(Attachment, recording.attachment_id)
    assert recording.follow_up_id == follow_up.id == attachment.follow_up_id
    assert attachment.storage_key == recording.storage_key
    assert window_of(session, voice).settled_at == clock()


def test_a_failed_voice_message_lets_its_window_settle_without_its_words(
    session, rep, customer, clock
):
    chat = Chat(clock() - timedelta(days=1))
    me = rep.wecom_userid
    contract = chat.text(me, [CUSTOMER_ID], "合同今天寄出")
    voice = chat.voice(CUSTOMER_ID, [me])
    store_with_voices(session, [contract, voice], clock)
    capture_all(session, clock)
    assert chat_follow_ups(session, customer.id) == []

    assert recordings.fail(session, recording_of(session, voice).id, "无法识别", clock())
    session.commit()
    assert capture_all(session, clock).follow_ups == 1
    [follow_up] = chat_follow_ups(session, customer.id)
    assert follow_up.summary.splitlines()[1:] == [
        f"{rep.name}：合同今天寄出",
        "客户：[语音]（未能转写）",
    ]
    assert follow_up.transcript is None
    assert recording_of(session, voice).follow_up_id == follow_up.id


def test_a_voice_message_without_its_bytes_holds_nothing(session, rep, customer, clock):
    chat = Chat(clock() - timedelta(days=1))
    me = rep.wecom_userid
    store(
        session, [chat.voice(CUSTOMER_ID, [me]), chat.text(me, [CUSTOMER_ID], "定金收到了")], clock
    )
    assert capture_all(session, clock).follow_ups == 1
    assert session.scalar(select(func.count()).select_from(Recording)) == 0
    [follow_up] = chat_follow_ups(session, customer.id)
    assert "客户：[语音]（无音频）" in follow_up.summary.splitlines()


def test_settling_windows_is_bounded_and_says_when_there_is_more(session, rep, customer, clock):
    chat = Chat(clock() - timedelta(days=1))
    me = rep.wecom_userid
    contract = chat.text(me, [CUSTOMER_ID], "合同今天寄出")
    first = chat.voice(CUSTOMER_ID, [me])
    deposit = chat.text(me, [CUSTOMER_ID], "定金请转到公司账户", gap_s=3600)
    second = chat.voice(CUSTOMER_ID, [me])
    store_with_voices(session, [contract, first, deposit, second], clock)
    assert capture_all(session, clock).windows_closed == 2
    for voice in (first, second):
        assert recordings.finish(session, recording_of(session, voice).id, "", clock())
    session.commit()

    runs = []
    for _ in range(3):
        result = chat_capture.capture(session, now=clock(), limit=1)
        session.commit()
        runs.append((result.follow_ups, result.more))
    assert runs == [(1, True), (1, True), (0, False)]
    summaries = [f.summary for f in chat_follow_ups(session, customer.id)]
    assert all("客户：[语音]（无内容）" in summary.splitlines() for summary in summaries)


def test_a_recalled_voice_message_neither_holds_nor_joins_its_window(session, rep, customer, clock):
    chat = Chat(clock() - timedelta(days=1))
    me = rep.wecom_userid
    contract = chat.text(me, [CUSTOMER_ID], "合同今天寄出")
    voice = chat.voice(CUSTOMER_ID, [me])
    store_with_voices(session, [contract, voice], clock)
    capture_all(session, clock)
    store(session, [chat.recall(CUSTOMER_ID, [me], voice)], clock)
    assert capture_all(session, clock).follow_ups == 1
    [follow_up] = chat_follow_ups(session, customer.id)
    assert "语音" not in follow_up.summary

    # Its recording may still finish: that changes nothing.
    recording = recording_of(session, voice)
    assert recordings.finish(session, recording.id, "定金已经转过去了", clock())
    session.commit()
    assert capture_all(session, clock).follow_ups == 0
    session.refresh(follow_up)
    assert "定金" not in follow_up.summary and follow_up.transcript is None
    assert recording_of(session, voice).follow_up_id is None


def test_a_voice_message_whose_worker_keeps_stopping_fails_and_its_window_settles(
    session, rep, customer, clock
):
    chat = Chat(clock() - timedelta(days=1))
    me = rep.wecom_userid
    contract = chat.text(me, [CUSTOMER_ID], "合同今天寄出")
    voice = chat.voice(CUSTOMER_ID, [me])
    store_with_voices(session, [contract, voice], clock)
    capture_all(session, clock)
    recording_id = recording_of(session, voice).id
    lease = timedelta(minutes=40)
    sweeps = []
    for _ in range(recordings.MAX_ATTEMPTS):
        assert recordings.claim(session, recording_id, clock()) is not None
        session.commit()
        clock.advance(minutes=41)  # the worker stopped: the sweep finds it past the lease
        result = recordings.requeue_stalled(session, clock(), lease)
        session.commit()
        sweeps.append((result.requeued, result.failed))
    assert sweeps == [(1, 0), (1, 0), (0, 1)]

    assert capture_all(session, clock).follow_ups == 1
    [follow_up] = chat_follow_ups(session, customer.id)
    assert "客户：[语音]（未能转写）" in follow_up.summary.splitlines()
