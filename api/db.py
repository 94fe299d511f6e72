"""The service database (SQLAlchemy Core): audit log of decisions and API keys. Schema changes go through Alembic
(`api/migrations`); `open_database` upgrades to the latest revision on start.

SQLite (the default, one file in the data directory) runs in WAL mode with synchronous=FULL: a commit is on disk
(the WAL is fsynced) before it returns, and the service commits every decision before it answers, so a decision a
client has seen survives a killed process or a power cut. PostgreSQL (a URL setting) serves several instances.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
from pathlib import Path
from typing import Optional

import sqlalchemy as sa
from sqlalchemy import event

metadata = sa.MetaData()

decisions = sa.Table(
    "decisions",
    metadata,
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
    sa.Column("labels", sa.Text, nullable=True),  # the caller's labels, canonical JSON (migration 0002)
)

# One row per label of a decision, for the `?label=key:value` filter of /v1/decisions (migration 0002).
decision_labels = sa.Table(
    "decision_labels",
    metadata,
    sa.Column("decision_id", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
    sa.Index("ix_decision_labels_key_value", "key", "value"),
)

# How far each decision-log sink has been acknowledged (api/sink.py): it resumes after `last_seq` (migration 0002).
sink_cursors = sa.Table(
    "sink_cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
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


def _private_sqlite_file(path: Path) -> None:
    """Create the data directory 0700 and the database file 0600 (the audit log holds every request): SQLite gives
    its -wal and -shm files the database file's mode, so they are 0600 too. Existing files keep their mode."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)  # mkdir's mode is masked by the umask only towards fewer bits; be explicit
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def create_db_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            _private_sqlite_file(Path(path))
        eng = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10},
            pool_size=8,
            max_overflow=8,
            poolclass=sa.pool.QueuePool,
        )
        event.listen(eng, "connect", _sqlite_pragmas)
        return eng
    return sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


# pg_advisory_xact_lock key taken around migrations (any fixed 64-bit number; this is b"dfftmigr" read as an integer)
MIGRATION_LOCK = int.from_bytes(b"dfftmigr", "big") - 2**63


def lock_for_migrations(conn: sa.Connection) -> None:
    """On PostgreSQL, serialise migrations across instances: several instances starting at once on an empty database
    would otherwise all create `alembic_version` and all but one fail. The lock is a transaction-level advisory lock
    on the connection that runs the migrations: it is released when their transaction commits or rolls back, and an
    instance that waited finds the schema at head and has nothing to do. (SQLite serialises writers by itself.)"""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def upgrade(eng: sa.Engine) -> None:
    """Bring the schema to the latest Alembic revision (idempotent; safe for concurrent starts on PostgreSQL: the
    migrations run under an advisory lock, see lock_for_migrations and migrations/env.py)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_database(url: str) -> sa.Engine:
    eng = create_db_engine(url)
    if not at_head(eng):  # a current schema costs one SELECT at start-up, not an Alembic run
        upgrade(eng)
    return eng


_REVISION_RE = re.compile(r"^(down_)?revision\s*(?::[^=]*)?=\s*(.+?)\s*(?:#.*)?$", re.M)


def head_revisions() -> Optional[set[str]]:
    """The head revision(s) of api/migrations, read from the version files' `revision = "..."` and
    `down_revision = ...` lines without importing Alembic; None when a file does not have that plain form (the
    caller then lets Alembic decide)."""
    revs: set[str] = set()
    downs: set[str] = set()
    for f in (MIGRATIONS / "versions").glob("*.py"):
        if f.name == "__init__.py":
            continue
        found = dict((bool(m.group(1)), m.group(2)) for m in _REVISION_RE.finditer(f.read_text(encoding="utf-8")))
        rev, down = found.get(False), found.get(True)
        if rev is None or down is None:
            return None
        try:
            rev_v, down_v = ast.literal_eval(rev), ast.literal_eval(down)
        except (ValueError, SyntaxError):
            return None
        if not isinstance(rev_v, str):
            return None
        revs.add(rev_v)
        if isinstance(down_v, str):
            downs.add(down_v)
        elif isinstance(down_v, (tuple, list)):
            downs.update(str(d) for d in down_v)
        elif down_v is not None:
            return None
    heads = revs - downs
    return heads or None


def at_head(eng: sa.Engine) -> bool:
    """Whether the database's Alembic revision is already the migrations' head: then open_database does no migration
    work at all (no Alembic import, no lock). Any doubt (no alembic_version table, an unreadable migration file,
    several heads, a revision this code does not know) answers False, and upgrade() runs as before."""
    heads = head_revisions()
    if not heads:
        return False
    try:
        with eng.connect() as conn:
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    except sa.exc.SQLAlchemyError:  # no alembic_version table yet: a new database
        return False
    return set(rows) == heads


# -- the web workbench (dfft.web): accounts, sessions, its audit trail, saved inventories, scenarios, analyses -------
# Defined here, beside the other tables, so that one metadata describes the whole schema (Alembic compares against
# it); only dfft.web reads and writes them. Migration: migrations/versions/0003_web_workbench.py.
web_users = sa.Table(
    "web_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
)

web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

web_events = sa.Table(
    "web_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

web_objects = sa.Table(
    "web_objects",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),  # inventory | scenario | analysis
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # JSON (inventories, analyses) or YAML (scenarios)
    sa.Column("ruleset_version", sa.String(64), nullable=True),
    sa.Column("ruleset_hash", sa.String(64), nullable=True),
    sa.Column("previous_id", sa.String(32), nullable=True),
)


# -- rule-bundle distribution (api/distribution.py): published bundles and the one every instance converges on ------
# `dfft rules publish` stores a validated bundle here; each `dfft serve` polls rule_bundle_active and loads that
# bundle. Migration: migrations/versions/0004_rule_bundles.py.
rule_bundles = sa.Table(
    "rule_bundles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("ruleset_hash", sa.String(64), nullable=False, index=True),  # what decisions carry as ruleset.hash
    sa.Column("content_sha256", sa.String(64), nullable=False, unique=True),  # of the stored files (the archive)
    sa.Column("manifest", sa.Text, nullable=False),  # bundle.yaml's manifest, JSON
    sa.Column("archive", sa.LargeBinary, nullable=False),  # the bundle's files, gzipped canonical JSON
    sa.Column("size", sa.Integer, nullable=False),  # bytes of the files, uncompressed
    sa.Column("published_by", sa.String(128), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
)

rule_bundle_active = sa.Table(
    "rule_bundle_active",
    metadata,
    sa.Column("slot", sa.String(16), primary_key=True),  # one row, "default"
    sa.Column("bundle_id", sa.Integer, sa.ForeignKey("rule_bundles.id"), nullable=False),
    sa.Column("activated_by", sa.String(128), nullable=False),
    sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
)
