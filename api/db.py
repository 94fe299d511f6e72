"""The service database (SQLAlchemy Core): audit log of decisions and API keys. Schema changes go through Alembic
(`api/migrations`); `open_database` upgrades to the latest revision on start.

SQLite (the default, one file in the data directory) runs in WAL mode with synchronous=FULL: a commit is on disk
(the WAL is fsynced) before it returns, and the service commits every decision before it answers, so a decision a
client has seen survives a killed process or a power cut. PostgreSQL (a URL setting) serves several instances.
"""
from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

metadata = sa.MetaData()

decisions = sa.Table(
    "decisions", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("caller", sa.String(64), nullable=False, index=True),
    sa.Column("request_hash", sa.String(64), nullable=False, index=True),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("origin", sa.String(8), nullable=False),
    sa.Column("destination", sa.String(8), nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("rule_ids", sa.Text, nullable=False),
    sa.Column("ruleset_version", sa.String(64), nullable=False),
    sa.Column("ruleset_hash", sa.String(64), nullable=False),
    sa.Column("batch_id", sa.String(32), nullable=True, index=True),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

MIGRATIONS = Path(__file__).parent / "migrations"


SYNCHRONOUS = ("FULL", "NORMAL")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # FULL (default): a commit has been fsynced, so it survives a power cut as well as a killed process.
    # NORMAL (DFFT_SQLITE_SYNCHRONOUS=NORMAL): in WAL mode a commit is in the OS page cache before it returns, so it
    # survives a killed process (the durability the audit log promises) but not an OS crash or power cut.
    sync = os.environ.get("DFFT_SQLITE_SYNCHRONOUS", "FULL").upper()
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={sync if sync in SYNCHRONOUS else 'FULL'}")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_db_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        eng = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10}, pool_size=8,
                               max_overflow=8, poolclass=sa.pool.QueuePool)
        event.listen(eng, "connect", _sqlite_pragmas)
        return eng
    return sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


def upgrade(eng: sa.Engine) -> None:
    """Bring the schema to the latest Alembic revision (idempotent; safe for concurrent starts on PostgreSQL)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_database(url: str) -> sa.Engine:
    eng = create_db_engine(url)
    upgrade(eng)
    return eng
