"""The model-based test (tests/model_based/machine.py) on the in-memory adapters, and on
PostgreSQL and Redis with more examples."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model_based.machine import ServiceMachine
from tests.model_based.service import Service, postgres_redis_service


class OnMemory(ServiceMachine):
    def make_service(self) -> Service:
        return Service()


class OnPostgresRedis(ServiceMachine):
    def make_service(self) -> Service:
        return postgres_redis_service()


def test_on_the_in_memory_adapters():
    run_state_machine_as_test(
        OnMemory, settings=settings(max_examples=40, stateful_step_count=40, deadline=None)
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_on_postgresql_and_redis():
    run_state_machine_as_test(
        OnPostgresRedis,
        settings=settings(
            max_examples=150,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
