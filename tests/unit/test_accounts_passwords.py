"""The accounts service's password adapter (adapters/passwords.py): argon2id hashes that verify
only their own password, a malformed stored hash that verifies nothing (never raises), and a dummy
hash an unknown email is checked against."""

from __future__ import annotations

from argon2 import PasswordHasher

from callgauge_accounts.adapters.passwords import Argon2Passwords


def _cheap() -> Argon2Passwords:
    return Argon2Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


async def test_a_hash_verifies_its_password_only() -> None:
    passwords = _cheap()
    h = await passwords.hash("correct horse battery staple")
    assert h.startswith("$argon2id$") and "correct horse" not in h
    assert await passwords.verify(h, "correct horse battery staple")
    assert not await passwords.verify(h, "Correct horse battery staple")
    assert await passwords.hash("correct horse battery staple") != h  # salted


async def test_a_malformed_hash_verifies_nothing() -> None:
    passwords = _cheap()
    for stored in ("", "not-a-hash", "$argon2id$v=19$m=1024,t=1,p=1$broken"):
        assert not await passwords.verify(stored, "anything")


async def test_the_dummy_hash_is_a_real_hash_of_an_unknown_password() -> None:
    passwords = _cheap()
    assert passwords.dummy_hash.startswith("$argon2id$")
    assert not await passwords.verify(passwords.dummy_hash, "")
