"""CACHE_URL's Sentinel form: what a URL names, and the settings' clear refusal of a malformed one."""

from __future__ import annotations

import pytest

from adapters.redis.connection import SentinelGroup, is_sentinel, sentinel_group
from app import config


def test_a_sentinel_url_names_the_sentinels_the_service_the_database_and_the_credentials():
    url = "rediss+sentinel://app:s%40cret@[::1]:26379,sentinel-2:26380/users/3?sentinel_password=x"
    assert sentinel_group(url) == SentinelGroup(
        sentinels=(("::1", 26379), ("sentinel-2", 26380)),
        service="users",
        db=3,
        username="app",
        password="s@cret",
        sentinel_password="x",
        tls=True,
    )
    assert sentinel_group("redis+sentinel://h:1/users") == SentinelGroup((("h", 1),), "users")
    assert is_sentinel(url) and not is_sentinel("redis://h:1/0")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://h:26379/", "the path must be /service_name or /service_name/db"),
        ("redis+sentinel://h:26379/users/zero", "the path must be /service_name or /service_name/db"),
        ("redis+sentinel://h/users", "each sentinel is host:port"),
        ("redis+sentinel://h:99999/users", "each sentinel is host:port"),
        ("redis+sentinel://h:1/users?password=x", "unknown options ['password']"),
    ],
)
def test_a_malformed_sentinel_url_is_refused_with_what_is_wrong(url, says):
    with pytest.raises(config.ConfigError) as refused:
        config.load({"CACHE_URL": url})
    assert says in str(refused.value) and "CACHE_URL" in str(refused.value)


def test_a_sentinel_url_selects_the_redis_adapters():
    settings = config.load({"CACHE_URL": "redis+sentinel://h:26379,g:26379/users/2"})
    assert settings["cache"]["backend"] == "redis"
