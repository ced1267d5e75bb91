import pytest


@pytest.fixture(scope="session")
def faker_seed() -> int:
    """Seeds Faker's pytest fixture: the same data on every run."""
    return 20261121
