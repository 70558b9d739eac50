"""Recordings into text: decode, Whisper with VAD, the hallucination guards, simplified Chinese.

`Transcriber` wraps a loaded `WhisperModel` (speech/model.py) and is what the transcription job
calls (`workers/transcription.py`); `shared_transcriber` gives a worker process its one instance,
loaded before the worker takes work (`wecrm worker` on the transcription queue).

Chinese is the default (WECRM_WHISPER_LANGUAGE=zh): Whisper is told the language, an
`initial_prompt` written in simplified Chinese steers it away from traditional characters, and
zhconv converts whatever still drifts. "auto" lets Whisper detect the language per recording
(the English test speech uses it).

Whisper invents text on silence and noise ("谢谢观看", subtitles credits, the prompt echoed back).
Three guards: VAD drops the stretches without speech before Whisper sees them; a segment Whisper
itself thinks is probably not speech and is unsure of (high `no_speech_prob`, low
`avg_logprob`) or whose text repeats itself (it compresses too well) is dropped; and a segment
that is only one of the known silence phrases is dropped. A silent file so yields "".
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import zhconv
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment, get_compression_ratio

from config import Settings
from speech.audio import SAMPLE_RATE, decode
from speech.model import load_model

# Steers Whisper to simplified characters and the words of a sales follow-up.
CHINESE_PROMPT = (
    "以下是销售人员的客户跟进记录，使用简体中文，例如：已发送正式报价单，客户下周付定金。"
)
# Whisper's own thresholds for "this window is silence" (faster-whisper's defaults), applied
# again per segment: a segment is dropped when both hold.
NO_SPEECH_PROB_ABOVE = 0.6
AVG_LOGPROB_BELOW = -1.0
# zlib compression ratio of a segment's own text above which it is a loop ("好的好的好的…"),
# Whisper's threshold. Not Whisper's `compression_ratio`: that one is its whole 30 s window's,
# and a recording that says the same sentence twice in a window would lose both.
COMPRESSION_RATIO_ABOVE = 2.4
# What Whisper says to silence, learned from subtitled video; never a rep's words on their own.
SILENCE_PHRASES = (
    "谢谢观看",
    "谢谢大家",
    "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目",
    "字幕由Amara.org社区提供",
    "中文字幕由Amara.org社区提供",
    "字幕志愿者 杨茜茜",
    "Thank you for watching.",
    "Thanks for watching!",
    "Subtitles by the Amara.org community",
)
NO_SPACE_LANGUAGES = frozenset({"zh", "yue", "ja", "th", "lo", "my", "bo"})
_NOT_WORD = re.compile(r"[\s\W_]+")


def _words(text: str) -> str:
    """`text` without spaces, punctuation or case, in simplified characters: what is compared."""
    return zhconv.convert(_NOT_WORD.sub("", text).lower(), "zh-cn")


_SILENCE_WORDS = frozenset(_words(phrase) for phrase in (*SILENCE_PHRASES, CHINESE_PROMPT))


@dataclass(frozen=True)
class Transcript:
    """What a recording said; `text` is "" when it said nothing."""

    text: str
    language: str
    duration_seconds: float
    segments_kept: int
    segments_dropped: int


class Transcriber:
    """Turns audio bytes into a Transcript with one loaded Whisper model; safe to share between
    threads (CTranslate2 queues concurrent calls to one model)."""

    def __init__(self, model: WhisperModel, *, language: str | None = "zh") -> None:
        self.model = model
        self.language = language  # None: let Whisper detect it

    def transcribe(self, data: bytes) -> Transcript:
        """Decode `data` (AudioRejected when it cannot be) and transcribe it."""
        samples = decode(data)
        segments, info = self.model.transcribe(
            samples,
            language=self.language,
            initial_prompt=CHINESE_PROMPT if self.language == "zh" else None,
            vad_filter=True,
            # Each segment stands alone: an invented line must not prime the next one.
            condition_on_previous_text=False,
        )
        kept, dropped = [], 0
        for segment in segments:  # a generator: the decoding happens here
            if is_hallucination(segment):
                dropped += 1
            else:
                kept.append(segment.text.strip())
        language = info.language
        text = ("" if language in NO_SPACE_LANGUAGES else " ").join(t for t in kept if t)
        if language == "zh":
            text = zhconv.convert(text, "zh-cn")
        return Transcript(
            text=text.strip(),
            language=language,
            duration_seconds=round(samples.size / SAMPLE_RATE, 3),
            segments_kept=len(kept),
            segments_dropped=dropped,
        )


def is_hallucination(segment: Segment) -> bool:
    """Whether a segment is Whisper talking over silence or looping rather than speech heard."""
    if segment.no_speech_prob > NO_SPEECH_PROB_ABOVE and segment.avg_logprob < AVG_LOGPROB_BELOW:
        return True
    if get_compression_ratio(segment.text) > COMPRESSION_RATIO_ABOVE:
        return True
    words = _words(segment.text)
    return not words or words in _SILENCE_WORDS


_shared: Transcriber | None = None
_shared_lock = threading.Lock()


def shared_transcriber(settings: Settings) -> Transcriber:
    """This process's Transcriber, loading (and verifying) the model on first use only."""
    global _shared
    with _shared_lock:
        if _shared is None:
            language = None if settings.whisper_language == "auto" else settings.whisper_language
            _shared = Transcriber(load_model(settings), language=language)
        return _shared
