"""Alembic runs as the schema owner; the database URL comes from the one settings object."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from gis.settings import get_settings

url = context.config.attributes.get("url") or get_settings().owner_database_url
engine = create_engine(url)
with engine.connect() as connection:
    # Grants in migrations name the app role from settings, not a hard-coded name.
    connection.execute(text("SELECT set_config('wangge.app_role', :r, false)"), {"r": get_settings().db_app_user})
    connection.commit()
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
