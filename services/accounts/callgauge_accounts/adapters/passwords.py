"""Password hashing, the accounts service's one dependency beyond its event store: the port
(`Passwords`) and its argon2id adapter. Hashing is deliberately slow, so it runs in a worker
thread, never on the event loop."""

from __future__ import annotations

import asyncio
import secrets
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords(Protocol):
    dummy_hash: str  # a hash of nothing anyone knows: checked for an unknown email, so it costs the same

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` is the one hashed; False for any other, or a malformed hash."""


class Argon2Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self.hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False
        return await asyncio.to_thread(check)
