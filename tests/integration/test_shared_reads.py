"""Read-only units of work inside `shared_reads` share one connection (SQLite file, PostgreSQL
schema), each with its own transaction; units of work that write never do; a failed read is not
shared on; and an uncached GET /api/users/{id} through the hot path checks out one connection,
not two. On PostgreSQL a read-only unit of work runs in autocommit (no BEGIN, no ROLLBACK); on
either database it refuses to write."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

from adapters.sqlalchemy.engine import ReadOnlyViolation
from adapters.sqlalchemy.tables import users
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork, shared_reads
from domain.users.model import User
from tests import factories
from tests.api.conftest import act_as, login
from tests.integration.backends import RecordingBus, app_on_sql

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def engine(request) -> Engine:
    engine = request.getfixturevalue(f"{request.param}_engine")
    if request.param == "postgres":  # the schema lives for the session: start each test empty
        with engine.begin() as connection:
            connection.execute(text("TRUNCATE users CASCADE"))
    return engine


@contextmanager
def checkouts(engine: Engine) -> Iterator[list[object]]:
    """The pool checkouts made inside the block."""
    seen: list[object] = []

    def checkout(dbapi_connection, record, proxy) -> None:
        seen.append(dbapi_connection)

    event.listen(engine, "checkout", checkout)
    try:
        yield seen
    finally:
        event.remove(engine, "checkout", checkout)


def reader(engine: Engine) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(engine, RecordingBus(), read_only=True)


def stored(engine: Engine, user: User) -> User:
    with SqlAlchemyUnitOfWork(engine, RecordingBus()) as uow:
        uow.users.add(user)
        uow.commit()
    return user


def test_reads_inside_the_block_share_one_connection_and_give_it_back(engine, make_user):
    user = stored(engine, make_user())
    with checkouts(engine) as seen, shared_reads(engine):
        with reader(engine) as first:
            assert first.users.get(user.id) == user
        with reader(engine) as second:
            assert second.users.get(user.id) == user
        with shared_reads(engine), reader(engine) as nested:  # joins the outer block
            assert nested.users.get(user.id) == user
    assert len(seen) == 1
    assert engine.pool.checkedout() == 0
    with checkouts(engine) as seen:
        for _ in range(2):
            with reader(engine) as alone:
                alone.users.get(user.id)
    assert len(seen) == 2  # outside a block, each opens its own


def test_each_read_sees_what_committed_before_it_began(engine, make_user):
    """Shared is the connection, not the snapshot: a read that follows a commit (a user loaded
    after the cache's tag versions were read) must see it, or a stale value could be stored."""
    user = stored(engine, make_user())
    with checkouts(engine) as seen, shared_reads(engine):
        with reader(engine) as first:
            assert first.users.get(user.id).initials == user.initials
        with SqlAlchemyUnitOfWork(engine, RecordingBus()) as writer:
            writer.users.get(user.id, lock=True).update(initials="ZZ")
            writer.commit()
        with reader(engine) as second:
            assert second.users.get(user.id).initials == "ZZ"
    assert len(seen) == 2  # the readers' shared connection and the writer's


def test_a_read_inside_a_shared_read_has_its_own_connection(engine, make_user):
    user = stored(engine, make_user())
    with checkouts(engine) as seen, shared_reads(engine), reader(engine) as outer:
        with reader(engine) as inner:
            assert inner.users.get(user.id) == user
        assert outer.users.get(user.id) == user  # its transaction untouched by the inner one's end
    assert len(seen) == 2


def test_nothing_is_opened_when_nothing_reads(engine):
    with checkouts(engine) as seen, shared_reads(engine):
        pass
    assert seen == []


def test_a_unit_of_work_that_writes_is_never_shared(engine, make_user):
    user = make_user()
    with checkouts(engine) as seen, shared_reads(engine):
        with reader(engine) as before:
            assert before.users.get(user.id) is None
        with SqlAlchemyUnitOfWork(engine, RecordingBus()) as writer:
            writer.users.add(user)
            writer.commit()
    assert len(seen) == 2
    with reader(engine) as after:
        assert after.users.get(user.id) == user


def test_a_failed_read_is_not_shared_on(engine, make_user):
    user = stored(engine, make_user())
    with checkouts(engine) as seen, shared_reads(engine):
        with pytest.raises(DBAPIError), reader(engine) as failing:
            failing.users.get(user.id)
            failing._connection.execute(text("SELECT * FROM no_such_table"))
        with reader(engine) as next_one:  # on PostgreSQL a failed transaction refuses everything
            assert next_one.users.get(user.id) == user
    assert len(seen) == 2
    assert engine.pool.checkedout() == 0


def test_a_read_only_unit_of_work_refuses_to_write(engine, make_user, faker):
    user = make_user()
    with reader(engine) as uow, pytest.raises(ReadOnlyViolation):
        uow.users.add(user)
        uow.commit()  # the user's INSERT
    with reader(engine) as uow:
        assert uow.users.get(user.id) is None
    with reader(engine) as uow, pytest.raises(ReadOnlyViolation):  # a repository that writes at once
        uow._connection.execute(users.delete())


@pytest.mark.postgres
def test_a_read_on_postgresql_runs_in_autocommit(postgres_engine):
    statements: list[str] = []

    def before(connection, cursor, statement, *args) -> None:
        statements.append(statement)

    with reader(postgres_engine) as uow:
        assert uow._connection.connection.dbapi_connection.autocommit
        event.listen(postgres_engine, "before_cursor_execute", before)
        try:
            uow._connection.execute(text("SELECT 1"))
            in_transaction = uow._connection.execute(text("SELECT now() = statement_timestamp()")).scalar()
        finally:
            event.remove(postgres_engine, "before_cursor_execute", before)
    assert in_transaction  # each statement its own transaction: now() is the statement's time
    assert len(statements) == 2


@pytest.fixture(params=BACKENDS)
def app(request, tmp_path):
    with app_on_sql(request, tmp_path, CACHE_URL="none") as app:
        yield app


def test_an_uncached_read_checks_out_one_connection(app, faker):
    client = app.test_client()
    data = factories.registration(faker)
    url = client.post("/api/users", json=data).headers["Location"]
    act_as(client, login(client, data["email"], data["password"]))
    engine = app.extensions["container"].storage.engine()
    with checkouts(engine) as seen:
        response = client.get(url)
    assert response.status_code == 200 and response.get_json()["email"] == data["email"]
    assert len(seen) == 1  # the session check and the user, on one connection
