"""The audit log: every decision is committed to the database before the client sees it.

Writes go through one writer thread that commits whatever is queued as one transaction (group commit): under
concurrent load many decisions share one fsync, and a batch is always one transaction. A request waits for the
commit of its own rows; if the commit fails the request fails (500, no verdict) — an unrecorded decision is
never returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Optional

import sqlalchemy as sa

from ..engine import Decision
from .db import decision_labels, decisions

MAX_GROUP = 20_000  # rows per transaction at most (two full batches)
CHUNK = 500  # rows per INSERT statement (13 parameters each: within SQLite's and PostgreSQL's limits)
PROBE_GAP = 1.0  # seconds between two write probes while the audit database fails (readiness, see writable)


class AuditUnavailable(RuntimeError):
    """The audit log could not record a decision: the decision must not be returned."""


_random = random.Random(os.urandom(32))
_random_pid = os.getpid()


def new_id() -> str:
    """32 hex digits: microseconds since the epoch, then 72 random bits (time-ordered, like a UUIDv7). The bits come
    from a generator seeded from os.urandom (once per process: the id needs uniqueness, not secrecy, and a system call
    per decision would give the GIL away on the hot path)."""
    global _random, _random_pid
    if os.getpid() != _random_pid:  # a forked child: its own sequence
        _random, _random_pid = random.Random(os.urandom(32)), os.getpid()
    return f"{time.time_ns() // 1000:014x}{_random.getrandbits(72):018x}"


@dataclass(frozen=True)
class Judged:
    """A decision with its serialised forms, computed once (and memoised by the service for repeated requests)."""

    decision: Decision
    json: str  # the response body
    request_json: str  # the normalised request, canonical JSON
    request_hash: str  # its SHA-256: equal requests have equal hashes however they were spelt
    rule_ids: str  # JSON list of the findings' rule ids

    @classmethod
    def of(cls, decision: Decision) -> Judged:
        req_json = decision.request.model_dump_json()
        return cls(
            decision,
            decision.model_dump_json(),
            req_json,
            hashlib.sha256(req_json.encode()).hexdigest(),
            json.dumps([f.rule_id for f in decision.findings]),
        )


def row_for(
    j: Judged,
    caller: str,
    batch_id: Optional[str] = None,
    now: Optional[datetime] = None,
    labels: Optional[dict[str, str]] = None,
) -> dict[str, Any]:
    """The audit row of a decision. `labels` (the caller's context) are stored beside the request, never in it: the
    request hash and the decision do not depend on them."""
    d = j.decision
    return dict(
        id=new_id(),
        created_at=now or datetime.now(UTC),
        caller=caller,
        request_hash=j.request_hash,
        request=j.request_json,
        origin=d.request.origin,
        destination=d.request.destination,
        verdict=d.verdict,
        rule_ids=j.rule_ids,
        ruleset_version=d.ruleset.version,
        ruleset_hash=d.ruleset.hash,
        batch_id=batch_id,
        labels=json.dumps(labels, sort_keys=True, separators=(",", ":")) if labels else None,
    )


def label_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `decision_labels` rows of audit rows (one per label), for the `?label=key:value` filter."""
    return [
        {"decision_id": r["id"], "key": k, "value": v}
        for r in rows
        if r.get("labels")
        for k, v in json.loads(r["labels"]).items()
    ]


def bind(row: dict[str, Any], cols: list[str], procs: list[tuple[int, Any]]) -> tuple[Any, ...]:
    """The row's values in `cols` order, through the bind processors (index, processor) of the columns that have one."""
    values = [row.get(c) for c in cols]
    for i, p in procs:
        if values[i] is not None:
            values[i] = p(values[i])
    return tuple(values)


def inserts(dialect: Any) -> Optional[tuple[tuple[str, str, list[str], list[tuple[int, Any]]], ...]]:
    """(INSERT ... VALUES, one row's placeholders, columns, bind processors) for decisions and decision_labels, or None
    where the dialect's parameter style is not a positional one this module writes (qmark, format, pyformat)."""
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if mark is None:
        return None
    out = []
    for table in (decisions, decision_labels):
        cols = [c for c in table.c if c.name != "seq"]
        sql = (
            f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
            f"({', '.join(dialect.identifier_preparer.format_column(c) for c in cols)}) VALUES "
        )
        one = f"({', '.join([mark] * len(cols))})"
        procs = [(i, c.type.dialect_impl(dialect).bind_processor(dialect)) for i, c in enumerate(cols)]
        out.append((sql, one, [c.name for c in cols], [(i, p) for i, p in procs if p is not None]))
    return tuple(out)


class AuditLog:
    def __init__(self, db: sa.Engine, probe_interval: float = 10.0, thread: bool = True):
        self.db = db
        # readiness (see writable): the outcome of the last write to the audit database, by a commit or a probe
        self.probe_interval = probe_interval
        self.last_error: Optional[str] = None
        self._last_write = 0.0  # time.monotonic() of the last outcome
        self._probe_lock = threading.Lock()
        self._q: queue.Queue[Optional[tuple[list[dict[str, Any]], Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dfft-audit-writer", daemon=True)
        self.transactions = 0
        self._queued = 0  # rows submitted and not yet committed (or failed): the audit queue's depth
        self._queued_lock = threading.Lock()
        self.on_commit: list[Any] = []  # called (no arguments) after each commit, e.g. the decision-log sink's wake
        self.on_group: list[Any] = []  # called (no arguments) after each group, committed or failed (api/writer.py)
        self._inserts = inserts(db.dialect)
        self._conn: Any = None  # the writer thread's DB-API connection (see _insert)
        if thread:  # else the owner commits with write() (the audit writer process, api/writer.py)
            self._thread.start()

    # -- writing ----------------------------------------------------------------------------------------------
    def submit(self, rows: list[dict[str, Any]]) -> Future:
        """Queue rows; the future completes once they are committed (or fails with AuditUnavailable)."""
        fut: Future = Future()
        self.enqueue(rows, fut)
        return fut

    def enqueue(self, rows: list[dict[str, Any]], waiter: Any) -> None:
        """Queue rows; `waiter.set_result(None)` once they are committed, `waiter.set_exception(AuditUnavailable)`
        if they cannot be (a Future, or the audit writer process's acknowledgement of a worker's rows)."""
        if self._stop.is_set() or not self._thread.is_alive():
            waiter.set_exception(AuditUnavailable("the audit writer is stopped"))
            return
        with self._queued_lock:
            self._queued += len(rows)
        self._q.put((rows, waiter))

    async def commit(self, rows: list[dict[str, Any]]) -> None:
        """Queue rows and wait (without blocking the event loop) for their commit; raises AuditUnavailable."""
        import asyncio

        await asyncio.wrap_future(self.submit(rows))

    def start(self, loop: Any) -> None:
        """Called with the app's event loop when its lifespan starts (this writer's thread runs already)."""

    def queued(self) -> int:
        """Rows waiting for their commit (the audit queue's depth)."""
        return self._queued

    def record(self, rows: list[dict[str, Any]], timeout: float = 60.0) -> None:
        self.submit(rows).result(timeout=timeout)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            group = [item]
            n = len(item[0])
            while n < MAX_GROUP:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._q.put(None)  # finish this group, then stop
                    break
                group.append(nxt)
                n += len(nxt[0])
            rows = [r for rs, _ in group for r in rs]
            try:
                self._insert(rows, label_rows(rows))
                self.transactions += 1
                self._wrote(None)
            except Exception as e:  # noqa: BLE001 — reported to every waiting request
                self._wrote(f"{type(e).__name__}: {e}"[:500])
                err = AuditUnavailable(f"audit log write failed: {type(e).__name__}")
                self._done(len(rows))
                for _, fut in group:
                    fut.set_exception(err)
                self._grouped()
                continue
            self._done(len(rows))
            for _, fut in group:
                fut.set_result(None)
            for listener in self.on_commit:
                with contextlib.suppress(Exception):  # a listener never fails the audit writer
                    listener()
            self._grouped()

    def _grouped(self) -> None:
        for listener in self.on_group:
            with contextlib.suppress(Exception):
                listener()

    def write(self, rows: list[dict[str, Any]]) -> Optional[str]:
        """Commit rows (and their labels) in one transaction now, in the calling thread: None, or why it failed."""
        try:
            self._insert(rows, label_rows(rows))
        except Exception as e:  # noqa: BLE001 — reported to every waiting request
            self._wrote(f"{type(e).__name__}: {e}"[:500])
            return f"audit log write failed: {type(e).__name__}"
        self.transactions += 1
        self._wrote(None)
        return None

    def _insert(self, rows: list[dict[str, Any]], labelled: list[dict[str, Any]]) -> None:
        """Insert rows (and their labels) in one transaction: one multi-row INSERT per table (per CHUNK rows) through
        the DB-API, with the dialect's own bind processors (the values stored are those SQLAlchemy would store), on a
        connection this thread keeps. This thread shares the GIL with the event loop, and each call into the database
        gives the GIL away and must win it back from a busy loop (up to the switch interval): one statement per
        table and one commit per group, instead of one statement per row and a pool checkout, keep those round trips
        (and the CPU, about a third of a SQLAlchemy Core insert per row) small. Dialects with another parameter style
        go through SQLAlchemy."""
        if self._inserts is None:
            with self.db.begin() as c:
                c.execute(decisions.insert(), rows)
                if labelled:
                    c.execute(decision_labels.insert(), labelled)
            return
        fresh = self._conn is None
        if fresh:
            self._conn = self.db.raw_connection()
        raw = self._conn
        committing = False
        try:
            cur = raw.cursor()
            for (sql, one, cols, procs), items in zip(self._inserts, (rows, labelled), strict=True):
                for i in range(0, len(items), CHUNK):
                    part = items[i : i + CHUNK]
                    cur.execute(sql + ", ".join([one] * len(part)), [v for r in part for v in bind(r, cols, procs)])
            cur.close()
            committing = True
            raw.commit()
        except Exception:
            self._conn = None
            with contextlib.suppress(Exception):
                raw.rollback()
            with contextlib.suppress(Exception):
                raw.invalidate()  # a connection that failed is not reused
            if fresh or committing:
                raise  # the outcome of a failed commit is unknown: never written twice
            self._insert(rows, labelled)  # a kept connection gone stale (the database restarted): once, on a new one

    def _done(self, n: int) -> None:
        with self._queued_lock:
            self._queued -= n

    def _wrote(self, error: Optional[str]) -> None:
        self.last_error, self._last_write = error, time.monotonic()

    def probe(self) -> Optional[str]:
        """Commit a write that changes nothing (`UPDATE alembic_version SET version_num = version_num`: on SQLite and
        PostgreSQL alike it writes and syncs like an audit commit, on a one-row table every instance has). Returns
        None when it committed, else the error."""
        try:
            with self.db.begin() as c:
                c.execute(sa.text("UPDATE alembic_version SET version_num = version_num"))
            self._wrote(None)
        except Exception as e:  # noqa: BLE001
            self._wrote(f"{type(e).__name__}: {e}"[:500])
        return self.last_error

    def writable(self) -> Optional[str]:
        """Can a decision be audited now? None if so, else why not. Trusts the outcome of the last write (a decision's
        commit or a probe) for `probe_interval` seconds while it succeeded; after a failure, or once that is older,
        probes (at most one probe at a time; meanwhile the last outcome stands). So a full disk or a read-only
        database turns readiness off at the first failed commit, or within probe_interval when idle, and back on
        as soon as a write succeeds again."""
        since = time.monotonic() - self._last_write
        if since < (PROBE_GAP if self.last_error else self.probe_interval):
            return self.last_error
        if not self._probe_lock.acquire(blocking=False):
            return self.last_error
        try:
            return self.probe()
        finally:
            self._probe_lock.release()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def close(self, timeout: float = 30.0) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._q.put(None)
        self._thread.join(timeout)
        if not self._thread.is_alive() and self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()  # back to the pool
            self._conn = None

    # -- reading ----------------------------------------------------------------------------------------------
    @staticmethod
    def _filtered(q: sa.Select, f: dict[str, Any]) -> sa.Select:
        c = decisions.c
        for field in ("verdict", "origin", "destination", "caller", "request_hash", "ruleset_hash", "batch_id"):
            if f.get(field) is not None:
                q = q.where(getattr(c, field) == f[field])
        if f.get("since") is not None:
            q = q.where(c.created_at >= f["since"])
        if f.get("until") is not None:
            q = q.where(c.created_at < f["until"])
        if f.get("after") is not None:
            q = q.where(c.seq > f["after"])
        for key, value in f.get("labels") or ():
            lab = decision_labels.c
            q = q.where(
                c.id.in_(sa.select(lab.decision_id).where(lab.key == key, lab.value == value).scalar_subquery())
            )
        return q

    def query(self, filters: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        q = self._filtered(sa.select(decisions), filters).order_by(decisions.c.seq).limit(limit)
        with self.db.connect() as c:
            return [self.public(r) for r in c.execute(q).mappings()]

    def export(self, filters: dict[str, Any], chunk: int = 1000) -> Iterator[dict[str, Any]]:
        """Every matching record, oldest first, read in keyset-paginated chunks (constant memory)."""
        f = dict(filters)
        while True:
            rows = self.query(f, chunk)
            yield from rows
            if len(rows) < chunk:
                return
            f["after"] = rows[-1]["seq"]

    def count(self) -> int:
        with self.db.connect() as c:
            return c.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one()

    @staticmethod
    def public(r: Any) -> dict[str, Any]:
        created = r["created_at"]
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        request = json.loads(r["request"])
        other_date = bool(request.pop("other_date", False))  # set by /v1/check?allow_other_date=true
        return dict(
            seq=r["seq"],
            id=r["id"],
            created_at=created.isoformat(),
            caller=r["caller"],
            request_hash=r["request_hash"],
            request=request,
            verdict=r["verdict"],
            rule_ids=json.loads(r["rule_ids"]),
            ruleset_version=r["ruleset_version"],
            ruleset_hash=r["ruleset_hash"],
            batch_id=r["batch_id"],
            labels=json.loads(r["labels"]) if r["labels"] else {},
            other_date=other_date,
        )


class DatabaseSink:
    """An audit sink for `dfft.guard` and the Airflow provider in in-process mode: every decision they take is written
    to the API's audit database (same table and rows as the API's own checks), committed before the guard returns.

    Configure it as `audit=DatabaseSink()` or, by name, `audit="dfft.api.audit:database_sink"` (settings from
    DFFT_DATABASE_URL / DFFT_DATA_DIR, like `dfft serve`). A guard outcome without a decision (engine or API
    unreachable) has nothing to record and is skipped; the guard itself fails closed."""

    def __init__(self, url: Optional[str] = None, caller: str = "dfft.guard"):
        from .db import open_database
        from .settings import Settings

        self.log = AuditLog(open_database(url or Settings().url))
        self.caller = caller

    def __call__(self, record: dict[str, Any]) -> None:
        if record.get("decision") is None:
            return
        decision = Decision.model_validate(record["decision"])
        ctx = record.get("context") or {}
        where = "/".join(str(ctx[k]) for k in ("dag_id", "task_id") if ctx.get(k))
        self.log.record([row_for(Judged.of(decision), f"{self.caller}:{where}" if where else self.caller)])


_default_sink: Optional[DatabaseSink] = None
_default_lock = threading.Lock()


def database_sink(record: dict[str, Any]) -> None:
    """The process-wide DatabaseSink, created on first use (for `audit="dfft.api.audit:database_sink"`)."""
    global _default_sink
    with _default_lock:
        if _default_sink is None:
            _default_sink = DatabaseSink()
    _default_sink(record)
