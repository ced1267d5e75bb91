from collections.abc import Iterator

import pytest

from adapters.caching import resilient
from tests.support.cluster import Cluster, redis_cluster
from tests.support.sentinel import Group, sentinel_group

# An exiting test process gives the repairs its thousands of apps left pending one try each,
# not EXIT_WAIT seconds (tests leave stores down on purpose)...
resilient.EXIT_WAIT = 0.0


def pytest_sessionfinish() -> None:
    """...or none: the stores a test left down would each say so at exit, in every run."""
    resilient._STORES.clear()


@pytest.fixture(scope="session")
def faker_seed() -> int:
    """Seeds Faker's pytest fixture: the same data on every run."""
    return 20261121


@pytest.fixture(scope="session")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    """The tests' Sentinel group (tests/support/sentinel.py), started when a test first asks
    for it: one per test process (each xdist worker has its own session), stopped at its end.
    Shared: a test may fill its own keys (under a prefix of its own), not fail the master over
    nor stop a server; those take a group of their own (`sentinel_group(tmp_path)`)."""
    with sentinel_group(tmp_path_factory.mktemp("sentinel")) as group:
        yield group


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The tests' Redis Cluster (tests/support/cluster.py: three masters), started when a test
    first asks for it: one per test process, stopped at its end. Shared: a test may fill its own
    keys (under a prefix of its own), not move slots; that takes a cluster of its own."""
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started
