"""The bot path: a member's ten-second voice message, from WeCom's callback to the reply, beside the
bare faster-whisper call on the same file.

The message is the tests' espeak-ng English (tests/audio.py): "Wang." and two sentences, padded
with silence to ten seconds, encoded as AMR-NB at 8 kHz as WeCom's voice messages are (PyAV's
libopencore_amrnb). The customer Wang is in the rep's book (bench/voice_stack.py), so the
transcript is the member's `#跟进# Wang …` and logs a follow-up; "contract" in it runs the
capture and the trigger, as in the whole job of bench/transcription.py.

Each round, against the running app and workers of bench/voice_stack.py: the fake WeCom serves
the audio under a new MediaId, the callback WeCom would post (encrypted and signed, a new MsgId)
goes to gunicorn, then the fake WeCom's message log and the recording's row are read every
`--poll-ms` until the reply saying the follow-up was logged arrived. From the POST:

- **acknowledged**: the callback's empty 200 (the message stored, its processing queued);
- **received**: 「收到语音，正在识别…」 at WeCom (the inbound job fetched the audio from media/get,
  kept it, queued its transcription, and the outbox sent the reply);
- **transcribed**: the recording's row done (the transcription job's transaction: the
  transcript, the `#跟进#` command, the follow-up, the capture, the triggers, the reply queued);
- **replied**: 「已记录对「Wang」的跟进…」 at WeCom, the figure of the bot path.

Beside it, in turn, bare `WhisperModel.transcribe` on the same AMR bytes in this process. A
warm-up message, not counted, makes sure the worker has loaded its model. Medians over
`--rounds`, with the CPU of the stack's processes and of everything else. Run:
`python -m bench.voice_bot` (`--rounds`, `--poll-ms`, `--no-doc`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import requests
from sqlalchemy import func, select

from bench.cpu import add_calm_options, apply_niceness
from bench.customer_book import quiet, write_doc_block
from bench.transcription import (
    PAUSE_SECONDS,
    Side,
    bare_transcribe,
    measure,
    measured_on,
    model_line,
    word_accuracy,
)
from bench.voice_stack import HTTP_TIMEOUT_SECONDS, REP, VoiceStack, bench_settings
from bot import voice
from bot.callback import CALLBACK_PATH
from fake_wecom.server import DUPLICATE_CHECK_MAX_SECONDS
from models import Recording
from speech.model import load_model
from tests import audio

CUSTOMER = "Wang"
SENTENCES = (f"{CUSTOMER}.", audio.SIGNED, audio.CALL_BACK)
MESSAGE_SECONDS = 10.0
FIRST_MSG_ID = 7_100_000_000_000_000_000
LOGGED_REPLY = f"已记录对「{CUSTOMER}」的跟进"
REPLY_TIMEOUT_SECONDS = 1800  # the warm-up includes the worker's model load
STEPS = ("acknowledged", "received", "transcribed", "replied")


def voice_message() -> tuple[bytes, str]:
    """Ten seconds of espeak-ng speech as AMR-NB, and the words it says."""
    pieces, rate = [], 0
    for sentence in SENTENCES:
        samples, rate = audio.wav_samples(audio.speech_wav(sentence))
        pieces += [samples, np.zeros(int(PAUSE_SECONDS * rate), dtype="<i2")]
    speech = np.concatenate(pieces)
    padded = np.concatenate([speech, np.zeros(int(MESSAGE_SECONDS * rate) - speech.size, "<i2")])
    return audio.encode(audio.wav_bytes(padded, rate), "amr"), " ".join(SENTENCES)


@dataclass
class BotPath:
    """Members' voice messages to the running app, each followed until its reply arrived."""

    stack: VoiceStack
    amr: bytes
    poll_seconds: float
    steps: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    http: requests.Session = field(default_factory=requests.Session)
    sent: int = 0

    def __call__(self) -> str:
        """One message: post its callback, watch for the replies; the transcript."""
        self.sent += 1
        # The outbox asks for WeCom's duplicate check, and every round's replies say the same:
        # each message is an hour later on the fake WeCom's clock, past the check's window.
        hours = self.sent
        self.stack.wecom.clock = lambda: time.time() + hours * DUPLICATE_CHECK_MAX_SECONDS
        media_id = f"voice-bench-{self.sent}"
        self.stack.wecom.add_media(media_id, self.amr)
        envelope = self.stack.app.envelope(
            self.stack.app.voice(REP, media_id, msg_id=FIRST_MSG_ID + self.sent)
        )
        seen, last_recording = len(self.stack.wecom.messages), self._last_recording()
        started = time.perf_counter()
        answer = self.http.post(
            f"{self.stack.base_url}{CALLBACK_PATH}",
            params=envelope.params,
            data=envelope.body,
            headers={"Content-Type": "text/xml"},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
        marks = {"acknowledged": time.perf_counter() - started}
        assert (answer.status_code, answer.content) == (200, b""), answer.text
        while marks.keys() < set(STEPS):  # the first reply may arrive after the second
            time.sleep(self.poll_seconds)
            at = time.perf_counter() - started
            if at > REPLY_TIMEOUT_SECONDS:
                raise RuntimeError(f"no reply after {REPLY_TIMEOUT_SECONDS} s")
            for text in self._replies(seen):
                if text == voice.RECEIVED_REPLY:
                    marks.setdefault("received", at)
                elif text.startswith(LOGGED_REPLY):
                    marks["replied"] = at
                else:
                    raise RuntimeError(f"unexpected reply: {text}")
            if "transcribed" not in marks and self._transcript(last_recording) is not None:
                marks["transcribed"] = at
        for step in STEPS:
            self.steps[step].append(marks[step])
        return self._transcript(last_recording) or ""

    def _replies(self, seen: int) -> list[str]:
        return [
            message["text"]["content"]
            for message in self.stack.wecom.messages[seen:]
            if message["msgtype"] == "text" and REP in message["touser"]
        ]

    def _last_recording(self) -> int:
        assert self.stack.db is not None
        with self.stack.db.engine.connect() as conn:
            return int(conn.scalar(select(func.max(Recording.id))) or 0)

    def _transcript(self, after: int) -> str | None:
        """The transcript of the recording made after `after`, once it is done."""
        assert self.stack.db is not None
        with self.stack.db.engine.connect() as conn:
            row = conn.execute(
                select(Recording.status, Recording.transcript)
                .where(Recording.id > after)
                .order_by(Recording.id)
                .limit(1)
            ).first()
        return row.transcript or "" if row is not None and row.status == "done" else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--poll-ms", type=float, default=20, help="how often the replies are read")
    add_calm_options(parser)
    parser.add_argument("--no-doc", action="store_true", help="print, do not touch the docs")
    args = parser.parse_args()
    apply_niceness(args)

    settings = bench_settings()
    started = time.monotonic()
    model = load_model(settings)
    load_seconds = time.monotonic() - started
    amr, said = voice_message()
    bare_transcribe(model, amr)  # the warm-up
    with VoiceStack([CUSTOMER]) as stack:
        bot = BotPath(stack, amr, args.poll_ms / 1000)
        bot()  # the warm-up: the worker has loaded its model when this is answered
        for step in STEPS:
            bot.steps[step].clear()
        sides: list[tuple[Side, Callable[[], str]]] = [
            (Side("bare `WhisperModel.transcribe`"), lambda: bare_transcribe(model, amr)),
            (Side("wecrm bot: callback → reply at WeCom"), bot),
        ]
        for _ in range(args.rounds):
            for side, call in sides:
                quiet(args)
                measure(side, call, stack)
        effects = stack.effects()

    bare, bot_side = (side for side, _ in sides)
    lines = [
        "### Voice message to the bot",
        "",
        measured_on(),
        "",
        f"{model_line(settings, load_seconds)} Message: {MESSAGE_SECONDS:.0f} s of espeak-ng "
        f"English (“{said}”, then silence), AMR-NB 8 kHz, {len(amr):,} bytes; language given "
        f"(en), VAD on. {args.rounds} rounds, the two sides in turn. The stack: gunicorn "
        "2 × 4 threads, `wecrm worker` (its own transcription worker), a private Redis, SQLite, "
        f"the fake WeCom in the benchmark's process, read every {args.poll_ms:.0f} ms.",
        "",
        "| side | seconds (median; all) | real-time factor | CPU seconds (median) "
        "| words recognised | others' CPU (cores) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for side in (bare, bot_side):
        median = statistics.median(side.seconds)
        lines.append(
            f"| {side.name} | {median:.2f}; {', '.join(f'{s:.2f}' for s in side.seconds)} | "
            f"{median / MESSAGE_SECONDS:.3f} | {statistics.median(side.cpu_seconds):.2f} | "
            f"{word_accuracy(side.text, said):.1%} | {max(side.others_cores):.2f} |"
        )
    lines += [
        "",
        "The bot path, seconds from the callback's POST (median; slowest): "
        + "; ".join(
            f"{step} {statistics.median(bot.steps[step]):.2f} ({max(bot.steps[step]):.2f})"
            for step in STEPS
        )
        + ". Bot path ÷ bare call: "
        f"{statistics.median(bot_side.seconds) / statistics.median(bare.seconds):.2f} by wall "
        f"time. Capture and triggers: {effects['captured']} of {args.rounds + 1} follow-ups "
        f"captured as 合同, {effects['tasks']} tasks given (warm-up included).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_doc:
        write_doc_block("voice_bot", text)


if __name__ == "__main__":
    main()
