"""The hallucination guards decide on one segment's numbers and text: no model needed."""

from __future__ import annotations

import pytest
from faster_whisper.transcribe import Segment

from speech.transcribe import CHINESE_PROMPT, is_hallucination


def segment(text: str, *, no_speech_prob: float = 0.1, avg_logprob: float = -0.3) -> Segment:
    # Whisper's compression_ratio is its 30 s window's: high here, as when a window holds a
    # sentence said twice, to show the guard does not read it.
    return Segment(
        id=1, seek=0, start=0.0, end=3.0, text=text, tokens=[], avg_logprob=avg_logprob,
        compression_ratio=2.6, no_speech_prob=no_speech_prob, words=None, temperature=0.0,
    )  # fmt: skip


def test_a_sentence_heard_with_confidence_is_kept_whatever_its_window_repeats():
    assert not is_hallucination(segment(" 已发送正式报价单，客户下周付定金。"))
    assert not is_hallucination(segment(" The customer signed the contract this morning."))


def test_a_segment_whisper_thinks_is_not_speech_and_is_unsure_of_is_dropped():
    assert is_hallucination(segment("嗯嗯。", no_speech_prob=0.8, avg_logprob=-1.3))
    # Either alone is not enough: quiet speech, or an unusual word.
    assert not is_hallucination(segment("客户说再考虑。", no_speech_prob=0.8, avg_logprob=-0.4))
    assert not is_hallucination(segment("客户说再考虑。", no_speech_prob=0.2, avg_logprob=-1.3))


def test_a_looping_segment_is_dropped():
    assert is_hallucination(segment("好的" * 30))


@pytest.mark.parametrize(
    "text",
    [
        "谢谢观看！",
        " 字幕由Amara.org社区提供",
        "Thank you for watching.",
        "謝謝觀看",
        CHINESE_PROMPT,
        "。",
    ],
)
def test_known_silence_phrases_the_prompt_echoed_and_bare_punctuation_are_dropped(text):
    assert is_hallucination(segment(text))
