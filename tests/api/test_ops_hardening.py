"""Issue 10, items 8-10, against the real app on loopback: extreme audit-log time bounds, readiness that reflects
whether a decision can be audited, the unauthenticated probes, offline docs, security headers, bounded 422s, private
database files, the plain-HTTP warning of `dfft serve`."""
from __future__ import annotations

import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time

import httpx
import pytest

from dfft.api.db import open_database
from dfft.api.keys import KeyStore

from ..conftest import MINI
from .conftest import REQ, free_port

PROBLEM = "application/problem+json"


# -- item 8: time bounds beyond what UTC can represent --------------------------------------------------------------
EARLY, LATE = "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"   # before year 1 / after 9999 in UTC


@pytest.mark.parametrize("path", ["/v1/decisions", "/v1/decisions/export"])
def test_time_bounds_beyond_utc_are_clamped_not_500(api, path):
    """since/until whose UTC equivalent overflows were a 500; they are clamped to the first/last representable
    instant, which selects the same records: every record for since=EARLY or until=LATE, none for since=LATE or
    until=EARLY."""
    with api.client() as c:
        decision_id = c.post("/v1/check", json=REQ).headers["Dfft-Decision-Id"]

    def ids(**params):
        with api.client("admin") as c:
            r = c.get(path, params=params)
        assert r.status_code == 200, r.text
        if path.endswith("export"):
            import json
            return [json.loads(x)["id"] for x in r.text.splitlines()]
        return [x["id"] for x in r.json()["items"]] + ([] if r.json()["next_after"] is None else ["..."])

    assert decision_id in ids(since=EARLY, until=LATE, limit=1000) if path == "/v1/decisions" else \
        decision_id in ids(since=EARLY, until=LATE)
    assert ids(since=LATE) == [] and ids(until=EARLY) == []
    assert ids(since=EARLY, until=EARLY) == [] and ids(since=LATE, until=LATE) == []


# -- item 9: readiness reflects whether a decision can be audited ---------------------------------------------------
def _serve(tmp, extra_env=None, args=()):
    rules, data = tmp / "rules", tmp / "data"
    shutil.copytree(MINI, rules)
    db = open_database(f"sqlite:///{(data / 'dfft.db').resolve()}")
    key, _ = KeyStore(db).create("check", "ops test")
    db.dispose()
    port = free_port()
    env = {**os.environ, **(extra_env or {})}
    # the server's output goes to a pipe (not a file): with the file-size limit below, writes to files fail
    proc = subprocess.Popen([sys.executable, "-m", "dfft.cli", "--rules", str(rules), "serve", "--port", str(port),
                             "--data-dir", str(data), "--log-level", "warning", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "dfft serve exited"
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url, key
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "dfft serve did not become ready"
        time.sleep(0.1)


def _wait_status(url, status, seconds=20.0):
    deadline = time.monotonic() + seconds
    while True:
        r = httpx.get(url + "/readyz", timeout=5)
        if r.status_code == status:
            return r
        assert time.monotonic() < deadline, f"/readyz stayed {r.status_code}, expected {status}"
        time.sleep(0.1)


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux prlimit")
def test_readyz_is_503_while_the_audit_database_cannot_be_written(tmp_path):
    """A full disk, made real even for root: the server's file-size limit is lowered to 0 (RLIMIT_FSIZE applies to
    root too), so every write to the SQLite WAL fails as it would on a full disk. /readyz said ready while every
    check was 503; now it is 503 (idle: within the probe interval; at once after a failed commit) and ready again
    as soon as a write succeeds."""
    proc, url, key = _serve(tmp_path, {"DFFT_READY_PROBE_SECONDS": "0.2"})
    headers = {"X-API-Key": key}
    try:
        assert httpx.post(url + "/v1/check", json=REQ, headers=headers, timeout=10).status_code == 200
        normal = resource.prlimit(proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (0, normal[1]))
        try:
            time.sleep(0.3)
            r = httpx.get(url + "/readyz", timeout=10)   # idle, no check has failed yet: the probe finds out
            assert r.status_code == 503 and r.headers["Retry-After"].isdigit(), r.text
            r = httpx.post(url + "/v1/check", json=REQ, headers=headers, timeout=10)
            assert r.status_code == 503 and "verdict" not in r.json(), r.text
            assert httpx.get(url + "/readyz", timeout=10).status_code == 503
        finally:
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, normal)
        assert _wait_status(url, 200).json() == {"status": "ready"}
        assert httpx.post(url + "/v1/check", json=REQ, headers=headers, timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
