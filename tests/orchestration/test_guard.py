"""dfft.guard: allowed / conditional / blocked, in-process and through a real API, and with the API down."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import pytest

import dfft
from dfft import TransferBlocked
from dfft.engine import EngineError, RequestError
from dfft.plugins.guard import ENV_API_URL, Guard, JsonlAuditSink
from tests.conftest import MINI

ALLOWED: dict[str, Any] = dict(
    origin="JP", destination="VN", data_categories=["personal"], safeguards=["consent"], as_of="2025-01-01"
)
CONDITIONAL: dict[str, Any] = dict(origin="JP", destination="VN", data_categories=["personal"], as_of="2026-06-01")
BLOCKED: dict[str, Any] = dict(origin="VN", destination="SG", data_categories=["core_data"], as_of="2026-06-01")
EMBARGO: dict[str, Any] = dict(
    origin="JP", destination="KP", data_categories=["controlled_technology"], as_of="2026-06-01"
)


# -- in-process ---------------------------------------------------------------------------------------------------


def test_allowed_runs_the_body_and_yields_the_decision(mini_engine):
    ran = []
    with dfft.guard(**ALLOWED, engine=mini_engine) as d:
        ran.append(True)
    assert ran and d.verdict == "allowed"
    assert [f.rule_id for f in d.findings] == ["JP-consent"] and d.findings[0].status == "met"


def test_blocked_raises_with_the_decision_attached(mini_engine):
    ran = []
    with pytest.raises(TransferBlocked) as ei, dfft.guard(**BLOCKED, engine=mini_engine):
        ran.append(True)
    assert not ran
    e = ei.value
    assert e.reason == "blocked" and e.decision.verdict == "blocked" and e.error is None
    assert "VN-core" in e.decision.rule_ids and "VN-core" in str(e) and "Art. 26" in str(e)
    assert e.request["origin"] == "VN"


def test_embargo_is_blocked(mini_engine):
    with pytest.raises(TransferBlocked) as ei:
        dfft.guard(**EMBARGO, engine=mini_engine).check()
    assert ei.value.decision.verdict == "blocked" and "JP-embargo" in ei.value.decision.rule_ids


def test_conditional_fails_by_default(mini_engine):
    with pytest.raises(TransferBlocked) as ei, dfft.guard(**CONDITIONAL, engine=mini_engine):
        pytest.fail("body must not run")
    assert ei.value.reason == "conditional" and ei.value.decision.verdict == "conditional"
    assert "JP-ob-consent" in str(ei.value)


def test_conditional_warns_when_configured(mini_engine, caplog):
    ran = []
    with (
        caplog.at_level(logging.WARNING, logger="dfft.guard"),
        dfft.guard(**CONDITIONAL, engine=mini_engine, on_conditional="warn") as d,
    ):
        ran.append(True)
    assert ran and d.verdict == "conditional"
    assert any("CONDITIONAL" in r.getMessage() and "JP-ob-consent" in r.getMessage() for r in caplog.records)


def test_decorator_sync_and_async(mini_engine):
    @dfft.guard(**ALLOWED, engine=mini_engine)
    def ok(x):
        return x + 1

    @dfft.guard(**BLOCKED, engine=mini_engine)
    def no():
        raise AssertionError("must not run")

    @dfft.guard(**BLOCKED, engine=mini_engine)
    async def no_async():
        raise AssertionError("must not run")

    @dfft.guard(**ALLOWED, engine=mini_engine)
    async def ok_async():
        return "shipped"

    assert ok(1) == 2 and ok.__name__ == "ok"
    with pytest.raises(TransferBlocked):
        no()
    with pytest.raises(TransferBlocked):
        asyncio.run(no_async())
    assert asyncio.run(ok_async()) == "shipped"


def test_evaluate_does_not_raise(mini_engine):
    r = dfft.guard(**BLOCKED, engine=mini_engine).evaluate()
    assert not r.proceed and r.reason == "blocked" and r.verdict == "blocked" and r.mode == "in-process"
    r = dfft.guard(**ALLOWED, engine=mini_engine).evaluate()
    assert r.proceed and r.reason == "allowed"


def test_request_object_and_rules_dir():
    g = dfft.guard(dfft.TransferRequest(**BLOCKED), rules_dir=MINI)
    assert g.evaluate().verdict == "blocked"


def test_invalid_request_raises_request_error_even_when_allowing_outages(mini_engine):
    with pytest.raises(RequestError) as ei:
        dfft.guard(
            origin="JP", destination="VN", data_categories=["nonsense"], engine=mini_engine, on_unavailable="allow"
        ).check()
    assert "nonsense" in str(ei.value)
    with pytest.raises(TypeError):
        dfft.guard(origin="JP", destination="VN", data_category=["personal"])


def test_bad_policy_values_are_rejected():
    with pytest.raises(ValueError):
        Guard(ALLOWED, on_conditional="maybe")
    with pytest.raises(ValueError):
        Guard(ALLOWED, on_unavailable="sometimes")


class _BrokenEngine:
    def check(self, request):
        raise EngineError("internal error while judging the request: boom")


def test_engine_failure_fails_closed_by_default():
    with pytest.raises(TransferBlocked) as ei, dfft.guard(**ALLOWED, engine=_BrokenEngine()):
        pytest.fail("body must not run")
    assert ei.value.reason == "unavailable" and ei.value.decision is None and "boom" in str(ei.value)


def test_engine_failure_allowed_when_configured(caplog):
    ran = []
    with (
        caplog.at_level(logging.WARNING, logger="dfft.guard"),
        dfft.guard(**ALLOWED, engine=_BrokenEngine(), on_unavailable="allow") as d,
    ):
        ran.append(True)
    assert ran and d is None
    assert any("on_unavailable=allow" in r.getMessage() for r in caplog.records)


# -- API mode -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "req, verdict", [(ALLOWED, "allowed"), (CONDITIONAL, "conditional"), (BLOCKED, "blocked"), (EMBARGO, "blocked")]
)
def test_api_mode_matches_in_process(api_url, mini_engine, req, verdict):
    r = dfft.guard(**req, api_url=api_url).evaluate()
    assert r.mode == "api" and r.verdict == verdict
    local = mini_engine.check(req)
    # the API's decision is the engine's, with the check's audit-log id
    assert len(r.decision.decision_id) == 32
    assert r.decision.model_dump(exclude={"engine", "decision_id"}) == local.model_dump(exclude={"engine"})


def test_api_mode_raises_and_proceeds_like_in_process(api_url):
    with pytest.raises(TransferBlocked) as ei, dfft.guard(**BLOCKED, api_url=api_url):
        pytest.fail("body must not run")
    assert ei.value.decision.verdict == "blocked"
    with dfft.guard(**CONDITIONAL, api_url=api_url, on_conditional="warn") as d:
        assert d.verdict == "conditional"


def test_api_mode_invalid_request(api_url):
    with pytest.raises(RequestError) as ei:
        dfft.guard(
            origin="JP", destination="VN", data_categories=["nonsense"], api_url=api_url, on_unavailable="allow"
        ).check()
    assert any(e["field"] == "data_categories" for e in ei.value.errors)


def test_api_url_from_environment(api_url, monkeypatch):
    monkeypatch.setenv(ENV_API_URL, api_url)
    r = dfft.guard(**BLOCKED).evaluate()
    assert r.mode == "api" and r.verdict == "blocked"


def test_api_down_fails_closed(closed_url):
    with pytest.raises(TransferBlocked) as ei, dfft.guard(**ALLOWED, api_url=closed_url, timeout=5):
        pytest.fail("body must not run")
    e = ei.value
    assert e.reason == "unavailable" and e.decision is None and "unreachable" in str(e)


def test_api_down_proceeds_when_configured(closed_url, caplog):
    with caplog.at_level(logging.WARNING, logger="dfft.guard"):
        r = dfft.guard(**BLOCKED, api_url=closed_url, on_unavailable="allow", timeout=5).evaluate()
    assert r.proceed and r.reason == "unavailable" and r.decision is None
    assert any("unreachable" in rec.getMessage() for rec in caplog.records)


def test_api_policy_from_environment(closed_url, monkeypatch):
    monkeypatch.setenv("DFFT_ON_UNAVAILABLE", "allow")
    assert dfft.guard(**ALLOWED, api_url=closed_url, timeout=5).evaluate().proceed


def test_api_500_is_unavailable(failing_api_url):
    r = dfft.guard(**ALLOWED, api_url=failing_api_url).evaluate()
    assert not r.proceed and r.reason == "unavailable" and "500" in r.message


def test_api_answer_that_is_not_a_decision_is_unavailable(garbage_api_url):
    r = dfft.guard(**ALLOWED, api_url=garbage_api_url).evaluate()
    assert not r.proceed and r.reason == "unavailable" and "not a decision" in r.message


# -- audit ----------------------------------------------------------------------------------------------------------


def test_audit_sink_gets_one_record_per_decision(mini_engine, closed_url):
    records = []
    dfft.guard(**ALLOWED, engine=mini_engine, audit=records.append, context={"pipeline": "p1"}).evaluate()
    dfft.guard(**BLOCKED, engine=mini_engine, audit=records.append).evaluate()
    dfft.guard(**ALLOWED, api_url=closed_url, audit=records.append, timeout=5).evaluate()
    assert [(r["verdict"], r["outcome"], r["reason"], r["mode"]) for r in records] == [
        ("allowed", "proceed", "allowed", "in-process"),
        ("blocked", "stop", "blocked", "in-process"),
        (None, "stop", "unavailable", "api"),
    ]
    assert records[0]["context"] == {"pipeline": "p1"} and records[0]["decision"]["verdict"] == "allowed"
    assert records[1]["decision"]["findings"][0]["citation"]["article"]
    json.dumps(records)  # serialisable as is


def test_audit_sink_failure_fails_closed(mini_engine):
    def broken(record):
        raise OSError("disk full")

    with pytest.raises(TransferBlocked) as ei, dfft.guard(**ALLOWED, engine=mini_engine, audit=broken):
        pytest.fail("body must not run")
    assert ei.value.reason == "unavailable" and "disk full" in str(ei.value)
    assert dfft.guard(**ALLOWED, engine=mini_engine, audit=broken, on_unavailable="allow").evaluate().proceed


def test_jsonl_sink_and_dotted_path(mini_engine, tmp_path):
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")
    dfft.guard(**BLOCKED, engine=mini_engine, audit=sink).evaluate()
    dfft.guard(**ALLOWED, engine=mini_engine, audit=sink).evaluate()
    lines = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [x["verdict"] for x in lines] == ["blocked", "allowed"]
    g = dfft.guard(**ALLOWED, engine=mini_engine, audit="tests.orchestration.test_guard:_collect")
    g.evaluate()
    assert _collected and _collected[-1]["verdict"] == "allowed"


_collected: list = []


def _collect(record):
    _collected.append(record)


def test_api_key_is_sent(api_url):
    """The key goes in `Authorization: Bearer` (or a header of your choice) -- checked against a recording proxy."""
    import threading
    import urllib.request
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen = []

    class Proxy(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(self.headers)  # case-insensitive (urllib sends "X-api-key")
            body = self.rfile.read(int(self.headers["Content-Length"]))
            # the proxy records the key the guard sent, then forwards with the server's real key
            req = urllib.request.Request(
                api_url + self.path,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "X-API-Key": os.environ["DFFT_API_KEY"]},
            )
            with urllib.request.urlopen(req) as r:
                payload = r.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    srv = HTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        assert dfft.guard(**BLOCKED, api_url=url, api_key="k1").evaluate().verdict == "blocked"
        assert dfft.guard(**ALLOWED, api_url=url, api_key="k2", api_key_header="X-API-Key").evaluate().proceed
    finally:
        srv.shutdown()
    assert seen[0]["Authorization"] == "Bearer k1" and seen[1]["X-API-Key"] == "k2"


def test_transfer_blocked_pickles_with_its_decision(mini_engine, closed_url):
    import pickle

    for kwargs in (dict(**BLOCKED, engine=mini_engine), dict(**ALLOWED, api_url=closed_url, timeout=5)):
        with pytest.raises(TransferBlocked) as ei:
            dfft.guard(**kwargs).check()
        e = pickle.loads(pickle.dumps(ei.value))
        assert (str(e), e.reason, e.request) == (str(ei.value), ei.value.reason, ei.value.request)
        assert e.decision == ei.value.decision
        assert (e.error is None) == (ei.value.error is None)


def test_api_with_a_wrong_key_fails_closed(api_url):
    r = dfft.guard(**ALLOWED, api_url=api_url, api_key="dfft_nope_nope").evaluate()
    assert not r.proceed and r.reason == "unavailable" and r.decision is None and "401" in r.message


def test_the_api_decision_id_comes_back_with_the_result(api_url, mini_engine, tmp_path):
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")
    r = dfft.guard(**ALLOWED, api_url=api_url, audit=sink).evaluate()
    assert r.mode == "api" and r.decision_id and len(r.decision_id) >= 16
    again = dfft.guard(**ALLOWED, api_url=api_url).evaluate()
    assert again.decision_id and again.decision_id != r.decision_id  # one audit record per check
    assert json.loads((tmp_path / "audit.jsonl").read_text())["decision_id"] == r.decision_id
    assert dfft.guard(**ALLOWED, engine=mini_engine).evaluate().decision_id is None  # in-process: no API audit id
