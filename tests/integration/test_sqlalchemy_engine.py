"""Engine configuration: SQLite pragmas and locking, in-memory SQLite, the readiness check."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from adapters.sqlalchemy.engine import check, make_engine
from adapters.sqlalchemy.migrate import upgrade
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from tests.integration.backends import RecordingBus


def test_sqlite_file_connections_enforce_foreign_keys_and_use_wal(sqlite_engine):
    with sqlite_engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert (pragma("foreign_keys"), pragma("journal_mode"), pragma("busy_timeout")) == (1, "wal", 5000)


def test_a_sqlite_unit_of_work_holds_the_write_lock_from_its_start(sqlite_engine):
    entered, writes = threading.Event(), []

    def writer() -> None:
        entered.wait(10)
        with sqlite_engine.begin() as connection:  # waits for the busy timeout, not an error
            connection.execute(text("DELETE FROM users"))
        writes.append(time.monotonic())

    thread = threading.Thread(target=writer)
    thread.start()
    with SqlAlchemyUnitOfWork(sqlite_engine, RecordingBus()):
        entered.set()
        time.sleep(0.3)
        released = time.monotonic()
    thread.join(10)
    assert len(writes) == 1 and writes[0] >= released


def test_in_memory_sqlite_is_one_database_for_every_connection(make_user):
    engine = make_engine("sqlite://")
    upgrade(engine)
    user = make_user()
    with SqlAlchemyUnitOfWork(engine, RecordingBus()) as uow:
        uow.users.add(user)
        uow.commit()
    found = []
    thread = threading.Thread(target=lambda: found.append(_get(engine, user.id)))
    thread.start()
    thread.join(10)
    assert found == [user] and _get(engine, user.id) == user


def test_check_answers_beside_an_open_sqlite_unit_of_work(sqlite_engine):
    with SqlAlchemyUnitOfWork(sqlite_engine, RecordingBus()):
        started = time.monotonic()
        check(sqlite_engine)
        assert time.monotonic() - started < 1


@pytest.mark.postgres
def test_check_reaches_postgres(postgres_engine):
    check(postgres_engine)


def test_check_raises_when_the_database_is_unreachable():
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(OperationalError):
        check(engine)


def _get(engine, user_id):
    with SqlAlchemyUnitOfWork(engine, RecordingBus()) as uow:
        return uow.users.get(user_id)
