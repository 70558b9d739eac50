"""Attachment checks: every accepted type is recognised by its first bytes (no database)."""

from __future__ import annotations

import pytest

from crm.errors import Invalid
from crm.followups import ALLOWED_ATTACHMENT_TYPES, SIGNATURES, Upload, check_upload

MAX_BYTES = 1024 * 1024
# The first bytes of a real file of each type, as recorders, phones and WeChat write them.
GENUINE = {
    ".pdf": b"%PDF-1.7\n",
    ".jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF",
    ".jpeg": b"\xff\xd8\xff\xe1\x00\x18Exif",
    ".png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ".xlsx": b"PK\x03\x04\x14\x00\x06\x00",
    ".docx": b"PK\x03\x04\x14\x00\x06\x00",
    ".amr": b"#!AMR\n\x3c",
    ".silk": b"\x02#!SILK_V3\x0c\x00",
    ".mp3": b"ID3\x04\x00\x00\x00\x00\x00\x23",
    ".m4a": b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00",
    ".wav": b"RIFF\x24\x08\x00\x00WAVEfmt ",
    ".ogg": b"OggS\x00\x02\x00\x00",
}
HTML = b"<!doctype html><html><script>alert(1)</script></html>"


def test_every_accepted_type_has_a_signature_and_a_genuine_sample_here():
    assert set(ALLOWED_ATTACHMENT_TYPES) == set(SIGNATURES) == set(GENUINE)


@pytest.mark.parametrize("suffix", sorted(GENUINE))
def test_a_genuine_file_of_each_type_is_accepted(suffix):
    upload, checked_suffix, content_type = check_upload(
        Upload(filename=f"跟进{suffix}", data=GENUINE[suffix] + b"\x00" * 64), MAX_BYTES
    )
    assert (upload.filename, checked_suffix) == (f"跟进{suffix}", suffix)
    assert content_type == ALLOWED_ATTACHMENT_TYPES[suffix]


@pytest.mark.parametrize("suffix", sorted(GENUINE))
def test_html_renamed_to_any_accepted_type_is_refused(suffix):
    with pytest.raises(Invalid) as caught:
        check_upload(Upload(filename=f"录音{suffix}", data=HTML), MAX_BYTES)
    assert caught.value.code == "bad_attachment_type"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("通话.mp3", b"\xff\xd8\xff\xe0JFIF"),  # a JPEG: 0xFF, but no MPEG frame sync
        ("通话.mp3", b"\xff\xf1\x50\x80"),  # AAC in ADTS, not MPEG layer III
        ("通话.m4a", b"ftyp\x00\x00\x00\x20"),  # "ftyp" at the wrong offset
        ("通话.wav", b"RIFF\x24\x08\x00\x00AVI LIST"),  # a RIFF that is an AVI video
        ("通话.silk", b"#!SILK_V2"),
        ("通话.ogg", b"Oggs\x00\x02"),
    ],
)
def test_near_misses_of_audio_signatures_are_refused(name, data):
    with pytest.raises(Invalid):
        check_upload(Upload(filename=name, data=data + b"\x00" * 16), MAX_BYTES)


@pytest.mark.parametrize("frame", [b"\xff\xfb\x90\x64", b"\xff\xf3\x48\xc4", b"\xff\xe3\x18\xc4"])
def test_an_mp3_without_an_id3_tag_is_recognised_by_its_frame_sync(frame):
    _, suffix, _ = check_upload(Upload(filename="call.MP3", data=frame + b"\x00" * 32), MAX_BYTES)
    assert suffix == ".mp3"
