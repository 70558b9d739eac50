"""Transcription: wecrm's Transcriber and the whole recording job beside the bare faster-whisper
call, on one minute of speech.

The recording is the tests' espeak-ng English (tests/audio.py), sentences one after another with
a short pause until a minute is full, as a WAV file. Every side runs the same model (the bundled
base model, verified, from the voice stack's data folder; `WECRM_WHISPER_*` settings apply) with
the same decoding options, English given:

- **bare**: `WhisperModel.transcribe` on the file's bytes (faster-whisper decodes them itself),
  segments read to the end;
- **wecrm**: `Transcriber.transcribe` on the same bytes: sniffing, limits, our decode, Whisper,
  the hallucination guards and the text's conversion;
- **whole job**: the running app and workers of bench/voice_stack.py (gunicorn, `wecrm worker`
  with its transcription worker, Redis, SQLite): the rep POSTs a follow-up with the file
  attached (multipart, as the mini app does), then reads the customer's timeline every
  `--poll-ms` until the recording is done; the figure is from the POST to the answer that says
  done: upload, store, queue, the worker's claim, decode and transcription, the transcript
  written, the keyword capture ("contract" is a 合同 word) and the triggers (a rule on it gives
  a task and messages the manager). The worker loads the model before its first job; a warm-up
  round, not counted, makes sure it has.

Rounds alternate the three; the figure is each side's median real-time factor (seconds of work
per second of audio; below 1 is faster than real time), with the CPU the rest of the machine
used meanwhile. Run: `python -m bench.transcription` (`--rounds`, `--poll-ms`, `--no-doc`).
"""

from __future__ import annotations

import argparse
import difflib
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import requests

from bench.cpu import CLOCK_TICKS_PER_SECOND, CpuWindow, add_calm_options, apply_niceness
from bench.customer_book import _code_version, quiet, write_doc_block
from bench.voice_stack import HTTP_TIMEOUT_SECONDS, LANGUAGE, VoiceStack, bench_settings
from config import Settings
from speech.model import load_model
from speech.transcribe import Transcriber
from tests import audio

SENTENCES = (
    audio.SIGNED,
    audio.CALL_BACK,
    audio.NEW_QUOTATION,
    "We sent the quotation to the customer today.",
    "The customer signed the contract this morning.",
)
PAUSE_SECONDS = 0.6
TARGET_SECONDS = 60.0
JOB_TIMEOUT_SECONDS = 1800  # the warm-up round includes the worker's model load
SETTLED = ("done", "failed")


@dataclass
class Side:
    name: str
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # ours: this process and the stack's
    others_cores: list[float] = field(default_factory=list)
    text: str = ""


@dataclass
class JobRound:
    """What one whole-job round cost beside its wall time."""

    web_cpu_seconds: float  # gunicorn: the upload, and every poll
    workers_cpu_seconds: float  # the workers: the job, and the trigger's message sent
    polls: int


def recording(target_seconds: float = TARGET_SECONDS) -> tuple[bytes, str]:
    """About `target_seconds` of espeak-ng speech as a WAV file, and the words it says."""
    voices = {sentence: audio.wav_samples(audio.speech_wav(sentence)) for sentence in SENTENCES}
    rate = next(iter(voices.values()))[1]
    pause = np.zeros(int(PAUSE_SECONDS * rate), dtype="<i2")
    pieces, said, seconds = [], [], 0.0
    while seconds < target_seconds:
        for sentence, (samples, _) in voices.items():
            pieces += [samples, pause]
            said.append(sentence)
            seconds += (samples.size + pause.size) / rate
            if seconds >= target_seconds:
                break
    return audio.wav_bytes(np.concatenate(pieces), rate), " ".join(said)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def word_accuracy(heard: str, said: str) -> float:
    """Share of the spoken words found, in order, in the transcript."""
    expected = words(said)
    matcher = difflib.SequenceMatcher(a=expected, b=words(heard), autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(expected)


def bare_transcribe(model: Any, data: bytes) -> str:
    """faster-whisper alone on a file's bytes, as the Transcriber is configured."""
    segments, _ = model.transcribe(
        BytesIO(data),
        language=LANGUAGE,
        vad_filter=True,
        condition_on_previous_text=False,
    )
    return " ".join(segment.text.strip() for segment in segments)


def measure(side: Side, call: Callable[[], str], stack: VoiceStack) -> None:
    """One run of a side, its wall time, CPU (ours: with the stack's processes) and others'."""
    with CpuWindow(stack.tracked_pids) as window:
        side.text = call()
    assert window.use is not None
    side.seconds.append(window.use.seconds)
    side.cpu_seconds.append(round(window.use.ours_cores * window.use.seconds, 2))
    side.others_cores.append(window.use.others_cores)


class WholeJob:
    """A rep logs a follow-up with the recording through the API and waits until it is done."""

    def __init__(self, stack: VoiceStack, data: bytes, poll_seconds: float) -> None:
        self.stack, self.data, self.poll_seconds = stack, data, poll_seconds
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {stack.token()}"
        self.customers = iter(stack.customer_ids)
        self.rounds: list[JobRound] = []

    def __call__(self) -> str:
        """One round: POST, then read the timeline until the recording settled; the transcript."""
        customer_id = next(self.customers)
        before = self.stack.cpu_ticks()
        answer = self.http.post(
            f"{self.stack.base_url}/api/v1/customers/{customer_id}/follow-ups",
            data={"method": "电话"},
            files=[("files", ("recording.wav", self.data, "audio/wav"))],
            timeout=HTTP_TIMEOUT_SECONDS,
        )
        assert answer.status_code == 201, answer.text
        deadline, polls = time.monotonic() + JOB_TIMEOUT_SECONDS, 0
        while True:
            time.sleep(self.poll_seconds)
            polls += 1
            follow_up = self._follow_up(customer_id)
            if follow_up["recordings"][0]["status"] in SETTLED:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"recording not done after {JOB_TIMEOUT_SECONDS} s")
        after = self.stack.cpu_ticks()
        used = {role: (after[role] - before[role]) / CLOCK_TICKS_PER_SECOND for role in after}
        self.rounds.append(JobRound(round(used["web"], 2), round(used["workers"], 2), polls))
        recording = follow_up["recordings"][0]
        assert recording["status"] == "done", recording
        return str(follow_up["transcript"] or "")

    def _follow_up(self, customer_id: int) -> dict[str, Any]:
        answer = self.http.get(
            f"{self.stack.base_url}/api/v1/customers/{customer_id}", timeout=HTTP_TIMEOUT_SECONDS
        )
        answer.raise_for_status()
        timeline = answer.json()["timeline"]
        return dict(next(entry["follow_up"] for entry in timeline if entry["kind"] == "follow_up"))


@dataclass
class Run:
    settings: Settings
    load_seconds: float
    audio_seconds: float
    said: str
    sides: list[Side]
    job_rounds: list[JobRound]
    effects: dict[str, int]
    poll_seconds: float


def run(args: argparse.Namespace) -> Run:
    settings = bench_settings()
    started = time.monotonic()
    model = load_model(settings)
    load_seconds = time.monotonic() - started
    transcriber = Transcriber(model, language=LANGUAGE)
    data, said = recording()
    audio_seconds = transcriber.transcribe(data).duration_seconds  # also the warm-up
    poll_seconds = args.poll_ms / 1000
    customers = [f"整段录音客户{n:02d}" for n in range(args.rounds + 1)]
    with VoiceStack(customers) as stack:
        whole_job = WholeJob(stack, data, poll_seconds)
        whole_job()  # the warm-up: the worker has loaded its model when this is done
        whole_job.rounds.clear()
        sides: list[tuple[Side, Callable[[], str]]] = [
            (Side("bare `WhisperModel.transcribe`"), lambda: bare_transcribe(model, data)),
            (Side("wecrm `Transcriber.transcribe`"), lambda: transcriber.transcribe(data).text),
            (Side("wecrm, whole job (API upload → done)"), whole_job),
        ]
        for _ in range(args.rounds):
            for side, call in sides:
                quiet(args)
                measure(side, call, stack)
        effects = stack.effects()
    return Run(
        settings,
        load_seconds,
        audio_seconds,
        said,
        [side for side, _ in sides],
        whole_job.rounds,
        effects,
        poll_seconds,
    )


def cpu_model() -> str:
    """The machine's CPU, as /proc/cpuinfo names it."""
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )


def measured_on() -> str:
    """When, on what and with which versions: the first line of a block."""
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} on {os.cpu_count()} × {cpu_model()}; "
        f"Python {platform.python_version()}, faster-whisper {version('faster-whisper')}, "
        f"CTranslate2 {version('ctranslate2')}, PyAV {version('av')}; code at {_code_version()}."
    )


def model_line(settings: Settings, load_seconds: float) -> str:
    """Which model, how it runs and how long it took to load."""
    return (
        f"Model: {settings.whisper_model or 'bundled faster-whisper base (verified)'}, "
        f"compute type {settings.whisper_compute_type}, "
        f"{settings.whisper_threads or 'default'} threads; loaded (with the hash check) in "
        f"{load_seconds:.1f} s."
    )


def verdict(ratio: float) -> str:
    """A ratio to the bare call as an overhead, and whether the ≤ 10 % target holds."""
    return f"{ratio - 1:+.1%} ({'met' if ratio <= 1.10 else '**missed**'})"


def markdown(result: Run, rounds: int) -> str:
    audio_seconds, sides = result.audio_seconds, result.sides
    medians = {side.name: statistics.median(side.seconds) / audio_seconds for side in sides}
    cpu = {side.name: statistics.median(side.cpu_seconds) for side in sides}
    bare, ours, job = (side.name for side in sides)
    jobs = result.job_rounds
    workers_cpu = statistics.median(job_round.workers_cpu_seconds for job_round in jobs)
    web_cpu = statistics.median(job_round.web_cpu_seconds for job_round in jobs)
    polls = statistics.median(job_round.polls for job_round in jobs)
    lines = [
        "### Transcription",
        "",
        measured_on(),
        "",
        f"{model_line(result.settings, result.load_seconds)} Recording: {audio_seconds:.1f} s "
        f"of espeak-ng English, WAV; language given (en), VAD on. {rounds} rounds, the three "
        "sides in turn. The whole job: gunicorn 2 × 4 threads, `wecrm worker` (its own "
        "transcription worker), a private Redis, SQLite; the timeline read every "
        f"{result.poll_seconds * 1000:.0f} ms after the POST.",
        "",
        "| side | seconds per run (median; all) | real-time factor | CPU seconds per run "
        "(median) | words recognised | others' CPU (cores) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for side in sides:
        lines.append(
            f"| {side.name} | {statistics.median(side.seconds):.2f}; "
            f"{', '.join(f'{s:.2f}' for s in side.seconds)} | "
            f"{medians[side.name]:.3f} | {cpu[side.name]:.2f} | "
            f"{word_accuracy(side.text, result.said):.1%} | "
            f"{max(side.others_cores):.2f} |"
        )
    lines += [
        "",
        f"Overhead over the bare call (target ≤ 10 %), by wall time / by CPU time: "
        f"`Transcriber` {verdict(medians[ours] / medians[bare])} / "
        f"{verdict(cpu[ours] / cpu[bare])}; whole job {verdict(medians[job] / medians[bare])} / "
        f"{verdict(cpu[job] / cpu[bare])}.",
        "",
        f"Whole job per round (median): workers {workers_cpu:.2f} CPU s "
        f"({verdict(workers_cpu / cpu[bare])} over the bare call's CPU time), web app "
        f"{web_cpu:.2f} CPU s (the upload and {polls:.0f} timeline reads, "
        f"{1000 * web_cpu / polls:.0f} ms each at most: on a machine of few cores the reads "
        "take CPU from the worker, `--poll-ms` trades them for the figure's resolution); "
        f"capture and triggers: {result.effects['captured']} of {rounds + 1} follow-ups "
        f"captured as 合同, {result.effects['tasks']} tasks given (warm-up round included). "
        "Every side runs the same Whisper work; the Transcriber adds the decode (PyAV or "
        "pilk), the limits and the guards, the whole job the upload, the queue, the writes, "
        "the capture, the triggers and the reads. On this shared machine other processes "
        "come and go, so the wall-time ratios move by tens of percent between runs; CPU time "
        "moves less.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=250,  # under 1 % of a job of some 40 s; each read takes CPU from the worker
        help="how often the whole job's status is read",
    )
    add_calm_options(parser)
    parser.add_argument("--no-doc", action="store_true", help="print, do not touch the docs")
    args = parser.parse_args()
    apply_niceness(args)
    result = run(args)
    text = markdown(result, args.rounds)
    print(text)
    if not args.no_doc:
        write_doc_block("transcription", text)


if __name__ == "__main__":
    main()
