"""Generated WeCom chats: WeCom's archive format per message type, deterministic, the keyword
mix the capture benchmark rests on, and labels that agree with jieba tokens."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import jieba
import pytest

from synthetic import chats
from synthetic.chat_words import CATEGORY_WORDS, CUSTOMER, REP, RISK_WORDS, LineKind

REPS = {f"rep{r:02d}": [f"wm{r:02d}{c:04d}" for c in range(40)] for r in range(12)}
BASE = {"msgid", "action", "from", "tolist", "roomid", "msgtime", "msgtype"}
BODIES = {
    "text": {"content"},
    "image": {"md5sum", "filesize", "sdkfileid"},
    "voice": {"md5sum", "voice_size", "play_length", "sdkfileid"},
    "file": {"filename", "fileext", "filesize", "md5sum", "sdkfileid"},
    "mixed": {"item"},
    "revoke": {"pre_msgid"},
}
NEGATIONS = ("还没", "没有", "未", "不", "没")
ALL_CATEGORY_WORDS = tuple(w for words in CATEGORY_WORDS.values() for w in words)


NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def archive():
    return chats.generate(REPS, start=NOW - timedelta(days=7), messages=20_000, seed=5)


def _at(message):
    return message.get("msgtime", message.get("time"))


def test_every_message_has_wecoms_fields_for_its_type(archive):
    start_ms = int((NOW - timedelta(days=7)).timestamp() * 1000)
    end_ms = int(NOW.timestamp() * 1000)
    seen = set()
    for m in archive.messages:
        if m["action"] == "switch":
            assert set(m) == {"msgid", "action", "time", "user"}
            assert m["user"] in REPS
            seen.add("switch")
            continue
        kind = m["msgtype"]
        seen.add(kind)
        assert set(m) == BASE | {kind}, m
        assert set(m[kind]) == BODIES[kind], m
        assert m["action"] == ("recall" if kind == "revoke" else "send")
        assert start_ms <= m["msgtime"] < end_ms
        assert m["from"] not in m["tolist"] and m["tolist"]
        assert m["roomid"] == "" or (m["roomid"].startswith("wr") and len(m["tolist"]) == 2)
    assert seen == {*BODIES, "switch"}


def test_messages_come_in_time_order_each_msgid_once(archive):
    times = [_at(m) for m in archive.messages]
    assert times == sorted(times)
    msgids = [m["msgid"] for m in archive.messages]
    assert len(set(msgids)) == len(msgids) == 20_000


def test_the_same_seed_gives_the_same_messages_another_seed_others():
    def dump(seed):
        archive = chats.generate(REPS, start=NOW, days=2, seed=seed)
        return json.dumps(archive.messages, ensure_ascii=False)

    assert dump(3) == dump(3)
    assert dump(3) != dump(4)


def test_about_fifteen_percent_of_messages_carry_a_captured_keyword(archive):
    assert 0.13 <= archive.keyword_share <= 0.17
    week = chats.generate(REPS, start=NOW, days=7, seed=9)
    assert 0.12 <= week.keyword_share <= 0.18
    counts = {kind: len(archive.msgids_of(kind)) for kind in LineKind}
    assert counts[LineKind.TRAP] > 0.02 * len(archive.messages)
    assert counts[LineKind.NEGATED] > 0.01 * len(archive.messages)
    assert counts[LineKind.RISK] > 0.005 * len(archive.messages)


def test_labels_match_the_words_in_each_line():
    for said in (REP, CUSTOMER):
        for kind, lines in said.items():
            for line in lines:
                text = line.text
                category_words = [w for w in ALL_CATEGORY_WORDS if w in text]
                risks = [w for w in RISK_WORDS if w in text]
                if kind is LineKind.SMALL_TALK:
                    assert not category_words and not risks, text
                elif kind in (LineKind.KEYWORD, LineKind.NEGATED):
                    for category in line.categories:
                        assert any(w in text for w in CATEGORY_WORDS[category]), text
                    assert (kind is LineKind.NEGATED) == any(n in text for n in NEGATIONS), text
                elif kind is LineKind.RISK:
                    assert risks == list(line.risks) and not category_words, text
                else:
                    assert category_words and not risks, text


def test_keywords_are_whole_jieba_tokens_and_traps_are_not():
    # As the keyword matcher loads its dictionary: every word one token of a private tokenizer.
    tokenizer = jieba.Tokenizer()
    for word in (*ALL_CATEGORY_WORDS, *RISK_WORDS):
        tokenizer.add_word(word)
    for said in (REP, CUSTOMER):
        for kind, lines in said.items():
            for line in lines:
                tokens = set(tokenizer.lcut(line.text.format_map(defaultdict(lambda: "瓷砖"))))
                if kind is LineKind.TRAP:
                    assert not tokens & set(ALL_CATEGORY_WORDS), (line.text, tokens)
                for category in line.categories:
                    assert tokens & set(CATEGORY_WORDS[category]), (line.text, tokens)


def test_mixed_items_are_json_strings_inside_the_message(archive):
    mixed = [m for m in archive.messages if m.get("msgtype") == "mixed"]
    assert mixed
    for m in mixed:
        items = m["mixed"]["item"]
        assert [i["type"] for i in items] == ["text", "image"]
        assert all(isinstance(i["content"], str) for i in items)
        text, image = (json.loads(i["content"]) for i in items)
        assert text == {"content": archive.texts[m["msgid"]].text}
        assert set(image) == BODIES["image"]


def test_recalls_withdraw_an_earlier_message_of_the_same_conversation_and_sender(archive):
    by_id = {m["msgid"]: m for m in archive.messages}
    conversation_of = {i: c for c in archive.conversations for i in c.msgids}
    recalls = [m for m in archive.messages if m["action"] == "recall"]
    assert recalls
    for recall in recalls:
        target = by_id[recall["revoke"]["pre_msgid"]]
        assert archive.recalls[recall["msgid"]] == target["msgid"]
        assert conversation_of[recall["msgid"]] is conversation_of[target["msgid"]]
        assert target["from"] == recall["from"] and target["action"] == "send"
        assert 0 < recall["msgtime"] - target["msgtime"] <= 120_000  # WeCom's 2 minutes


def test_a_quote_conversation_sends_the_sentence_then_the_pdf(archive):
    quotes = archive.quote_conversations
    assert quotes
    by_id = {m["msgid"]: m for m in archive.messages}
    for conversation in quotes:
        assert conversation.quote is not None
        text_id, file_id = conversation.quote
        text, pdf = by_id[text_id], by_id[file_id]
        assert "已发送正式报价单" in text["text"]["content"]
        assert conversation.msgids.index(file_id) == conversation.msgids.index(text_id) + 1
        assert pdf["file"]["fileext"] == "pdf" and pdf["file"]["filename"].startswith("报价单_")
        assert text["from"] == pdf["from"] == conversation.rep
        assert 0 < pdf["msgtime"] - text["msgtime"] < 60_000


def test_quotes_go_only_to_customers_that_may_be_quoted():
    quoting = {e for externals in REPS.values() for e in externals[:10]}
    archive = chats.generate(REPS, start=NOW, days=14, seed=2, quoting=quoting)
    assert archive.quote_conversations
    assert {c.external_userid for c in archive.quote_conversations} <= quoting


def test_a_conversation_is_one_capture_window_and_one_a_day_per_customer(archive):
    by_id = {m["msgid"]: m for m in archive.messages}
    days = set()
    for conversation in archive.conversations:
        times = [by_id[i]["msgtime"] for i in conversation.msgids]
        assert max(times) - min(times) < 25 * 60_000
        day = (conversation.rep, conversation.external_userid, min(times) // 86_400_000)
        assert day not in days
        days.add(day)
        assert {by_id[i]["roomid"] for i in conversation.msgids} == {conversation.roomid}
        members = {by_id[i]["from"] for i in conversation.msgids}
        assert members <= set(conversation.members)
    assert any(c.roomid for c in archive.conversations)


def test_write_jsonl_writes_one_message_a_line(archive, tmp_path):
    path = chats.write_jsonl(archive.messages[:50], tmp_path / "archive" / "week.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == archive.messages[:50]
    assert "\\u" not in path.read_text(encoding="utf-8")  # Chinese as itself, not escaped


def test_generating_refuses_a_naive_start_and_reps_without_customers():
    with pytest.raises(ValueError):
        chats.generate(REPS, start=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError):
        chats.generate({"rep00": []}, start=NOW)
