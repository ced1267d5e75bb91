"""The migrations build exactly the schema of adapters/sqlalchemy/tables.py, and undo it."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.migrate import downgrade, upgrade
from adapters.sqlalchemy.tables import metadata
from tests.integration.backends import postgres_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_engine(request, tmp_path):
    """An engine on an empty database."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    else:
        engine = make_engine(postgres_url(request.getfixturevalue("postgres_schema")()))
    yield engine
    engine.dispose()


def differences(engine: Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def test_migrated_schema_matches_the_tables(fresh_engine):
    upgrade(fresh_engine)
    assert differences(fresh_engine) == []


def test_an_empty_database_differs_from_the_tables(fresh_engine):
    # Guards the test above: the comparison does see a missing schema.
    assert {diff[0] for diff in differences(fresh_engine)} == {"add_table", "add_index"}


def test_upgrade_is_idempotent_and_downgrade_removes_everything(fresh_engine):
    upgrade(fresh_engine)
    upgrade(fresh_engine)
    assert {"users", "account_tokens"} <= set(inspect(fresh_engine).get_table_names())
    downgrade(fresh_engine, "base")
    assert set(inspect(fresh_engine).get_table_names()) == {"alembic_version"}
