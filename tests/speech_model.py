"""The bundled speech model for tests: the folder `make install` assembles in the repository's
data folder (`.wecrm/models/faster-whisper-base`, assembled here when missing), linked into a
test's data folder so that each test session does not copy 145 MB. Loading through the link is
still verified like any bundled model (speech/model.py)."""

from __future__ import annotations

from pathlib import Path

from speech.model import assemble_bundled_model

REPO = Path(__file__).resolve().parent.parent
ASSEMBLED_MODEL_DIR = REPO / ".wecrm" / "models" / "faster-whisper-base"


def link_assembled_model(bundled_model_dir: Path) -> Path:
    """Make `bundled_model_dir` (a test's `settings.bundled_model_dir`) the assembled model."""
    assemble_bundled_model(ASSEMBLED_MODEL_DIR)
    if not bundled_model_dir.exists():
        bundled_model_dir.parent.mkdir(parents=True, exist_ok=True)
        bundled_model_dir.symlink_to(ASSEMBLED_MODEL_DIR, target_is_directory=True)
    return bundled_model_dir
