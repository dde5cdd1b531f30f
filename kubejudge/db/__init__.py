"""PostgreSQL, the system of record: models, the async engine, Alembic migrations."""
