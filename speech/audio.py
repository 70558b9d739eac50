"""Audio bytes into what Whisper hears: float32 mono samples at 16 kHz.

Recordings arrive as amr, silk, mp3, m4a, wav or ogg, and the file name is not to be trusted:
WeCom voice is AMR-NB, but Tencent clients also store SILK v3 under `.amr` names. So `sniff`
looks at the first bytes; SILK goes through `pilk` (FFmpeg has no SILK decoder), everything else
through the PyAV that faster-whisper already brings, resampled the way faster-whisper does.

Limits keep one upload from holding a worker: `MAX_AUDIO_BYTES` before anything is decoded,
`MAX_AUDIO_SECONDS` from the header and again while decoding (a header can lie). Refusals are
`AudioRejected` with a stable code and a Chinese message, rendered by whichever edge asked.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import av
import numpy as np
import pilk

from crm.errors import DomainError

SAMPLE_RATE = 16000
MAX_AUDIO_BYTES = 20 * 1024 * 1024  # the attachment limit's default; WeCom voice is ≤ 2 MB
MAX_AUDIO_SECONDS = 30 * 60  # a visit summary, not a meeting recording
SILK_FRAME_SECONDS = 0.02  # every SILK v3 packet carries 20 ms
SILK_HEADER = b"#!SILK_V3"
TENCENT_SILK_PREFIX = b"\x02"  # WeChat and QQ put one byte before SILK's magic

# What users read when their audio is refused, by stable code.
REJECTIONS = {
    "unsupported_audio": "不支持的音频格式：请上传 amr、silk、mp3、m4a、wav 或 ogg 录音",
    "corrupt_audio": "音频文件已损坏或没有声音数据，无法识别",
    "audio_too_large": f"录音文件不能超过 {MAX_AUDIO_BYTES // (1024 * 1024)} MB",
    "audio_too_long": f"录音不能超过 {MAX_AUDIO_SECONDS // 60} 分钟",
}


class AudioRejected(DomainError):
    """The audio cannot be transcribed: unsupported, corrupt, too large or too long."""

    def __init__(self, code: str) -> None:
        super().__init__(REJECTIONS[code], code=code)


def sniff(data: bytes) -> str:
    """The audio format by its first bytes: amr, silk, mp3, m4a, wav or ogg."""
    if data.startswith(b"#!AMR"):  # AMR-NB "#!AMR\n", AMR-WB "#!AMR-WB\n"
        return "amr"
    if data.startswith(SILK_HEADER) or data.startswith(TENCENT_SILK_PREFIX + SILK_HEADER):
        return "silk"
    if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(b"OggS"):
        return "ogg"
    if data[4:8] == b"ftyp":  # ISO base media: m4a, mp4 audio
        return "m4a"
    # An ID3 tag, or straight into an MPEG audio frame (11 sync bits, layer III).
    if data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE6 == 0xE2):
        return "mp3"
    raise AudioRejected("unsupported_audio")


def decode(data: bytes) -> np.ndarray:
    """Samples of `data` as float32 mono at 16 kHz; AudioRejected when it cannot be."""
    if len(data) > MAX_AUDIO_BYTES:
        raise AudioRejected("audio_too_large")
    samples = _decode_silk(data) if sniff(data) == "silk" else _decode_with_av(data)
    if samples.size == 0:
        raise AudioRejected("corrupt_audio")
    return samples.astype(np.float32) / 32768.0


def _decode_silk(data: bytes) -> np.ndarray:
    """SILK v3 through pilk, which reads and writes files only."""
    if _silk_packets(data) * SILK_FRAME_SECONDS > MAX_AUDIO_SECONDS:
        raise AudioRejected("audio_too_long")
    with tempfile.TemporaryDirectory(prefix="wecrm-silk-") as scratch:
        silk_path, pcm_path = Path(scratch) / "in.silk", Path(scratch) / "out.pcm"
        silk_path.write_bytes(data)
        try:
            # pilk returns the milliseconds it decoded; 0 when no packet was valid, and it
            # raises pilk.error when a packet breaks the decoder.
            decoded_ms = pilk.decode(str(silk_path), str(pcm_path), pcm_rate=SAMPLE_RATE)
        except pilk.error:
            raise AudioRejected("corrupt_audio") from None
        if decoded_ms <= 0:
            raise AudioRejected("corrupt_audio")
        return np.frombuffer(pcm_path.read_bytes(), dtype="<i2")


def _silk_packets(data: bytes) -> int:
    """How many packets follow the header: each is a little-endian 16-bit length and that many
    bytes; a negative length (0xFFFF) ends the stream."""
    position = data.index(SILK_HEADER) + len(SILK_HEADER)
    packets = 0
    while position + 2 <= len(data):
        size = int.from_bytes(data[position : position + 2], "little", signed=True)
        if size < 0:
            break
        position += 2 + size
        packets += 1
    return packets


def _decode_with_av(data: bytes) -> np.ndarray:
    """Everything but SILK through FFmpeg (PyAV), resampled to 16-bit mono 16 kHz."""
    max_samples = MAX_AUDIO_SECONDS * SAMPLE_RATE
    chunks: list[np.ndarray] = []
    decoded = 0
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    try:
        with av.open(BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioRejected("corrupt_audio")
            if container.duration and container.duration / av.time_base > MAX_AUDIO_SECONDS:
                raise AudioRejected("audio_too_long")
            for frame in itertools.chain(_valid_frames(container), [None]):
                for resampled in resampler.resample(frame):
                    chunk = resampled.to_ndarray().reshape(-1)
                    decoded += chunk.size
                    if decoded > max_samples:
                        raise AudioRejected("audio_too_long")
                    chunks.append(chunk)
    except av.FFmpegError:
        raise AudioRejected("corrupt_audio") from None
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def _valid_frames(container: av.container.InputContainer) -> Iterator[av.AudioFrame]:
    """The first audio stream's frames, up to the first damaged one (as faster-whisper reads)."""
    frames = container.decode(audio=0)
    while True:
        try:
            frame = next(frames)
        except (StopIteration, av.InvalidDataError):
            return
        frame.pts = None  # a damaged timestamp must not stop the resampler
        yield frame
