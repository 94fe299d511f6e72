"""`dfft serve --workers 2` for real (two processes on one loopback port): a reload through one worker reaches every
worker, a revoked key stops working on every worker within DFFT_KEY_CACHE_SECONDS, and every worker's decisions are in
the one audit log. A worker is told apart by the time it loaded its bundle (`loaded_at` of /v1/rulesets/current), asked
on the same keep-alive connection as the request under test (a connection stays with the worker that accepted it)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dfft.api.db import open_database
from dfft.api.keys import KeyStore

from ..conftest import MINI
from .conftest import REQ, free_port

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "SO_REUSEPORT") or not hasattr(signal, "SIGHUP"), reason="needs SO_REUSEPORT and SIGHUP"
)

KEY_CACHE = 1.0  # DFFT_KEY_CACHE_SECONDS for the server: the revocation bound under test
DEADLINE = 120.0  # seconds any convergence may take before the test fails (generous: a loaded CI machine)


def spawned(pid: int) -> list[int]:
    """The processes spawned by the supervisor `pid`: workers and the audit writer (multiprocessing's resource tracker
    left out)."""
    try:
        kids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        return [k for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]
    except OSError:
        return []


def is_writer(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "dfft-audit"
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """The worker processes of the supervisor `pid`."""
    return [k for k in spawned(pid) if not is_writer(k)]


def writers(pid: int) -> list[int]:
    """The audit writer process of the supervisor `pid` (api/writer.py)."""
    return [k for k in spawned(pid) if is_writer(k)]


START = 240.0  # seconds two workers may take to start (each loads and compiles the bundle; CI machines are slow)


def serve_workers(tmp: Path, log: Any, env: dict[str, str]) -> tuple[subprocess.Popen, str, str, Path, Path]:
    """`dfft serve --workers 2` on a loopback port, a copy of the fixture bundle and a fresh SQLite database with one
    admin key: (process, url, key, rules dir, data dir) once /readyz answers. The caller stops the process (it is
    killed here if it does not become ready)."""
    rules, data = tmp / "rules", tmp / "data"
    shutil.copytree(MINI, rules)
    db = open_database(f"sqlite:///{(data / 'dfft.db').resolve()}")
    key, _ = KeyStore(db).create("admin", "workers test")
    db.dispose()
    port = free_port()
    cmd = [sys.executable, "-m", "dfft.cli", "--rules", str(rules), "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data), "--log-level", "warning", "--workers", "2", "--no-web"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START
    while True:
        try:
            if proc.poll() is None and httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url, key, rules, data
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(30)
            raise AssertionError(f"dfft serve --workers 2 did not become ready (exit code {proc.returncode})")
        time.sleep(0.2)


def on_a_worker(url: str, admin: str, then: object = None) -> tuple[str, dict, object]:
    """On a new connection: (the worker's loaded_at, its /v1/rulesets/current, then(client) on that connection)."""
    with httpx.Client(base_url=url, timeout=10) as c:
        cur = c.get("/v1/rulesets/current", headers={"X-API-Key": admin})
        assert cur.status_code == 200, cur.text
        body = cur.json()
        return body["loaded_at"], body, then(c) if callable(then) else None


def every_worker(url: str, admin: str, then: object = None, want: int = 2) -> dict[str, tuple[dict, object]]:
    """Results from `want` distinct workers (new connections until each was seen), or AssertionError at DEADLINE."""
    seen: dict[str, tuple[dict, object]] = {}
    deadline = time.monotonic() + DEADLINE
    while len(seen) < want:
        assert time.monotonic() < deadline, f"saw {len(seen)} of {want} workers"
        at, cur, out = on_a_worker(url, admin, then)
        seen.setdefault(at, (cur, out))
    return seen


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the supervisor; it must exit within 60 s and every process it started (the workers and the audit
    writer) within 30 s more."""
    pids = spawned(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except Exception:
        proc.kill()
        raise
    gone = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < gone:
        time.sleep(0.1)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "a child outlived the supervisor"


def test_two_workers_obey_a_reload_and_a_revocation_through_one_of_them(tmp_path):
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - the server writes to it until it is closed below
    env = {**os.environ, "DFFT_KEY_CACHE_SECONDS": str(KEY_CACHE)}
    proc = None
    try:
        try:
            proc, url, admin, rules, data = serve_workers(tmp_path, log, env)
        except AssertionError as e:
            raise AssertionError(f"{e}: {(tmp_path / 'server.log').read_text()}") from None
        workers = children(proc.pid)
        assert len(workers) == 2, f"expected 2 worker processes under {proc.pid}, found {workers}"

        # both workers answer, each a whole instance with its own bundle load
        first = every_worker(url, admin)
        (h1,) = {cur["hash"] for cur, _ in first.values()}

        # the audit log: decisions judged by both workers are all recorded (one database, one writer per worker)
        def check(c: httpx.Client) -> str:
            r = c.post("/v1/check", json=REQ, params={"allow_other_date": "true"}, headers={"X-API-Key": admin})
            assert r.status_code == 200, r.text
            return r.json()["decision_id"]

        ids = [out for _, out in every_worker(url, admin, check).values()]
        ids += [on_a_worker(url, admin, check)[2] for _ in range(10)]
        with httpx.Client(base_url=url, timeout=10) as c:
            logged = c.get("/v1/decisions", params={"limit": 1000}, headers={"X-API-Key": admin}).json()["items"]
        assert set(ids) <= {d["id"] for d in logged}

        # a check key, cached as valid by both workers, then revoked in the database (as `dfft keys revoke` does)
        db = open_database(f"sqlite:///{(data / 'dfft.db').resolve()}")
        try:
            store = KeyStore(db)
            token, key = store.create("check", "revoked under test")

            def status(c: httpx.Client) -> int:
                return c.get("/v1/vocabulary", headers={"X-API-Key": token}).status_code

            assert {out for _, out in every_worker(url, admin, status).values()} == {200}
            assert store.revoke(key.id)
        finally:
            db.dispose()
        time.sleep(KEY_CACHE + 0.2)  # the documented bound: a revoked key works nowhere after DFFT_KEY_CACHE_SECONDS
        after = every_worker(url, admin, status)
        assert {out for _, out in after.values()} == {401}, after
        assert {on_a_worker(url, admin, status)[2] for _ in range(10)} == {401}

        # a reload through one worker (the admin endpoint) reaches the other (the supervisor passes SIGHUP on)
        p = rules / "bundle.yaml"
        p.write_text(p.read_text().replace("version: 0.0.1", "version: 0.0.2"))
        with httpx.Client(base_url=url, timeout=60) as c:
            r = c.post("/v1/rulesets/reload", headers={"X-API-Key": admin})
            assert r.status_code == 200, r.text
            h2 = r.json()["current"]["hash"]
        assert h2 != h1
        deadline = time.monotonic() + DEADLINE
        new: dict[str, dict] = {}
        while len(new) < 2:  # two workers seen serving the new bundle, each with its own (re)load time
            assert time.monotonic() < deadline, (
                f"only {len(new)} worker(s) reloaded: {(tmp_path / 'server.log').read_text()}"
            )
            at, cur, _ = on_a_worker(url, admin)
            if cur["hash"] == h2:
                new[at] = cur
            else:
                time.sleep(0.05)
        # from then on no connection is served the old bundle
        hashes = {on_a_worker(url, admin)[1]["hash"] for _ in range(10)}
        assert hashes == {h2}
        # and a check is judged by the new bundle on every worker
        judged = every_worker(url, admin, lambda c: c.post(
            "/v1/check", json=REQ, params={"allow_other_date": "true"}, headers={"X-API-Key": admin}
        ).json()["ruleset"]["hash"])  # fmt: skip
        assert {out for _, out in judged.values()} == {h2}
    finally:
        if proc is not None:
            stop_server(proc)
        log.close()


def test_two_workers_share_one_audit_writer_which_fails_closed_and_is_restarted(tmp_path):
    """`dfft serve --workers 2` runs one audit writer process for both workers. Killed under load from both workers,
    every check answered 200 has its row in the audit log, every other answer is a 503 without a verdict, and the
    supervisor restarts the writer: both workers answer (and record) checks again."""
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - the server writes to it until it is closed below
    proc = None
    try:
        try:
            proc, url, admin, _, data = serve_workers(tmp_path, log, dict(os.environ))
        except AssertionError as e:
            raise AssertionError(f"{e}: {(tmp_path / 'server.log').read_text()}") from None
        assert len(children(proc.pid)) == 2
        (writer,) = writers(proc.pid)

        ok: list[str] = []
        refused: list[httpx.Response] = []
        lock = threading.Lock()
        stop = threading.Event()

        def load(n: int) -> None:
            i = 0
            while not stop.is_set() and i < 20_000:  # bounded
                i += 1
                with httpx.Client(base_url=url, timeout=30) as c:  # a new connection: either worker
                    r = c.post(
                        "/v1/check",
                        json={**REQ, "subjects": n * 1_000_000 + i},
                        params={"allow_other_date": "true"},
                        headers={"X-API-Key": admin},
                    )
                with lock:
                    if r.status_code == 200:
                        ok.append(r.headers["Dfft-Decision-Id"])
                    else:
                        refused.append(r)

        threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + DEADLINE
        while len(ok) < 100:
            assert time.monotonic() < deadline, f"only {len(ok)} checks answered"
            time.sleep(0.05)
        os.kill(writer, signal.SIGKILL)  # mid-load: rows are in flight from both workers
        deadline = time.monotonic() + DEADLINE
        while not [w for w in writers(proc.pid) if w != writer]:  # the supervisor restarts it
            assert time.monotonic() < deadline, (
                f"the audit writer was not restarted: {(tmp_path / 'server.log').read_text()}"
            )
            time.sleep(0.05)
        settled = len(ok)
        deadline = time.monotonic() + DEADLINE
        while len(ok) < settled + 100:  # and checks are answered again
            assert time.monotonic() < deadline, "no checks answered after the writer's restart"
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(60)
        for r in refused:
            assert r.status_code == 503, r.text
            assert "verdict" not in r.json() and r.headers["Retry-After"].isdigit()
        con = sqlite3.connect(data / "dfft.db")
        try:
            stored = {row[0] for row in con.execute("SELECT id FROM decisions")}
        finally:
            con.close()
        missing = set(ok) - stored
        assert not missing, f"{len(missing)} of {len(ok)} acknowledged decisions are not in the audit log"

        # both workers still serve checks after the restart
        def check(c: httpx.Client) -> int:
            return c.post(
                "/v1/check", json=REQ, params={"allow_other_date": "true"}, headers={"X-API-Key": admin}
            ).status_code

        assert {out for _, out in every_worker(url, admin, check).values()} == {200}
    finally:
        if proc is not None:
            stop_server(proc)
        log.close()
