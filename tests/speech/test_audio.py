"""Audio is recognised by its first bytes, not its name, and decoded to 16 kHz mono float32;
what cannot be transcribed is refused with a code and a Chinese reason."""

from __future__ import annotations

import random

import numpy as np
import pytest

from speech.audio import (
    MAX_AUDIO_BYTES,
    MAX_AUDIO_SECONDS,
    SAMPLE_RATE,
    AudioRejected,
    decode,
    sniff,
)
from tests import audio


@pytest.fixture(scope="module")
def speech_wav() -> bytes:
    return audio.speech_wav(audio.CALL_BACK)


@pytest.mark.parametrize("kind", ["mp3", "ogg", "m4a", "amr"])
def test_each_upload_format_is_sniffed_and_decoded_to_the_speech_length(speech_wav, kind):
    samples, rate = audio.wav_samples(speech_wav)
    data = audio.encode(speech_wav, kind)

    assert sniff(data) == kind
    decoded = decode(data)

    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert abs(decoded.size / SAMPLE_RATE - samples.size / rate) < 0.2  # codec padding only
    assert 0.1 < np.abs(decoded).max() <= 1.0


@pytest.mark.parametrize("tencent", [True, False], ids=["wechat-0x02", "plain"])
def test_silk_under_an_amr_name_is_decoded_with_pilk(speech_wav, tencent):
    samples, rate = audio.wav_samples(speech_wav)
    data = audio.silk(speech_wav, tencent=tencent)

    assert sniff(data) == "silk"
    decoded = decode(data)

    assert abs(decoded.size / SAMPLE_RATE - samples.size / rate) < 0.1
    assert np.abs(decoded).max() > 0.1


def test_wav_is_resampled_to_16_khz(speech_wav):
    samples, rate = audio.wav_samples(speech_wav)
    assert rate == 22050  # espeak-ng's own rate

    assert abs(decode(speech_wav).size - samples.size * SAMPLE_RATE / rate) < 50


def test_random_bytes_named_mp3_are_an_unsupported_format():
    noise = random.Random(12).randbytes(4096)
    with pytest.raises(AudioRejected) as refused:
        decode(noise)
    assert refused.value.code == "unsupported_audio"
    assert "不支持的音频格式" in refused.value.message


# Not AMR: its frames carry no checksum, so garbage after "#!AMR" decodes as noise (which VAD
# then finds no speech in).
@pytest.mark.parametrize(
    "magic", [b"ID3\x04\x00\x00\x00\x00\x00\x00", b"OggS", b"\x00\x00\x00\x1cftypM4A "]
)
def test_a_known_header_over_garbage_is_corrupt(magic):
    data = magic + random.Random(7).randbytes(4096)
    with pytest.raises(AudioRejected) as refused:
        decode(data)
    assert refused.value.code == "corrupt_audio"
    assert refused.value.message == "音频文件已损坏或没有声音数据，无法识别"


@pytest.mark.parametrize(
    "data",
    [b"\x02#!SILK_V3" + b"\x05\x00" + b"\xff" * 5, b"#!SILK_V3" + random.Random(3).randbytes(3000)],
    ids=["no-valid-packet", "garbage-packets"],
)
def test_a_damaged_silk_stream_is_corrupt(data):
    with pytest.raises(AudioRejected) as refused:
        decode(data)
    assert refused.value.code == "corrupt_audio"


def test_audio_longer_than_the_limit_is_refused_before_transcription():
    # 8-bit 8 kHz keeps the file under the byte limit while it runs one second too long.
    too_long = np.full((MAX_AUDIO_SECONDS + 1) * 8000, 128, dtype=np.uint8)
    data = audio.wav_bytes(too_long, 8000, sample_width=1)
    assert len(data) < MAX_AUDIO_BYTES

    with pytest.raises(AudioRejected) as refused:
        decode(data)
    assert refused.value.code == "audio_too_long"
    assert refused.value.message == f"录音不能超过 {MAX_AUDIO_SECONDS // 60} 分钟"


def test_a_silk_file_longer_than_the_limit_is_refused_by_counting_its_packets():
    packet = b"\x01\x00\x00"  # one 20 ms packet of one byte
    data = b"#!SILK_V3" + packet * (MAX_AUDIO_SECONDS * 50 + 1)
    with pytest.raises(AudioRejected) as refused:
        decode(data)
    assert refused.value.code == "audio_too_long"


def test_a_file_over_the_byte_limit_is_refused_unread():
    with pytest.raises(AudioRejected) as refused:
        decode(b"RIFF" + bytes(MAX_AUDIO_BYTES))
    assert refused.value.code == "audio_too_large"
