"""The stand-in for Tencent's Finance SDK: build it, and write the archive it serves.

`build_standin` compiles ``finance_sdk_standin.c`` with the system compiler into a shared
library that `wecom.finance_sdk.FinanceSdk` loads like the real one. `StandinArchive` writes
the file the stand-in reads (its path goes in ``$FINANCE_STANDIN_ARCHIVE``): records encrypted
the way WeCom does it — a random key RSA-encrypted (PKCS#1 v1.5) with the public key of its
``publickey_ver`` — except that the message cipher is the stand-in's own (XOR with the random
key, hex-encoded), which its DecryptData reverses.
"""

from __future__ import annotations

import base64
import ctypes
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

SOURCE = Path(__file__).with_name("finance_sdk_standin.c")
ARCHIVE_ENV = "FINANCE_STANDIN_ARCHIVE"
MAGIC = b"STANDIN:"  # the stand-in's DecryptData fails with 10006 when this is not found


def build_standin(directory: Path) -> Path:
    """Compile the stand-in into ``directory``; the compiler's complaint on failure."""
    library = directory / "libWeWorkFinanceSdk_C.so"
    command = ["cc", "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(library), str(SOURCE)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"building the Finance SDK stand-in failed:\n{result.stderr}")
    return library


def live_objects(library: Path) -> int:
    """SDK handles, slices and media data the stand-in handed out and nobody freed."""
    return int(ctypes.CDLL(str(library)).StandinLiveObjects())


def last_proxy(library: Path) -> tuple[str, str]:
    """The proxy and proxy password of the stand-in's last network call."""
    lib = ctypes.CDLL(str(library))
    lib.StandinLastProxy.restype = lib.StandinLastPasswd.restype = ctypes.c_char_p
    return lib.StandinLastProxy().decode(), lib.StandinLastPasswd().decode()


def encrypt_record(
    seq: int,
    message: dict[str, Any],
    *,
    public_key: RSAPublicKey,
    publickey_ver: int,
) -> dict[str, Any]:
    """A GetChatData record holding ``message``, as WeCom would send it to this key version."""
    random_key = secrets.token_hex(16).encode()  # printable, like WeCom's
    plain = MAGIC + json.dumps(message, ensure_ascii=False).encode()
    cipher = bytes(byte ^ random_key[i % len(random_key)] for i, byte in enumerate(plain))
    return {
        "seq": seq,
        "msgid": message["msgid"],
        "publickey_ver": publickey_ver,
        "encrypt_random_key": base64.b64encode(
            public_key.encrypt(random_key, padding.PKCS1v15())
        ).decode(),
        "encrypt_chat_msg": cipher.hex(),
    }


class StandinArchive:
    """What the stand-in serves: records, media files and injected failures."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "archive.txt"
        self._lines: list[str] = []
        self.save()

    def add_record(self, record: dict[str, Any]) -> None:
        self._lines.append(f"chat {record['seq']} {json.dumps(record)}")
        self.save()

    def add_media(self, sdkfileid: str, data: bytes) -> None:
        blob = self.directory / f"media-{len(self._lines)}.bin"
        blob.write_bytes(data)
        self._lines.append(f"media {sdkfileid} {blob}")
        self.save()

    def fail(self, function: str, code: int) -> None:
        """Make GetChatData or GetMediaData return ``code``."""
        self._lines.insert(0, f"fail {function} {code}")
        self.save()

    def answer_errcode(self, errcode: int, errmsg: str) -> None:
        """Make GetChatData succeed with this errcode in its JSON."""
        self._lines.insert(0, f"errcode {errcode} {errmsg}")
        self.save()

    def save(self) -> None:
        chats = sorted(
            (line for line in self._lines if line.startswith("chat ")),
            key=lambda line: int(line.split(" ", 2)[1]),
        )
        others = [line for line in self._lines if not line.startswith("chat ")]
        self.path.write_text("".join(f"{line}\n" for line in [*others, *chats]))
