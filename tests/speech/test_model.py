"""The bundled model is assembled from the two packages and used only when its bytes are
Systran's; a tampered file is refused by name."""

from __future__ import annotations

import os
import shutil

import pytest

from speech.model import EXPECTED_FILES, STAMP_NAME, ModelRejected, assemble_bundled_model, verify


@pytest.fixture()
def model_copy(model_dir, tmp_path):
    """A verified copy of the assembled model that a test may damage."""
    copy = tmp_path / "faster-whisper-base"
    copy.mkdir()
    for name in EXPECTED_FILES:
        shutil.copyfile(model_dir / name, copy / name)
    assert sorted(verify(copy)) == sorted(EXPECTED_FILES)  # a new copy is hashed once
    return copy


def test_the_assembled_model_has_systrans_four_files_and_a_stamp(model_dir):
    assert sorted(p.name for p in model_dir.iterdir()) == sorted([*EXPECTED_FILES, STAMP_NAME])
    assert (model_dir / "model.bin").stat().st_size == 145_217_532
    assert verify(model_dir) == []  # vouched for by the stamp: nothing hashed again


def test_assembling_again_reuses_the_verified_folder(model_dir):
    inode = (model_dir / "model.bin").stat().st_ino

    assert assemble_bundled_model(model_dir) == model_dir

    assert (model_dir / "model.bin").stat().st_ino == inode


def test_one_changed_byte_in_model_bin_is_hashed_again_and_refused(model_copy):
    with (model_copy / "model.bin").open("r+b") as file:
        file.seek(70_000_000)
        byte = file.read(1)
        file.seek(70_000_000)
        file.write(bytes([byte[0] ^ 0xFF]))

    with pytest.raises(ModelRejected, match=r"model\.bin has SHA-256 [0-9a-f]{64}, expected d01c"):
        verify(model_copy)
    with pytest.raises(ModelRejected, match="model.bin"):
        assemble_bundled_model(model_copy)  # an existing folder is never silently rebuilt


def test_a_file_replaced_by_another_with_the_same_size_and_mtime_is_hashed_again(model_copy):
    """The stamp also records the inode: a replacement (cp, rsync, an editor) is not trusted."""
    path = model_copy / "config.json"
    original = path.stat()
    replacement = model_copy / "config.new"
    replacement.write_text(path.read_text().replace('"', "'", 1))
    os.utime(replacement, ns=(original.st_atime_ns, original.st_mtime_ns))
    replacement.replace(path)

    with pytest.raises(ModelRejected, match="config.json has SHA-256"):
        verify(model_copy)


def test_a_truncated_or_missing_file_is_refused_without_hashing(model_copy):
    (model_copy / "vocabulary.txt").write_text("hello")
    with pytest.raises(ModelRejected, match="vocabulary.txt has 5 bytes, expected 459861"):
        verify(model_copy)
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelRejected, match="tokenizer.json is missing"):
        verify(model_copy)


def test_assembly_builds_a_new_folder_in_one_rename(tmp_path):
    folder = tmp_path / "models" / "faster-whisper-base"

    assemble_bundled_model(folder)

    assert sorted(os.listdir(folder.parent)) == ["faster-whisper-base"]  # no temporary left
    assert verify(folder) == []
