"""Alembic environment: runs on the connection lms.migrate hands it."""
from alembic import context

import lms.models  # noqa: F401  (registers every table)
from lms.db import Base

target_metadata = Base.metadata
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
