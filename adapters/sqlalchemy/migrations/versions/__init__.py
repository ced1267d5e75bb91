"""Revisions, applied in order by `alembic upgrade head`; hand-checked, never edited once released."""
