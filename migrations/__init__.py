"""Alembic migrations of the srjobs schema, applied by `srjobs migrate`."""
