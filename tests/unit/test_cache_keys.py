"""The key builder: one owner for every key, and no personal data in any of them."""

from __future__ import annotations

import hashlib
from uuid import UUID

from adapters.caching import keys
from domain.users.queries import PageRequest, UserFilter

USER_ID = UUID("8d2c7e0a-7c1b-4c1e-9d59-0f4b1b2a6f10")


def test_user_keys_and_tags() -> None:
    assert keys.user(USER_ID) == f"user.{USER_ID}"
    assert keys.user_tags(USER_ID) == ("user", f"user.{USER_ID}")


def test_email_key_is_the_sha256_of_the_lower_cased_address_never_the_address() -> None:
    key = keys.user_email("  Ann.Lee@Example.COM ")
    assert key == "user.email." + hashlib.sha256(b"ann.lee@example.com").hexdigest()
    assert "ann" not in key.lower() and "example" not in key.lower()
    assert keys.user_email("ann.lee@example.com") == key
    assert keys.user_email_tags("ann.lee@example.com") == ("user", "user.email", key)


def test_collection_keys_depend_on_every_argument_and_hide_the_email_filter() -> None:
    base = keys.user_collection(UserFilter(email="ann@example.com"), PageRequest(1, 20))
    assert base.startswith("user.collection.") and "ann" not in base
    variants = {
        keys.user_collection(UserFilter(email="bob@example.com"), PageRequest(1, 20)),
        keys.user_collection(UserFilter(email="ann@example.com", confirmed=True), PageRequest(1, 20)),
        keys.user_collection(UserFilter(email="ann@example.com"), PageRequest(2, 20)),
        keys.user_collection(UserFilter(email="ann@example.com"), PageRequest(1, 21)),
        keys.user_collection(UserFilter(), PageRequest(1, 20)),
    }
    assert base not in variants and len(variants) == 5
    assert keys.user_collection(UserFilter(email="ann@example.com"), PageRequest(1, 20)) == base
    assert keys.user_collection_tags() == ("user.collection",)


def test_no_other_module_builds_a_cache_key() -> None:
    """Every key string comes from adapters.caching.keys: no other source file spells one."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("app", "adapters", "domain", "ports")
        for path in (root / folder).rglob("*.py")
        if path.name != "keys.py" and any(s in path.read_text() for s in ('"user.', 'f"user.', "'user."))
    ]
    assert offenders == []
