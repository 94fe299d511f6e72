"""dfft.client against the running service: same models, problems raised as ApiError."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dfft.client import ApiError, Client
from dfft.engine import Decision, TransferRequest

from .conftest import REQ, free_port


def test_client_round_trip(api):
    with Client(api.url, api_key=api.check_key) as c:
        d = c.check(**REQ, allow_other_date=True)
        assert isinstance(d, Decision) and d.verdict == "conditional" and len(d.decision_id) == 32
        again = c.check(TransferRequest(**REQ), allow_other_date=True)
        assert again.model_dump(exclude={"decision_id"}) == d.model_dump(exclude={"decision_id"})
        assert again.decision_id != d.decision_id
        b = c.check_batch([REQ, {**REQ, "origin": "XX"}], allow_other_date=True)
        assert b.results[0].decision.model_dump() == d.model_dump(exclude={"decision_id"})
        assert b.results[1].error.status == 422 and b.summary["invalid"] == 1
        assert [j.code for j in c.jurisdictions()] == ["JP", "SG", "VN"]
        assert c.rules("SG").code == "SG"
        assert c.ruleset().hash == d.ruleset.hash
        assert c.health().status == "ok" and c.ready()
    with Client(api.url, api_key=api.admin_key) as c:
        page = c.decisions(limit=2, origin="JP")
        assert len(page.items) == 2 and page.next_after and all(x.request.origin == "JP" for x in page.items)
        exported = list(c.export_decisions(batch_id=b.batch_id))
        assert [x.id for x in exported] == [b.results[0].decision_id]


def test_client_errors(api):
    with Client(api.url, api_key=api.check_key) as c:
        with pytest.raises(ApiError) as e:
            c.check(**{**REQ, "origin": "XX"}, allow_other_date=True)
        assert e.value.status == 422 and e.value.errors[0]["valid"] == ["JP", "SG", "VN"] and not e.value.retryable
        with pytest.raises(ApiError) as e:
            c.reload()
        assert e.value.status == 403
        with pytest.raises(ApiError) as e:
            list(c.export_decisions())
        assert e.value.status == 403
    with Client(api.url, api_key="dfft_nope") as c, pytest.raises(ApiError) as e:
        c.check(**REQ)
    assert e.value.status == 401
    with Client(f"http://127.0.0.1:{free_port()}", api_key="k", timeout=2) as c, pytest.raises(ApiError) as e:
        c.check(**REQ)
    assert e.value.status == 0 and e.value.retryable


def test_decision_id_comes_with_each_decision_across_threads(api):
    """One client, many threads: each decision carries its own audit-log id (no shared `last` state), and the audit
    record under that id carries the labels of that very request."""
    with Client(api.url, api_key=api.check_key) as c:

        def one(i: int) -> tuple[int, str]:
            d = c.check(**{**REQ, "subjects": 100 + i % 3}, allow_other_date=True, labels={"trace_id": f"t-{i}"})
            return i, d.decision_id

        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(one, range(24)))
    with Client(api.url, api_key=api.admin_key) as c:
        for i, did in got:
            page = c.decisions(label={"trace_id": f"t-{i}"})
            assert [x.id for x in page.items] == [did] and page.items[0].labels == {"trace_id": f"t-{i}"}


class Flaky:
    """A real HTTP server on loopback that answers `fails` with 503 (or 429) and Retry-After, then `body`."""

    def __init__(self, fails: list[int], body: bytes, retry_after: str = "0"):
        self.fails, self.body, self.hits = list(fails), body, 0
        self.times: list[float] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.hits += 1
                outer.times.append(time.monotonic())
                if outer.fails:
                    code = outer.fails.pop(0)
                    data = json.dumps({"type": "about:blank", "title": "busy", "status": code}).encode()
                    self.send_response(code)
                    self.send_header("Retry-After", retry_after)
                    self.send_header("Content-Type", "application/problem+json")
                else:
                    data = outer.body
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def decision_body(api):
    with Client(api.url, api_key=api.check_key) as c:
        return c.check(**REQ, allow_other_date=True).model_dump_json().encode()


def test_client_retries_503_and_429_after_retry_after(decision_body):
    srv = Flaky([503, 429], decision_body, retry_after="1")
    try:
        with Client(srv.url, api_key="k", timeout=5, retries=3, backoff=0.01) as c:
            d = c.check(**REQ)
        assert d.verdict == "conditional" and srv.hits == 3
        gaps = [b - a for a, b in zip(srv.times, srv.times[1:], strict=False)]
        assert all(g >= 0.9 for g in gaps), gaps  # the server's Retry-After (1 s), not the 0.01 s backoff
    finally:
        srv.close()


def test_client_gives_up_after_its_retries(decision_body):
    srv = Flaky([503] * 5, decision_body)
    try:
        with Client(srv.url, api_key="k", timeout=5, retries=2, backoff=0.01) as c, pytest.raises(ApiError) as e:
            c.check(**REQ)
        assert e.value.status == 503 and e.value.retryable and srv.hits == 3
    finally:
        srv.close()
    with Client(f"http://127.0.0.1:{free_port()}", api_key="k", timeout=2, retries=2, backoff=0.05) as c:
        t0 = time.monotonic()
        with pytest.raises(ApiError) as e:
            c.check(**REQ)
        assert e.value.status == 0 and time.monotonic() - t0 >= 0.05  # waited between the attempts


def test_client_does_not_retry_what_cannot_pass(api):
    srv = Flaky([422], b"")
    try:
        with Client(srv.url, api_key="k", timeout=5, retries=3, backoff=0.01) as c, pytest.raises(ApiError) as e:
            c.check(**REQ)
        assert e.value.status == 422 and srv.hits == 1
    finally:
        srv.close()
