"""open_database does no migration work when the schema is already at head (cold start), and still migrates a
database that is behind or new."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

pytest.importorskip("alembic")

import dfft.api.db as db  # noqa: E402


def test_head_is_read_from_the_migration_files():
    heads = db.head_revisions()
    assert heads is not None and len(heads) == 1
    newest = max(f.name for f in (db.MIGRATIONS / "versions").glob("0*.py"))
    assert heads == {newest.split("_", 1)[0]}


def test_current_schema_skips_alembic_and_an_old_one_is_upgraded(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'dfft.db'}"
    eng = db.create_db_engine(url)
    assert not db.at_head(eng)  # new database: no alembic_version table
    db.open_database(url).dispose()
    assert db.at_head(eng)

    runs: list[object] = []
    real = db.upgrade

    def counting(e: sa.Engine) -> None:
        runs.append(e)
        real(e)

    monkeypatch.setattr(db, "upgrade", counting)
    db.open_database(url).dispose()
    assert runs == [], "a database at head must not run Alembic"

    (head,) = db.head_revisions() or set()
    with eng.begin() as conn:  # pretend the database is one revision behind: the check must not skip it
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": "0000-unknown"})
    assert not db.at_head(eng)
    with eng.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert db.at_head(eng)
    eng.dispose()


def test_an_unreadable_migration_file_means_no_shortcut(tmp_path: Path, monkeypatch):
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "0001_x.py").write_text('revision = "0001"\ndown_revision = None\n')
    (versions / "0002_y.py").write_text("revision = compute()\ndown_revision = '0001'\n")
    monkeypatch.setattr(db, "MIGRATIONS", tmp_path)
    assert db.head_revisions() is None
    (versions / "0002_y.py").write_text('revision: str = "0002"\ndown_revision: str | None = "0001"  # note\n')
    assert db.head_revisions() == {"0002"}
