"""The real bundled model: English speech comes back word for word in every upload format,
silence comes back empty, and what cannot be decoded is refused with its Chinese reason."""

from __future__ import annotations

import random
import re
import threading

import pytest

from speech.audio import AudioRejected
from speech.transcribe import Transcriber, shared_transcriber
from tests import audio


def words(text: str) -> list[str]:
    """The words of a sentence, case and punctuation aside."""
    return re.findall(r"[a-z']+", text.lower())


@pytest.fixture(scope="module")
def call_back_wav() -> bytes:
    return audio.speech_wav(audio.CALL_BACK)


def test_english_speech_comes_back_word_for_word_with_the_language_detected(detecting):
    transcript = detecting.transcribe(audio.speech_wav(audio.SIGNED))

    assert words(transcript.text) == words(audio.SIGNED)
    assert transcript.language == "en"
    assert (transcript.segments_kept, transcript.segments_dropped) == (1, 0)
    assert 2.5 < transcript.duration_seconds < 4.5


@pytest.mark.parametrize("kind", ["mp3", "ogg", "m4a", "amr", "silk"])
def test_every_upload_format_transcribes_the_same_words(english, call_back_wav, kind):
    data = audio.silk(call_back_wav) if kind == "silk" else audio.encode(call_back_wav, kind)

    assert words(english.transcribe(data).text) == words(audio.CALL_BACK)


@pytest.mark.parametrize("transcriber", ["detecting", "chinese"])
def test_silence_gives_an_empty_transcript_not_invented_text(request, transcriber):
    transcript = request.getfixturevalue(transcriber).transcribe(audio.silence_wav(5))

    assert transcript.text == ""
    assert transcript.segments_kept == 0
    assert transcript.duration_seconds == 5.0


def test_a_chinese_transcriber_is_told_the_language(chinese):
    """The production default: language "zh" whatever Whisper would have guessed."""
    assert chinese.transcribe(audio.speech_wav(audio.SIGNED)).language == "zh"


def test_a_corrupt_file_is_refused_with_its_chinese_reason(detecting):
    corrupt = b"ID3\x04\x00\x00\x00\x00\x00\x00" + random.Random(5).randbytes(8000)

    with pytest.raises(AudioRejected) as refused:
        detecting.transcribe(corrupt)

    assert (refused.value.code, refused.value.message) == (
        "corrupt_audio",
        "音频文件已损坏或没有声音数据，无法识别",
    )


def test_the_shared_transcriber_is_loaded_once_per_process_whatever_the_threads(
    speech_settings, monkeypatch
):
    monkeypatch.setattr("speech.transcribe._shared", None)  # this test's process-wide instance
    got: list[Transcriber] = []
    threads = [
        threading.Thread(target=lambda: got.append(shared_transcriber(speech_settings)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(got) == 3 and got[0] is got[1] is got[2]
    assert got[0].language is None  # WECRM_WHISPER_LANGUAGE=auto
