"""A real `dfft serve` process: SIGHUP reloads; SIGKILL under load loses no acknowledged decision."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time

import httpx
import pytest

from .conftest import REQ, serve_process

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("served")
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - the server writes to it until it is closed below
    try:
        proc, url, key, rules, data = serve_process(tmp, "admin", stdout=log)
    except AssertionError as e:
        raise AssertionError(f"{e}: {(tmp / 'server.log').read_text()}") from None
    yield proc, url, key, rules, data / "dfft.db"
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    log.close()


def current(url, key):
    return httpx.get(url + "/v1/rulesets/current", headers={"X-API-Key": key}, timeout=5).json()


def wait_for(pred, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_sighup_reloads_and_refuses_a_bad_bundle(served):
    proc, url, key, rules, _ = served
    first = current(url, key)
    p = rules / "bundle.yaml"
    p.write_text(p.read_text().replace("version: 0.0.1", "version: 0.0.2"))
    proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: current(url, key)["version"] == "0.0.2")
    second = current(url, key)
    assert second["hash"] != first["hash"]
    (rules / "SG" / "data_protection.yaml").write_text("rules: [oops")
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert proc.poll() is None and current(url, key)["hash"] == second["hash"]
    r = httpx.post(
        url + "/v1/check", json=REQ, params={"allow_other_date": "true"}, headers={"X-API-Key": key}, timeout=5
    )
    assert r.status_code == 200 and r.json()["ruleset"]["hash"] == second["hash"]


def test_sigkill_under_load_loses_no_acknowledged_decision(served):
    proc, url, key, _, db_file = served
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        i = 0
        with httpx.Client(
            base_url=url, headers={"X-API-Key": key}, params={"allow_other_date": "true"}, timeout=5
        ) as c:
            while not stop.is_set() and i < 5000:  # bounded
                i += 1
                try:
                    if i % 10 == 0:
                        r = c.post(
                            "/v1/check/batch",
                            json={"requests": [{**REQ, "subjects": worker * 100_000 + i * 10 + k} for k in range(20)]},
                        )
                        ids = [x["decision_id"] for x in r.json()["results"]] if r.status_code == 200 else []
                    else:
                        r = c.post("/v1/check", json={**REQ, "subjects": worker * 100_000 + i})
                        ids = [r.headers["Dfft-Decision-Id"]] if r.status_code == 200 else []
                except httpx.HTTPError:
                    return  # the server is gone
                with lock:
                    acked.extend(ids)

    threads = [threading.Thread(target=load, args=(w,), daemon=True) for w in range(4)]
    for t in threads:
        t.start()
    assert wait_for(lambda: len(acked) >= 400, 60), f"only {len(acked)} decisions acknowledged"
    proc.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(20)
    with lock:
        acknowledged = set(acked)
    con = sqlite3.connect(db_file)  # recovers the WAL like any later reader
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in con.execute("SELECT id FROM decisions")}
    finally:
        con.close()
    missing = acknowledged - stored
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged decisions lost"
    assert len(acknowledged) >= 400
