"""SQL persistence (SQLite, PostgreSQL) through SQLAlchemy Core; the schema comes from the
Alembic migrations in `migrations/`, applied by `migrate.upgrade`."""
