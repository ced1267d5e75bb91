"""One contract for TokenGenerator (ports/token_generator.py) on SecretsTokenGenerator: tokens are
unique and URL-safe; a token's digest is the same in every worker, differs from the token and
from other tokens' digests, and any string, even one that cannot be encoded, has one."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.contracts.password_hasher.conftest import TokensBackend

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def test_tokens_are_unique(generator: TokensBackend):
    tokens = [generator.tokens.new() for _ in range(2000)] + [generator.peer.new() for _ in range(2000)]
    assert len(set(tokens)) == len(tokens)


def test_tokens_are_url_safe_and_long_enough_to_guess_never(generator: TokensBackend):
    for _ in range(200):
        token = generator.tokens.new()
        assert URL_SAFE.fullmatch(token), token
        assert quote(token, safe="") == token  # nothing to escape in a link
        assert len(token) >= 43  # 256 bits in base64url


def test_a_digest_is_deterministic_and_the_same_in_every_worker(generator: TokensBackend):
    token = generator.tokens.new()
    assert generator.tokens.digest(token) == generator.tokens.digest(token) == generator.peer.digest(token)


def test_a_digest_differs_from_its_token_and_does_not_contain_it(generator: TokensBackend):
    for _ in range(50):
        token = generator.tokens.new()
        digest = generator.tokens.digest(token)
        assert isinstance(digest, str) and digest != token and token not in digest


def test_different_tokens_have_different_digests(generator: TokensBackend):
    tokens = [generator.tokens.new() for _ in range(1000)]
    near = [tokens[0][:-1] + c for c in "AB"] + [tokens[0] + "x", tokens[0][1:]]
    digests = {generator.tokens.digest(token) for token in tokens + near}
    assert len(digests) == len(set(tokens + near))


ODD = ["", " ", "é", "\x00", "\ud800", "\udfff" + "x" * 100, "x" * 100_000, "token\n"]


@pytest.mark.parametrize("token", ODD, ids=range(len(ODD)))
def test_any_string_has_a_digest_no_new_token_has(generator: TokensBackend, token: str):
    """What a link brings back need not be a token we made; it must digest, not raise."""
    digest = generator.tokens.digest(token)
    assert digest == generator.peer.digest(token)
    assert digest not in {generator.tokens.digest(generator.tokens.new()) for _ in range(20)}


def test_a_digest_is_a_sha256_hex_string(generator: TokensBackend):
    """Adapter specific: the stored column holds 64 hex characters."""
    assert re.fullmatch(r"[0-9a-f]{64}", generator.tokens.digest(generator.tokens.new()))
