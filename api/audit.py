"""The audit log: every decision is committed to the database before the client sees it.

Writes go through one writer thread that commits whatever is queued as one transaction (group commit): under
concurrent load many decisions share one fsync, and a batch is always one transaction. A request waits for the
commit of its own rows; if the commit fails the request fails (500, no verdict) — an unrecorded decision is
never returned.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, Optional

import sqlalchemy as sa

from ..engine import Decision
from .db import decisions

MAX_GROUP = 20_000   # rows per transaction at most (two full batches)


class AuditUnavailable(RuntimeError):
    """The audit log could not record a decision: the decision must not be returned."""


def new_id() -> str:
    """32 hex digits: microseconds since the epoch, then 72 random bits (time-ordered, like a UUIDv7)."""
    return f"{time.time_ns() // 1000:014x}{os.urandom(9).hex()}"


@dataclass(frozen=True)
class Judged:
    """A decision with its serialised forms, computed once (and memoised by the service for repeated requests)."""

    decision: Decision
    json: str             # the response body
    request_json: str     # the normalised request, canonical JSON
    request_hash: str     # its SHA-256: equal requests have equal hashes however they were spelt
    rule_ids: str         # JSON list of the findings' rule ids

    @classmethod
    def of(cls, decision: Decision) -> "Judged":
        req_json = decision.request.model_dump_json()
        return cls(decision, decision.model_dump_json(), req_json, hashlib.sha256(req_json.encode()).hexdigest(),
                   json.dumps([f.rule_id for f in decision.findings]))


def row_for(j: Judged, caller: str, batch_id: Optional[str] = None, now: Optional[datetime] = None) -> dict[str, Any]:
    """The audit row of a decision."""
    d = j.decision
    return dict(id=new_id(), created_at=now or datetime.now(timezone.utc), caller=caller,
                request_hash=j.request_hash, request=j.request_json, origin=d.request.origin,
                destination=d.request.destination, verdict=d.verdict, rule_ids=j.rule_ids,
                ruleset_version=d.ruleset.version, ruleset_hash=d.ruleset.hash, batch_id=batch_id)


class AuditLog:
    def __init__(self, db: sa.Engine):
        self.db = db
        self._q: queue.Queue[Optional[tuple[list[dict[str, Any]], Future]]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dfft-audit-writer", daemon=True)
        self._thread.start()
        self.transactions = 0

    # -- writing ----------------------------------------------------------------------------------------------
    def submit(self, rows: list[dict[str, Any]]) -> Future:
        """Queue rows; the future completes once they are committed (or fails with AuditUnavailable)."""
        fut: Future = Future()
        if self._stop.is_set() or not self._thread.is_alive():
            fut.set_exception(AuditUnavailable("the audit writer is stopped"))
            return fut
        self._q.put((rows, fut))
        return fut

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
                    self._q.put(None)   # finish this group, then stop
                    break
                group.append(nxt)
                n += len(nxt[0])
            rows = [r for rs, _ in group for r in rs]
            try:
                with self.db.begin() as c:
                    c.execute(decisions.insert(), rows)
                self.transactions += 1
            except Exception as e:   # noqa: BLE001 — reported to every waiting request
                err = AuditUnavailable(f"audit log write failed: {type(e).__name__}")
                for _, fut in group:
                    fut.set_exception(err)
                continue
            for _, fut in group:
                fut.set_result(None)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def close(self, timeout: float = 30.0) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._q.put(None)
        self._thread.join(timeout)

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
            created = created.replace(tzinfo=timezone.utc)
        request = json.loads(r["request"])
        other_date = bool(request.pop("other_date", False))   # set by /v1/check?allow_other_date=true
        return dict(seq=r["seq"], id=r["id"], created_at=created.isoformat(), caller=r["caller"],
                    request_hash=r["request_hash"], request=request, verdict=r["verdict"],
                    rule_ids=json.loads(r["rule_ids"]), ruleset_version=r["ruleset_version"],
                    ruleset_hash=r["ruleset_hash"], batch_id=r["batch_id"], other_date=other_date)


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
