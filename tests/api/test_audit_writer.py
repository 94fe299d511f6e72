"""The audit writer process (api/writer.py): the service's rows are committed by a process of its own, and a
decision is still returned only after its row is committed. Real processes, a real unix socket, a real uvicorn server
on loopback and real databases (SQLite, PostgreSQL); every wait has a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dfft.api.audit import AuditUnavailable, new_id
from dfft.api.db import open_database
from dfft.api.writer import RemoteAuditLog, WriterProcess, decode_rows, encode_rows

from .conftest import REQ, serve_process, start

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals and unix sockets")

DEADLINE = 60.0  # seconds any wait may take before the test fails (a loaded CI machine)


def wait_for(pred: Any, what: str, seconds: float = DEADLINE) -> None:
    deadline = time.monotonic() + seconds
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def row(caller: str = "tests", labels: str | None = None, **kw: Any) -> dict[str, Any]:
    return dict(
        id=new_id(),
        created_at=datetime.now(UTC),
        caller=caller,
        request_hash="0" * 64,
        request='{"origin":"JP"}',
        origin="JP",
        destination="VN",
        verdict="allowed",
        rule_ids="[]",
        ruleset_version="1",
        ruleset_hash="h" * 64,
        batch_id=None,
        labels=labels,
        **kw,
    )


def test_rows_cross_the_wire_unchanged():
    aware = row(labels='{"team":"x"}')
    naive = {**row(), "created_at": datetime(2026, 1, 2, 3, 4, 5, 678901), "batch_id": "b" * 32}
    old = {**row(), "created_at": datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)}  # before the epoch
    back = decode_rows(encode_rows([aware, naive, old]))
    assert back == [aware, naive, old]
    assert back[0]["created_at"].tzinfo is not None and back[1]["created_at"].tzinfo is None
    with pytest.raises(ValueError):
        decode_rows([("too", "short")])


def writer_for(url: str) -> WriterProcess:
    open_database(url).dispose()  # migrated before the writer starts, as `dfft serve` does
    w = WriterProcess(url, probe_interval=1.0)
    w.start()
    return w


def ids_in(db_file: Path) -> set[str]:
    con = sqlite3.connect(db_file)
    try:
        return {r[0] for r in con.execute("SELECT id FROM decisions")}
    finally:
        con.close()


def test_a_check_waits_for_the_writers_commit_and_fails_closed_when_the_writer_dies(tmp_path):
    """Through a real server whose audit log is a writer process: a check is answered after its row is committed; a
    check whose writer is stopped is not answered, and gets 503 without a verdict when the writer dies; /readyz is
    503 while no writer listens; once the writer is restarted, checks are answered (and recorded) again."""
    data = tmp_path / "data"
    url = f"sqlite:///{(data / 'dfft.db').resolve()}"
    writer = writer_for(url)
    api = None
    try:
        api = start(tmp_path, audit_writer=writer.address)
        wait_for(lambda: api.app.state.audit.alive, "the connection to the writer")
        with api.client() as c:
            r = c.post("/v1/check", json=REQ)
            assert r.status_code == 200, r.text
            assert r.headers["Dfft-Decision-Id"] in ids_in(data / "dfft.db")
            assert c.get("/readyz").status_code == 200

        # the writer stopped (SIGSTOP): the decision is judged but not returned, as its row cannot be committed
        os.kill(writer.proc.pid, signal.SIGSTOP)
        got: list[httpx.Response] = []

        def blocked_check() -> None:
            with api.client() as c:
                got.append(c.post("/v1/check", json={**REQ, "subjects": 7}))

        waiting = threading.Thread(target=blocked_check)
        waiting.start()
        waiting.join(1.5)
        assert waiting.is_alive() and not got, "a decision was returned while its audit row could not be committed"
        # the writer dies: the waiting check fails closed (503, no verdict)
        os.kill(writer.proc.pid, signal.SIGKILL)
        waiting.join(DEADLINE)
        assert not waiting.is_alive()
        (r,) = got
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"].isdigit() and "verdict" not in r.json()
        assert "audit" in r.json()["type"]
        writer.proc.join(10)

        # no writer listening: every check is refused without a verdict and the service is not ready
        with api.client() as c:
            wait_for(lambda: not api.app.state.audit.alive, "the dropped connection")
            r = c.post("/v1/check", json={**REQ, "subjects": 8})
            assert r.status_code == 503 and "verdict" not in r.json(), r.text
            assert c.get("/readyz").status_code == 503

            # restarted (as the supervisor does): the worker reconnects, and checks are recorded again
            writer.started = 0.0
            assert writer.check() is not None and writer.proc.is_alive()
            wait_for(lambda: c.get("/readyz").status_code == 200, "readiness after the writer's restart")
            r = c.post("/v1/check", json={**REQ, "subjects": 9})
            assert r.status_code == 200, r.text
            assert r.headers["Dfft-Decision-Id"] in ids_in(data / "dfft.db")
            batch = c.post("/v1/check/batch", json={"requests": [{**REQ, "subjects": s} for s in range(10, 40)]})
            assert batch.status_code == 200, batch.text
            assert {x["decision_id"] for x in batch.json()["results"]} <= ids_in(data / "dfft.db")
    finally:
        if api is not None:
            api.stop()
        writer.stop()
    assert not Path(writer.dir).exists()


class LoopThread:
    """An event loop on a thread of its own (as each worker's uvicorn runs one), for RemoteAuditLog."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, fn: Any, *args: Any) -> Any:
        done: Future = Future()
        self.loop.call_soon_threadsafe(lambda: done.set_result(fn(*args)))
        return done.result(timeout=DEADLINE)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE)
        self.loop.close()


@pytest.mark.parametrize("delay_ms", ["0", "2"])
def test_many_clients_share_one_writer_and_every_acknowledged_row_is_committed(tmp_path, monkeypatch, delay_ms):
    """Four workers' audit logs (as four `dfft serve` workers would hold) submit concurrently to one writer: every
    acknowledged row is in the database, labels included, and the writer groups rows from different workers into
    the same transactions (fewer transactions than submits); with and without a commit delay."""
    monkeypatch.setenv("DFFT_AUDIT_COMMIT_DELAY_MS", delay_ms)
    data = tmp_path / "data"
    url = f"sqlite:///{(data / 'dfft.db').resolve()}"
    writer = writer_for(url)
    engines = [open_database(url) for _ in range(4)]
    logs = [RemoteAuditLog(e, writer.address) for e in engines]
    loops = [LoopThread() for _ in logs]
    for log, lt in zip(logs, loops, strict=True):
        lt.call(log.start, lt.loop)
    acked: list[str] = []
    lock = threading.Lock()
    try:
        wait_for(lambda: all(log.alive for log in logs), "four connections to the writer")

        def load(log: RemoteAuditLog, n: int) -> None:
            futs = []
            for i in range(200):
                rows = [row(f"w{n}", labels=f'{{"k":"v{i}"}}' if i % 3 == 0 else None) for _ in range(1 + i % 2)]
                futs.append((log.submit(rows), rows))
            for fut, rows in futs:
                fut.result(timeout=DEADLINE)
                with lock:
                    acked.extend(r["id"] for r in rows)

        threads = [threading.Thread(target=load, args=(log, n)) for n, log in enumerate(logs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE)
        assert len(acked) == 4 * 300
        assert set(acked) <= ids_in(data / "dfft.db")
        assert all(log.queued() == 0 for log in logs)
        assert 0 < max(log.transactions for log in logs) < 4 * 200  # grouped across workers
        with engines[0].connect() as c:
            n_labels = c.execute(sa.text("SELECT count(*) FROM decision_labels")).scalar_one()
        assert n_labels == 4 * sum(1 + i % 2 for i in range(200) if i % 3 == 0)
        assert all(log.probe() is None for log in logs)
    finally:
        for log, lt in zip(logs, loops, strict=True):
            lt.call(log.close)
            lt.stop()
        for e in engines:
            e.dispose()
        writer.stop()
    # a closed log refuses at once
    with pytest.raises(AuditUnavailable):
        logs[0].submit([row()]).result(timeout=5)


def test_the_writer_process_on_postgresql_records_and_fails_closed_in_an_outage(pg, tmp_path):
    """PostgreSQL stays supported: the writer process commits there; with the server down, checks get 503 without a
    verdict and /readyz is 503; once it is back, checks are answered and recorded again."""
    url = pg.new_database()
    writer = writer_for(url)
    api = None
    try:
        api = start(tmp_path, database_url=url, audit_writer=writer.address)
        wait_for(lambda: api.app.state.audit.alive, "the connection to the writer")
        with api.client() as c:
            r = c.post("/v1/check", json=REQ)
            assert r.status_code == 200, r.text
        eng = sa.create_engine(url)
        try:
            with eng.connect() as conn:
                stored = conn.execute(sa.text("SELECT id FROM decisions")).scalars().all()
            assert stored == [r.headers["Dfft-Decision-Id"]]
        finally:
            eng.dispose()
        pg.stop()
        try:
            with api.client() as c:
                r = c.post("/v1/check", json={**REQ, "subjects": 5})
                assert r.status_code == 503 and "verdict" not in r.json(), r.text
                wait_for(lambda: c.get("/readyz").status_code == 503, "not ready in the outage")
        finally:
            pg.start()
        with api.client() as c:
            wait_for(lambda: c.get("/readyz").status_code == 200, "ready after the outage")
            r = c.post("/v1/check", json={**REQ, "subjects": 6})
            assert r.status_code == 200, r.text
    finally:
        if api is not None:
            api.stop()
        writer.stop()


def test_a_bad_commit_delay_is_refused_at_start(tmp_path, monkeypatch):
    monkeypatch.setenv("DFFT_AUDIT_COMMIT_DELAY_MS", "soon")
    with pytest.raises(ValueError, match="DFFT_AUDIT_COMMIT_DELAY_MS"):
        WriterProcess(f"sqlite:///{tmp_path / 'dfft.db'}")
    monkeypatch.setenv("DFFT_AUDIT_COMMIT_DELAY_MS", "500")
    with pytest.raises(ValueError, match="0 to 100"):
        WriterProcess(f"sqlite:///{tmp_path / 'dfft.db'}")


def audit_writers(pid: int) -> list[int]:
    """The audit writer processes (named dfft-audit, api/writer.py) among the children of `pid`."""
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):  # a child started by another thread is listed under that thread
        with contextlib.suppress(OSError):
            kids += [int(p) for p in (task / "children").read_text().split()]
    out = []
    for k in kids:
        try:
            if Path(f"/proc/{k}/comm").read_text().strip() == "dfft-audit":
                out.append(k)
        except OSError:
            pass
    return out


@pytest.mark.skipif(not Path("/proc/self/comm").exists(), reason="reads /proc (Linux)")
def test_dfft_serve_with_one_worker_and_a_writer_process_restarts_it(tmp_path):
    """`DFFT_AUDIT_WRITER=process dfft serve` (one worker): the server runs the writer as its child, records through
    it, and restarts it when it dies; in between a check is a 503 without a verdict or a recorded 200."""
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - the server writes to it until it is closed below
    proc = None
    try:
        try:
            proc, url, key, _, data = serve_process(
                tmp_path, "check", stdout=log, env={**os.environ, "DFFT_AUDIT_WRITER": "process"}
            )
        except AssertionError as e:
            raise AssertionError(f"{e}: {(tmp_path / 'server.log').read_text()}") from None
        (writer,) = audit_writers(proc.pid)
        with httpx.Client(
            base_url=url, headers={"X-API-Key": key}, params={"allow_other_date": "true"}, timeout=30
        ) as c:
            r = c.post("/v1/check", json=REQ)
            assert r.status_code == 200, r.text
            assert r.headers["Dfft-Decision-Id"] in ids_in(data / "dfft.db")
            os.kill(writer, signal.SIGKILL)
            wait_for(lambda: [w for w in audit_writers(proc.pid) if w != writer], "the writer's restart")
            answered: list[httpx.Response] = []

            def recorded() -> bool:
                answered.append(c.post("/v1/check", json={**REQ, "subjects": 3 + len(answered)}))
                return answered[-1].status_code == 200

            wait_for(recorded, "a check answered after the restart")
            for r in answered:
                assert r.status_code in (200, 503), r.text
                if r.status_code == 503:
                    assert "verdict" not in r.json()
                else:
                    assert r.headers["Dfft-Decision-Id"] in ids_in(data / "dfft.db")
    finally:
        if proc is not None:
            kids = audit_writers(proc.pid)
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            deadline = time.monotonic() + 30
            while any(Path(f"/proc/{k}").exists() for k in kids) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not [k for k in kids if Path(f"/proc/{k}").exists()], "the writer outlived the server"
        log.close()
