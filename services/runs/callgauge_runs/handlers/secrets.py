"""Credential-pool passwords at rest: Fernet (AES-128-CBC + HMAC-SHA256) with the runs service's
secrets key. Events and the relayed Kafka records carry only the ciphertext; the plaintext leaves
the service only through GetRunCredentials (to the media-engine)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_FILE = "runs-secrets.key"


class Secrets:
    def __init__(self, keys: list[bytes]) -> None:
        # The first key encrypts; every key decrypts (rotate by putting a new key first).
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str | None:
        """The plaintext, or None when no key of ours made this token."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            return None


def load_secrets(configured: str, data_dir: Path) -> Secrets:
    """`configured`: comma-separated Fernet keys (CALLGAUGE_SECRETS_KEY). Unset: the key in
    `<data_dir>/runs-secrets.key`, generated (mode 0600) on first use."""
    if configured.strip():
        return Secrets([k.strip().encode() for k in configured.split(",") if k.strip()])
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
    return Secrets([path.read_bytes().strip()])
