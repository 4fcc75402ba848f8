"""Alembic environment: runs on the connection that `plantwarden.core.migrate` hands over.

Migrations define their tables with plain `sqlalchemy` constructs and never import domain
models, so that an old migration keeps meaning what it meant when it was written.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
