"""One contract for PasswordHasher (ports/password_hasher.py) on Argon2PasswordHasher: a hash
verifies its password and no other, a wrong password or a malformed hash is False and never
an exception, hashes are salted, and needs_rehash tells a hash made with other parameters."""

from __future__ import annotations

import pytest
from faker import Faker

from adapters.security import Argon2PasswordHasher
from tests import factories
from tests.contracts.password_hasher.conftest import HasherBackend

ODD_PASSWORDS = ["", " ", "é", "e\u0301", "密码🔑", "a\x00b", "x" * 10_000, "$argon2id$v=19$m=8,t=1,p=1$"]


@pytest.fixture
def password(faker: Faker) -> str:
    return factories.password(faker)


def test_a_hash_verifies_its_password(backend: HasherBackend, password: str):
    hashed = backend.hasher.hash(password)

    assert isinstance(hashed, str) and password not in hashed
    assert backend.hasher.verify(hashed, password) is True


@pytest.mark.parametrize("password", ODD_PASSWORDS, ids=range(len(ODD_PASSWORDS)))
def test_any_password_hashes_and_verifies(backend: HasherBackend, password: str):
    hashed = backend.hasher.hash(password)
    assert backend.hasher.verify(hashed, password) is True
    assert backend.hasher.verify(hashed, password + "x") is False


def test_a_wrong_password_is_false(backend: HasherBackend, password: str, faker: Faker):
    hashed = backend.hasher.hash(password)
    wrong = [
        "",
        password[:-1],
        password + " ",
        password.upper() if password.upper() != password else password.lower(),
        " " + password,
        factories.password(faker),
        hashed,  # the hash itself
    ]
    for attempt in wrong:
        assert backend.hasher.verify(hashed, attempt) is False, attempt


def test_a_wrong_password_that_cannot_be_encoded_is_false(backend: HasherBackend, password: str):
    hashed = backend.hasher.hash(password)
    assert backend.hasher.verify(hashed, password + "\ud800") is False


def test_hashes_are_salted(backend: HasherBackend, password: str):
    hashes = {backend.hasher.hash(password) for _ in range(5)}

    assert len(hashes) == 5
    assert all(backend.hasher.verify(hashed, password) for hashed in hashes)


def malformed(hashed: str) -> list[str]:
    body = hashed.rsplit("$", 1)[0]
    return [
        "",
        "x",
        "$",
        "$argon2id$",
        hashed[:-8],  # truncated
        hashed[:-1] + ("A" if hashed[-1] != "A" else "B"),  # another digest
        body + "$!!not-base64!!",
        hashed.replace("$argon2id$", "$argon2x$"),
        hashed.replace("$v=19$", "$v=99$"),
        hashed.replace("m=", "m=x"),
        "$2b$12$" + "a" * 53,  # bcrypt
        "pbkdf2_sha256$600000$salt$hash",
        "$argon2id$not-a-real-hash",  # the factories' users
        hashed * 2,
    ]


def test_a_malformed_hash_is_false(backend: HasherBackend, password: str):
    hashed = backend.hasher.hash(password)
    for bad in malformed(hashed):
        assert backend.hasher.verify(bad, password) is False, bad


@pytest.mark.parametrize("where", ["end", "parameters", "surrogate"])
def test_a_hash_with_a_non_ascii_character_is_false(backend: HasherBackend, password: str, where: str):
    hashed = backend.hasher.hash(password)
    bad = {
        "end": hashed + "é",
        "parameters": hashed.replace("$v=19$", "$v=19é$"),
        "surrogate": "\ud800",
    }[where]
    assert backend.hasher.verify(bad, password) is False


def test_a_hash_made_with_other_parameters_still_verifies(backend: HasherBackend, password: str):
    """Old hashes keep working when the parameters are tuned: they are rehashed on login."""
    old = backend.make(time_cost=3, memory_cost=32).hash(password)
    assert backend.hasher.verify(old, password) is True
    assert backend.hasher.verify(old, password + "x") is False


def test_a_hash_made_with_these_parameters_needs_no_rehash(backend: HasherBackend, password: str):
    hashed = backend.hasher.hash(password)
    assert backend.hasher.needs_rehash(hashed) is False
    assert backend.make().needs_rehash(hashed) is False  # another worker, the same settings


@pytest.mark.parametrize("parameter", ["time_cost", "memory_cost", "parallelism"])
def test_a_hash_made_with_other_parameters_needs_a_rehash(
    backend: HasherBackend, password: str, parameter: str
):
    # Enough memory for two lanes (argon2 wants 8 KiB a lane), so that only `parameter` differs.
    base = {**backend.parameters, "memory_cost": max(backend.parameters["memory_cost"], 16)}
    other = {
        "time_cost": base["time_cost"] + 1,
        "memory_cost": base["memory_cost"] * 2,
        "parallelism": 2 if base["parallelism"] == 1 else 1,
    }[parameter]
    before, after = backend.make(**base), backend.make(**{**base, parameter: other})
    hashed = before.hash(password)

    assert before.needs_rehash(hashed) is False
    assert after.needs_rehash(hashed) is True
    assert before.needs_rehash(after.hash(password)) is True
    assert after.needs_rehash(after.hash(password)) is False


def test_a_hasher_is_hashable_and_keeps_its_hash(backend: HasherBackend):
    """The login handler remembers its decoy hash per hasher."""
    remembered = {backend.hasher: "decoy"}
    assert remembered[backend.hasher] == "decoy"
    assert hash(backend.hasher) == hash(backend.hasher)


# --- argon2 specifics -----------------------------------------------------------------------


def test_hashes_are_argon2id_in_the_phc_format_with_the_given_parameters(backend: HasherBackend):
    p = backend.parameters
    hashed = backend.hasher.hash("secret")
    assert hashed.startswith(f"$argon2id$v=19$m={p['memory_cost']},t={p['time_cost']},p={p['parallelism']}$")


def test_without_parameters_argon2_cffis_defaults_are_used():
    import argon2

    defaults = Argon2PasswordHasher()
    reference = argon2.PasswordHasher()
    assert defaults.needs_rehash(reference.hash("x")) is False
    assert Argon2PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).needs_rehash(reference.hash("x"))
