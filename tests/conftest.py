from collections.abc import Iterator

import pytest

from tests.support.sentinel import Group, sentinel_group


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
