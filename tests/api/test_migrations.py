"""The Alembic migrations build exactly the schema the code uses, and upgrading is idempotent."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dfft.api.db import metadata, open_database


def test_migrations_match_models_and_rerun(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    open_database(url).dispose()
    db = open_database(url)  # second start: nothing to do
    with db.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), metadata) == []
        assert c.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0002"
        assert c.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert c.execute(sa.text("PRAGMA synchronous")).scalar_one() == 2  # FULL
