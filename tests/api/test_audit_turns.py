"""The audit writers of several processes on one SQLite file take turns through an flock beside the database
(api/audit.py, AuditLog._turn): a writer waits for the lock, commits, and lets the next one go."""

from __future__ import annotations

import concurrent.futures
import sqlite3
from datetime import UTC, datetime

import pytest

fcntl = pytest.importorskip("fcntl", reason="flock is POSIX-only: SQLite's own locking serialises writers elsewhere")

from dfft.api.audit import AuditLog, new_id, writer_lock_path  # noqa: E402
from dfft.api.db import open_database  # noqa: E402


def _row() -> dict:
    return dict(
        id=new_id(),
        created_at=datetime.now(UTC),
        caller="test",
        request_hash="0" * 64,
        request="{}",
        origin="JP",
        destination="VN",
        verdict="allowed",
        rule_ids="[]",
        ruleset_version="t",
        ruleset_hash="0" * 64,
        batch_id=None,
        labels=None,
    )


def _count(path) -> int:
    con = sqlite3.connect(path, timeout=10)
    try:
        return con.execute("SELECT count(*) FROM decisions").fetchone()[0]
    finally:
        con.close()


def test_writers_take_turns_through_the_lock_file(tmp_path):
    path = tmp_path / "dfft.db"
    db = open_database(f"sqlite:///{path}")
    log = AuditLog(db)
    try:
        lock = writer_lock_path(db)
        assert lock == f"{path}-audit.lock"
        log.record([_row()], timeout=20)  # the writer opened its lock file
        with open(lock, "a+") as other:  # another process's writer, holding its turn (flock: per open file)
            fcntl.flock(other.fileno(), fcntl.LOCK_EX)
            fut = log.submit([_row()])
            with pytest.raises(concurrent.futures.TimeoutError):
                fut.result(timeout=0.5)  # waits for its turn: not committed while the other writer holds it
            assert _count(path) == 1
            fcntl.flock(other.fileno(), fcntl.LOCK_UN)
            fut.result(timeout=20)  # its turn: committed
        assert _count(path) == 2
    finally:
        log.close()
        db.dispose()


def test_two_writers_on_one_file_commit_every_row(tmp_path):
    path = tmp_path / "dfft.db"
    dbs = [open_database(f"sqlite:///{path}") for _ in range(2)]
    logs = [AuditLog(db) for db in dbs]
    try:
        futures = [logs[i % 2].submit([_row() for _ in range(3)]) for i in range(200)]
        for f in futures:
            f.result(timeout=60)
        assert _count(path) == 600
    finally:
        for log in logs:
            log.close()
        for db in dbs:
            db.dispose()
