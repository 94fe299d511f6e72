"""Alembic environment: run with a connection passed in `config.attributes['connection']` (see api/db.py), or
stand-alone with `alembic -x url=... upgrade head` from this folder's parent config."""

import sqlalchemy as sa
from alembic import context

from dfft.api.db import lock_for_migrations, metadata

config = context.config
conn = config.attributes.get("connection")

if conn is None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: pass -x url=... or set sqlalchemy.url")
    engine = sa.create_engine(url)
    with engine.begin() as c:
        lock_for_migrations(c)
        context.configure(connection=c, target_metadata=metadata, render_as_batch=True)
        context.run_migrations()
else:
    lock_for_migrations(conn)
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
