"""Alembic migrations for the coordinator's database (see backend/core/migrate.py and alembic.ini)."""
