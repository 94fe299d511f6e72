"""The decision-log sink pushes every committed audit record to a real HTTP receiver on loopback, in batches, retrying
failures and resuming after the last acknowledged record; GET /metrics serves Prometheus metrics."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from dfft.api.db import sink_cursors

from .conftest import REQ, free_port, start


class Receiver:
    """A decision-log endpoint: records every batch it acknowledges; answers `fail` (a list of statuses) first."""

    def __init__(self, fail: tuple[int, ...] = ()):
        self.batches: list[list[dict]] = []
        self.refused = 0
        self.fail = list(fail)
        self.auth: list[str] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.auth.append(self.headers.get("Authorization", ""))
                if outer.fail:
                    code = outer.fail.pop(0)
                    outer.refused += 1
                    self.send_response(code)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                outer.batches.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/logs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def ids(self) -> list[str]:
        return [r["id"] for b in self.batches for r in b]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def checks(api, n: int, job: str) -> list[str]:
    ids = []
    with api.client() as c:
        for i in range(n):
            r = c.post("/v1/check", json={**REQ, "subjects": 500 + i, "labels": {"job": job}})
            assert r.status_code == 200, r.text
            ids.append(r.json()["decision_id"])
    return ids


def cursor(api) -> int:
    with api.app.state.db.connect() as c:
        return c.execute(sa.select(sink_cursors.c.last_seq)).scalar_one()


def test_sink_pushes_every_record_in_batches_retrying_failures(tmp_path):
    rx = Receiver(fail=(500, 503))
    api = start(
        tmp_path,
        decision_log_url=rx.url,
        decision_log_token="sink-secret",
        decision_log_batch=3,
        decision_log_interval=0.2,
        decision_log_max_backoff=0.3,
    )
    try:
        ids = checks(api, 7, "etl-sink")
        wait_for(lambda: set(ids) <= set(rx.ids))
        assert rx.refused == 2 and api.app.state.sink.failures >= 2  # retried, not dropped
        assert rx.ids == sorted(set(rx.ids), key=rx.ids.index)  # each record once, in commit order
        assert [r["id"] for r in sum(rx.batches, []) if r["id"] in ids] == ids
        assert all(len(b) <= 3 for b in rx.batches)
        rec = next(r for b in rx.batches for r in b if r["id"] == ids[0])
        assert rec["labels"] == {"job": "etl-sink"} and rec["verdict"] == "conditional" and rec["request_hash"]
        assert set(rx.auth) == {"Bearer sink-secret"}
        wait_for(lambda: cursor(api) == max(r["seq"] for b in rx.batches for r in b))
    finally:
        api.stop()
        rx.close()


def test_sink_resumes_after_the_last_acknowledged_record(tmp_path):
    # the endpoint is down: decisions are committed and answered; nothing is acknowledged, nothing dropped
    down = f"http://127.0.0.1:{free_port()}/v1/logs"
    api = start(tmp_path, decision_log_url=down, decision_log_interval=0.1, decision_log_max_backoff=0.2)
    try:
        first = checks(api, 4, "while-down")
        wait_for(lambda: api.app.state.sink.failures >= 2)
        assert cursor(api) == 0
        metrics = httpx.get(api.url + "/metrics", timeout=10).text
        assert "dfft_decision_log_pending 4.0" in metrics
    finally:
        api.stop()
    rx = Receiver()
    api = start(tmp_path, decision_log_url=rx.url, decision_log_interval=0.1)  # same database, restarted
    try:
        wait_for(lambda: set(first) <= set(rx.ids))
        second = checks(api, 2, "after")
        wait_for(lambda: set(second) <= set(rx.ids))
        assert rx.ids == first + second  # exactly once each, in order, across the restart
    finally:
        api.stop()
        rx.close()
    rx = Receiver()
    api = start(tmp_path, decision_log_url=rx.url, decision_log_interval=0.1)  # restarted again: nothing resent
    try:
        third = checks(api, 1, "third")
        wait_for(lambda: set(third) <= set(rx.ids))
        assert rx.ids == third
    finally:
        api.stop()
        rx.close()


def samples(text: str) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_requests_latencies_verdicts_memo_and_audit_queue(fresh_api):
    api = fresh_api
    with api.client() as c:
        for _ in range(3):
            assert c.post("/v1/check", json=REQ).status_code == 200  # one miss, then memo hits
        assert c.post("/v1/check/batch", json={"requests": [REQ, {**REQ, "origin": "XX"}]}).status_code == 200
        assert c.get("/v1/nope").status_code == 404
    assert httpx.post(api.url + "/v1/check", json=REQ, timeout=10).status_code == 401
    r = httpx.get(api.url + "/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = samples(r.text)
    route = lambda path, method, status: (  # noqa: E731
        "dfft_http_requests_total",
        (("method", method), ("route", path), ("status", status)),
    )
    assert m[route("/v1/check", "POST", "200")] == 3
    assert m[route("/v1/check", "POST", "401")] == 1
    assert m[route("unmatched", "GET", "404")] == 1
    assert m[("dfft_http_request_duration_seconds_count", (("method", "POST"), ("route", "/v1/check")))] == 4
    assert m[("dfft_decisions_total", (("endpoint", "check"), ("verdict", "conditional")))] == 3
    assert m[("dfft_decisions_total", (("endpoint", "batch"), ("verdict", "conditional")))] == 1
    assert m[("dfft_memo_lookups_total", (("result", "hit"),))] >= 3
    assert m[("dfft_memo_lookups_total", (("result", "miss"),))] >= 1
    assert m[("dfft_audit_queue_depth", ())] == 0  # every decision answered was committed
    assert m[("dfft_audit_transactions_total", ())] >= 2
    assert not any(k[0].startswith("dfft_decision_log") for k in m)  # no sink configured


def test_sink_on_postgresql_two_instances_push_each_record_once(pg, tmp_path):
    """Two instances on one PostgreSQL database, one sink name: the cursor row is held during a push (FOR UPDATE SKIP
    LOCKED), so every record reaches the endpoint, in order, once."""
    url = pg.new_database()
    rx = Receiver()
    kw = dict(database_url=url, decision_log_url=rx.url, decision_log_interval=0.05, decision_log_batch=2)
    a = start(tmp_path / "a", **kw)
    b = start(tmp_path / "b", **kw)
    try:
        ids = checks(a, 5, "pg-a") + checks(b, 5, "pg-b")
        wait_for(lambda: set(ids) <= set(rx.ids))
        time.sleep(0.5)  # a second push of the same records, if any, would arrive by now
        assert sorted(rx.ids) == sorted(ids) and len(rx.ids) == len(set(rx.ids))
        seqs = [r["seq"] for b_ in rx.batches for r in b_]
        assert seqs == sorted(seqs)
    finally:
        a.stop()
        b.stop()
        rx.close()
