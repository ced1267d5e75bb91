"""CACHE_URL's Sentinel form: what a URL names, and the settings' clear refusal of a malformed one."""

from __future__ import annotations

import pytest

from adapters import redis as redis_store
from adapters.redis import stores
from adapters.redis.cluster_client import ClusterClient
from adapters.redis.connection import SentinelGroup, cluster_nodes, is_sentinel, sentinel_group
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


def test_a_cluster_url_names_its_startup_nodes():
    assert cluster_nodes("redis+cluster://:pw@a:7000,[::1]:7001,c:7002") == (
        ("a", 7000),
        ("::1", 7001),
        ("c", 7002),
    )
    assert cluster_nodes("rediss+cluster://a:7000/") == (("a", 7000),)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://a:7000/2", "no database"),
        ("redis+cluster://a:7000?x=1", "no database"),
        ("redis+cluster://a", "host:port"),
        ("redis://a:7000", "not a Cluster URL"),
    ],
)
def test_a_malformed_cluster_url_says_what_is_wrong(url, says):
    with pytest.raises(ValueError, match=says):
        cluster_nodes(url)


def test_a_cluster_url_selects_the_redis_adapters_and_a_malformed_one_is_refused():
    settings = config.load({"CACHE_URL": "redis+cluster://a:7000,b:7001"})
    assert settings["cache"]["backend"] == "redis"
    with pytest.raises(config.ConfigError) as refused:
        config.load({"CACHE_URL": "redis+cluster://a:7000/0"})
    assert "a Cluster URL names its nodes only" in str(refused.value)


def test_a_cluster_client_is_made_at_first_use_not_at_start():
    """A Cluster down when the service starts skips the cache (an error at its first use, which
    the resilient decorators meet as an outage); it does not stop the service."""
    client = stores.client("redis+cluster://127.0.0.1:1,127.0.0.1:2", socket_timeout=0.2)
    assert isinstance(client, ClusterClient)
    with pytest.raises(redis_store.ERRORS):
        client.client.ping()
    with pytest.raises(redis_store.ERRORS):  # and the next use tries again
        client.client.ping()
