"""Decision-log sink, like OPA's decision logs: push the audit records to an HTTP endpoint in batches.

The audit database is the queue: the sink reads the records committed after its cursor (`sink_cursors.last_seq`, in
the same database), oldest first, at most `batch` at a time (memory stays bounded however far behind the endpoint
is), POSTs them as a JSON array, and advances the cursor only once the endpoint answered 2xx. A failure (connection,
timeout, any non-2xx) is retried with exponential backoff and jitter, up to `max_backoff` seconds apart (a 429 or
503's Retry-After is honoured within that cap); nothing is skipped. After a restart the sink resumes after the last
acknowledged record, so delivery is at-least-once: a record may be sent twice (the process died between the
endpoint's answer and the cursor's commit), never lost; receivers deduplicate on `id`.

On PostgreSQL, instances sharing a database and a sink name take turns: a push holds the cursor row
(`SELECT ... FOR UPDATE SKIP LOCKED`), so a record is pushed by one instance at a time.

Settings (environment): DFFT_DECISION_LOG_URL (off when unset), DFFT_DECISION_LOG_TOKEN (sent as a bearer token),
DFFT_DECISION_LOG_BATCH (records per push, default 500), DFFT_DECISION_LOG_INTERVAL (seconds between polls when
idle, default 5; every audit commit also wakes the sink), DFFT_DECISION_LOG_MAX_BACKOFF (default 60 s),
DFFT_DECISION_LOG_NAME (the cursor's name, default "default").
"""

from __future__ import annotations

import json
import logging
import random
import threading
from datetime import UTC, datetime
from typing import Any, Optional

import httpx
import sqlalchemy as sa

from .audit import AuditLog
from .db import decisions, sink_cursors

log = logging.getLogger("dfft.api.sink")


class DecisionLogSink:
    def __init__(
        self,
        db: sa.Engine,
        url: str,
        *,
        token: Optional[str] = None,
        batch: int = 500,
        interval: float = 5.0,
        max_backoff: float = 60.0,
        name: str = "default",
        timeout: float = 10.0,
    ):
        self.db, self.url, self.name = db, url, name
        self.batch, self.interval, self.max_backoff = max(1, batch), interval, max_backoff
        headers = {"Content-Type": "application/json", "User-Agent": "dfft-decision-log"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(headers=headers, timeout=timeout)
        self.sent = 0  # records acknowledged by the endpoint (this process)
        self.failures = 0  # failed pushes (this process)
        self.pending = 0  # records committed but not yet acknowledged, as of the last round
        self.last_error: Optional[str] = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dfft-decision-log", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> DecisionLogSink:
        self._thread.start()
        return self

    def wake(self) -> None:
        """New records were committed: push soon (called by the audit writer after each commit)."""
        self._wake.set()

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._http.close()

    # -- the loop -----------------------------------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                pushed, more = self.push_once()
                failures = 0
                if more:
                    continue  # behind: push the next batch at once
            except _Refused as e:
                failures += 1
                self._failed(str(e))
                self._sleep(self._backoff(failures, e.retry_after))
                continue
            except Exception as e:  # noqa: BLE001 -- the endpoint or the database failed: retry later
                failures += 1
                self._failed(f"{type(e).__name__}: {e}"[:300])
                self._sleep(self._backoff(failures, None))
                continue
            self._wake.wait(self.interval)
            self._wake.clear()

    def _failed(self, why: str) -> None:
        self.failures += 1
        if why != self.last_error:
            log.warning("decision log push to %s failed (will retry): %s", self.url, why)
        self.last_error = why

    def _backoff(self, failures: int, retry_after: Optional[float]) -> float:
        delay = retry_after if retry_after is not None else 0.5 * 2 ** min(failures - 1, 16) * (0.5 + random.random())
        return min(delay, self.max_backoff)

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    # -- one round ----------------------------------------------------------------------------------------------
    def push_once(self) -> tuple[int, bool]:
        """Push the next batch after the cursor. Returns (records pushed, whether more are waiting); raises on a
        failed push, leaving the cursor where it was."""
        if self.db.dialect.name == "postgresql":
            with self.db.begin() as c:
                cursor = self._cursor(c, lock=True)
                if cursor is None:  # another instance is pushing for this sink
                    return 0, False
                rows, more = self._read(c, cursor)
                if rows:
                    self._post(rows)
                    self._advance(c, rows[-1]["seq"])
        else:  # SQLite: short transactions (a read snapshot cannot become a write once the audit writer committed)
            with self.db.begin() as c:
                cursor = self._cursor(c, lock=False)
                assert cursor is not None
                rows, more = self._read(c, cursor)
            if rows:
                self._post(rows)
                with self.db.begin() as c:
                    self._advance(c, rows[-1]["seq"])
        self.sent += len(rows)
        self.pending = max(0, self.pending - len(rows))
        self.last_error = None
        return len(rows), more

    def _cursor(self, c: sa.Connection, lock: bool) -> Optional[int]:
        t = sink_cursors.c
        q = sa.select(t.last_seq).where(t.name == self.name)
        if lock:
            q = q.with_for_update(skip_locked=True)
        seq = c.execute(q).scalar_one_or_none()
        if seq is None:
            exists = c.execute(sa.select(sa.func.count()).where(t.name == self.name)).scalar_one()
            if exists:
                return None  # locked by another instance
            c.execute(sink_cursors.insert().values(name=self.name, last_seq=0, updated_at=datetime.now(UTC)))
            if lock:
                c.execute(q)
            return 0
        return int(seq)

    def _read(self, c: sa.Connection, cursor: int) -> tuple[list[dict[str, Any]], bool]:
        q = sa.select(decisions).where(decisions.c.seq > cursor).order_by(decisions.c.seq).limit(self.batch + 1)
        rows = [AuditLog.public(r) for r in c.execute(q).mappings()]
        top = c.execute(sa.select(sa.func.max(decisions.c.seq))).scalar_one_or_none() or 0
        more = len(rows) > self.batch
        self.pending = max(0, top - cursor)  # seqs may have gaps (rolled-back inserts): an upper bound
        return rows[: self.batch], more

    def _post(self, rows: list[dict[str, Any]]) -> None:
        r = self._http.post(self.url, content=json.dumps(rows).encode())
        if not 200 <= r.status_code < 300:
            retry_after = None
            if r.status_code in (429, 503) and r.headers.get("Retry-After", "").isdigit():
                retry_after = float(r.headers["Retry-After"])
            raise _Refused(f"{self.url} answered {r.status_code}", retry_after)

    def _advance(self, c: sa.Connection, seq: int) -> None:
        c.execute(
            sink_cursors.update()
            .where(sink_cursors.c.name == self.name)
            .values(last_seq=seq, updated_at=datetime.now(UTC))
        )

    def cursor(self) -> int:
        """The last acknowledged record's seq (0: none yet)."""
        with self.db.connect() as c:
            seq = c.execute(sa.select(sink_cursors.c.last_seq).where(sink_cursors.c.name == self.name)).scalar()
        return int(seq or 0)


class _Refused(Exception):
    def __init__(self, message: str, retry_after: Optional[float]):
        super().__init__(message)
        self.retry_after = retry_after
