"""Test audio made on the spot: English speech from Debian's espeak-ng (Whisper transcribes it
word for word; its Mandarin is too robotic), re-encoded by PyAV into the formats recordings
arrive in, and SILK v3 through pilk's encoder. Nothing is committed as a binary fixture.

espeak-ng must be installed (`apt-get install espeak-ng`; .ci/run does it when missing).
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from io import BytesIO
from pathlib import Path

import av
import numpy as np
import pilk

# Sentences the bundled base model gives back exactly from espeak-ng's en-us voice.
SIGNED = "The customer signed the contract this morning."
CALL_BACK = "Please call the customer back tomorrow morning."
NEW_QUOTATION = "The customer wants a new quotation next week."

# container format, codec, sample rate: how each kind of upload is made.
ENCODINGS = {
    "mp3": ("mp3", "libmp3lame", 16000),
    "ogg": ("ogg", "libopus", 48000),
    "m4a": ("ipod", "aac", 16000),
    "amr": ("amr", "libopencore_amrnb", 8000),  # WeCom voice: AMR-NB, 8 kHz
}


def speech_wav(sentence: str, *, voice: str = "en-us", words_per_minute: int = 140) -> bytes:
    """`sentence` spoken by espeak-ng, as the WAV file it writes (22.05 kHz, 16-bit mono)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "speech.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(path), sentence],
            check=True,
        )
        return path.read_bytes()


def wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    """The 16-bit mono samples of a WAV file and their sample rate."""
    with wave.open(BytesIO(data)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth()) == (1, 2)
        frames = reader.readframes(reader.getnframes())
        return np.frombuffer(frames, dtype="<i2"), reader.getframerate()


def wav_bytes(samples: np.ndarray, rate: int, *, sample_width: int = 2) -> bytes:
    """A mono WAV file of `samples` (int16, or uint8 with sample_width=1)."""
    buffer = BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(sample_width)
        writer.setframerate(rate)
        writer.writeframes(samples.tobytes())
    return buffer.getvalue()


def silence_wav(seconds: float, rate: int = 16000) -> bytes:
    return wav_bytes(np.zeros(int(seconds * rate), dtype="<i2"), rate)


def encode(wav: bytes, kind: str) -> bytes:
    """A WAV file re-encoded as `kind` (mp3, ogg, m4a, amr) with PyAV."""
    container_format, codec, rate = ENCODINGS[kind]
    output = BytesIO()
    with (
        av.open(BytesIO(wav)) as source,
        av.open(output, mode="w", format=container_format) as target,
    ):
        stream = target.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(
            format=stream.codec_context.format.name, layout="mono", rate=rate
        )
        for frame in (*source.decode(audio=0), None):
            if frame is not None:
                frame.pts = None
            for resampled in resampler.resample(frame):
                target.mux(stream.encode(resampled))
        target.mux(stream.encode(None))
    return output.getvalue()


def silk(wav: bytes, *, tencent: bool = True) -> bytes:
    """A WAV file as SILK v3 (with WeChat's 0x02 prefix when `tencent`), through pilk."""
    samples, rate = wav_samples(wav)
    resampled = _pcm_at(samples, rate, 24000)
    with tempfile.TemporaryDirectory() as scratch:
        pcm, out = Path(scratch) / "in.pcm", Path(scratch) / "out.silk"
        pcm.write_bytes(resampled.tobytes())
        pilk.encode(str(pcm), str(out), pcm_rate=24000, tencent=tencent)
        return out.read_bytes()


def _pcm_at(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """16-bit mono samples resampled by PyAV (pilk takes only a few fixed rates)."""
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=target_rate)
    chunks = [
        f.to_ndarray().reshape(-1) for f in (*resampler.resample(frame), *resampler.resample(None))
    ]
    return np.concatenate(chunks)
