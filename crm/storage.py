"""Where uploaded files live: a folder on disk by default, behind a small interface."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Protocol


class FileStore(Protocol):
    def save(self, data: bytes, *, suffix: str) -> tuple[str, str]:
        """Store bytes; return (storage key, sha256)."""

    def path(self, key: str) -> Path:
        """The local path of a stored file."""

    def delete(self, key: str) -> None:
        """Remove a stored file if it is there."""


class DiskFileStore:
    """Files under a root folder, sharded by the first two hex digits of a random name."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, data: bytes, *, suffix: str) -> tuple[str, str]:
        name = uuid.uuid4().hex
        key = f"{name[:2]}/{name}{suffix.lower()}"
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        os.replace(partial, target)  # never leave half a file under the final name
        return key, hashlib.sha256(data).hexdigest()

    def path(self, key: str) -> Path:
        resolved = (self.root / key).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise ValueError("storage key escapes the store")
        return resolved

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
