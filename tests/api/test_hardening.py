"""Issue 10, items 2-5, against a real server: bounded requests and error bodies, strict typing and the as_of gate,
per-call dates in what-if analyses, a bounded what-if engine pool with per-key scenario limits, streamed batches,
and batches judged on one rule bundle while reloads swap engines."""

from __future__ import annotations

import itertools
import json
import threading
import time
from datetime import UTC, datetime

import pytest

from .conftest import REQ, start
from .test_http import assert_problem
from .test_reload import bump_version

# VN -> JP personal data: allowed before VN's PDPL takes effect (2026-01-01), conditional after
VN_JP = {"origin": "VN", "destination": "JP", "data_categories": ["personal"], "subjects": 1000}
NOOP = {"name": "noop"}
# rules of the mini fixture that derive no flag (so any subset of them can be disabled)
LEAF_RULES = ["JP-consent", "JP-system-duty", "JP-tech-licence", "JP-embargo", "JP-tdm", "SG-26", "VN-tia", "VN-core"]


def today() -> str:
    return datetime.now(UTC).date().isoformat()


# -- item 3: a what-if as_of is per call, never shared ---------------------------------------------------------------
@pytest.mark.parametrize("order", [("2025-01-01", "2026-06-01"), ("2026-06-01", "2025-01-01")])
def test_whatif_as_of_is_per_caller_in_both_orders(fresh_api, order):
    expected = {"2025-01-01": "allowed", "2026-06-01": "conditional"}
    with fresh_api.client() as c:
        for _ in range(2):
            for day in order:
                r = c.post("/v1/whatif/diff", json={"scenario": NOOP, "requests": [VN_JP], "as_of": day})
                assert r.status_code == 200, r.text
                item = r.json()["items"][0]
                assert (item["baseline"], item["scenario"]) == (expected[day], expected[day]), (day, item)
        # an analysis without as_of is judged as of today, whatever dates came before
        r = c.post("/v1/whatif/matrix", json={"origins": ["VN"], "destinations": ["JP"], "profiles": ["personal"]})
        assert r.status_code == 200 and r.json()["as_of"] == today()


# -- item 4: strict types; /v1/check refuses another date than today unless the caller opts in --------------------
@pytest.mark.parametrize(
    "field, value",
    [
        ("as_of", 0),
        ("as_of", "0"),
        ("as_of", 86400),
        ("as_of", "2026-06-01T00:00"),
        ("subjects", True),
        ("subjects", "1000"),
        ("subjects", 1000.0),
    ],
)
def test_loose_types_are_refused(api, field, value):
    with api.client() as c:
        body = assert_problem(c.post("/v1/check", json={**REQ, field: value}), 422)
    assert any(e["field"].split(".")[0] == field for e in body["errors"]), body


def test_exponent_and_string_numbers_in_raw_json_are_refused(api):
    raw = '{"origin":"JP","destination":"VN","data_categories":["personal"],"subjects":1e3}'
    with api.client() as c:
        body = assert_problem(c.post("/v1/check", content=raw, headers={"Content-Type": "application/json"}), 422)
    assert body["errors"][0]["field"] == "subjects"


def test_check_refuses_another_date_unless_opted_in_and_audits_the_opt_in(api):
    with api.client(fixed_dates=False) as c:
        for day in ("2025-01-01", "2099-01-01"):  # past and future: both are what-ifs for a pre-transfer gate
            body = assert_problem(c.post("/v1/check", json={**VN_JP, "as_of": day}), 422)
            assert body["type"] == "urn:dfft:problem:as-of-not-today" and "allow_other_date" in body["detail"]
        plain = c.post("/v1/check", json={**VN_JP, "subjects": 4343})
        dated = c.post("/v1/check", json={**VN_JP, "subjects": 4343, "as_of": today()})
        past = c.post(
            "/v1/check", params={"allow_other_date": "true"}, json={**VN_JP, "subjects": 4343, "as_of": "2025-01-01"}
        )
        assert plain.status_code == dated.status_code == past.status_code == 200
        assert plain.json()["as_of"] == dated.json()["as_of"] == today()
        assert past.json()["verdict"] == "allowed" and plain.json()["verdict"] == "conditional"
        batch = c.post("/v1/check/batch", json={"requests": [{**VN_JP, "as_of": "2025-01-01"}, VN_JP]})
        res = batch.json()["results"]
        assert res[0]["error"]["errors"][0]["field"] == "as_of" and res[1]["decision"]["verdict"] == "conditional"
        assert batch.json()["summary"]["invalid"] == 1
        opted = c.post(
            "/v1/check/batch",
            params={"allow_other_date": "true"},
            json={"requests": [{**VN_JP, "as_of": "2025-01-01"}, VN_JP]},
        ).json()
    with api.client("admin") as c:
        items = {i["id"]: i for i in c.get("/v1/decisions", params={"origin": "VN", "limit": 1000}).json()["items"]}
    flags = {
        r.headers["Dfft-Decision-Id"]: items[r.headers["Dfft-Decision-Id"]]["other_date"] for r in (plain, dated, past)
    }
    assert list(flags.values()) == [False, False, True]
    assert items[past.headers["Dfft-Decision-Id"]]["request"]["as_of"] == "2025-01-01"
    assert [items[x["decision_id"]]["other_date"] for x in opted["results"]] == [True, False]


# -- item 2: request sizes and error sizes -------------------------------------------------------------------------
def test_request_sizes_are_capped_with_clear_errors(api):
    with api.client() as c:
        body = assert_problem(c.post("/v1/check", json={**REQ, "via": ["SG", "JP"] * 500}), 422)
        assert body["errors"][0]["field"] == "via" and "at most 8" in body["errors"][0]["message"]
        body = assert_problem(c.post("/v1/check", json={**REQ, "safeguards": ["consent"] * 65}), 422)
        assert "at most 64" in body["errors"][0]["message"]
        body = assert_problem(c.post("/v1/check", json={**REQ, "sector": "x" * 65}), 422)
        assert body["errors"][0]["field"] == "sector" and "at most 64 characters" in body["errors"][0]["message"]
        # 8 hops is still a valid request, and its decision stays small
        ok = c.post(
            "/v1/check", json={**REQ, "via": ["SG", "JP", "SG", "JP", "SG", "JP", "SG", "JP"], "destination": "VN"}
        )
        assert ok.status_code == 200 and len(ok.content) < 64_000


def test_unknown_values_are_reported_once_per_field_with_the_valid_ones_once(api):
    unknown = [f"cat{i:04d}" for i in range(3000)]
    with api.client() as c:
        big = c.post(
            "/v1/check/batch", json={"requests": [{**REQ, "data_categories": unknown[i::50]} for i in range(50)]}
        )
        r = c.post("/v1/check", json={**REQ, "data_categories": unknown[:60], "safeguards": ["nope1", "nope2"]})
    body = assert_problem(r, 422)
    assert len(r.content) < 8_000, len(r.content)
    cats = [e for e in body["errors"] if e["field"] == "data_categories"]
    assert len(cats) == 1 and "and 50 more" in cats[0]["message"] and len(cats[0]["unknown"]) == 10
    assert cats[0]["valid"].count("biometric") == 1 and body["detail"].count("biometric") == 1
    assert [e["field"] for e in body["errors"]] == ["data_categories", "safeguards"]
    # 3,000 unknown categories in a batch: one error per item, not 3,000 copies of the vocabulary (was 3.2 MB)
    assert big.status_code == 200 and len(big.content) < 200_000, len(big.content)


def test_whatif_bodies_are_bounded(api):
    with api.client() as c:
        assert_problem(c.post("/v1/whatif/diff", json={"scenario": NOOP, "requests": [{}] * 1001}), 422)
        body = assert_problem(
            c.post("/v1/whatif/timeline", json={"request": VN_JP, "start": "1000-01-01", "end": "2030-01-01"}), 422
        )
        assert "100 years" in json.dumps(body)
        assert_problem(c.post("/v1/whatif/matrix", json={"destinations": ["JP"] * 300}), 422)
        body = assert_problem(
            c.post(
                "/v1/whatif/matrix",
                json={
                    "origins": ["JP", "SG", "VN"] * 4,
                    "destinations": ["JP", "SG", "VN"] * 80,
                    "profiles": ["personal"] * 16,
                },
            ),
            422,
        )
        assert "cells" in body["detail"]


# -- item 2: the what-if engine pool is bounded and frees what it evicts; scenarios per key and minute --------------
def scenarios(n: int):
    combos = itertools.chain.from_iterable(itertools.combinations(LEAF_RULES, k) for k in (1, 2))
    return [{"name": f"s{i}", "law": {"disable_rules": list(c)}} for i, c in zip(range(n), combos, strict=False)]


def test_whatif_pool_is_bounded_and_evicted_engines_are_closed(tmp_path):
    srv = start(tmp_path, whatif_engines=3, whatif_scenarios_per_minute=0)
    try:
        seen = []
        with srv.client() as c:
            for sc in scenarios(12):
                r = c.post("/v1/whatif/diff", json={"scenario": sc, "requests": [VN_JP], "as_of": "2026-06-01"})
                assert r.status_code == 200, r.text
                pool = srv.app.state.whatif["current"]()[1]
                seen += [e for e in pool._engines.values() if e not in seen]
                assert len(pool) <= 3
        assert pool.compiled == len(seen) >= 12 and pool.evicted == len(seen) - len(pool)
        evicted = [e for e in seen if e not in pool._engines.values()]
        assert evicted and all(e.closed and e.backend._closed for e in evicted)
        assert not any(e.closed for e in pool._engines.values())
    finally:
        srv.stop()


def test_distinct_scenarios_per_key_and_minute_are_limited(tmp_path):
    srv = start(tmp_path, whatif_scenarios_per_minute=3)
    try:
        other, _ = srv.app.state.keys.create("check", "other")
        s = scenarios(5)
        with srv.client() as c, srv.client(other) as d:

            def post(client, sc):
                return client.post("/v1/whatif/diff", json={"scenario": sc, "requests": [VN_JP]})

            assert [post(c, x).status_code for x in s[:3]] == [200, 200, 200]
            body = assert_problem(post(c, s[3]), 429)
            r = post(c, s[3])
            assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
            assert "3 distinct scenarios" in body["detail"]
            assert post(c, s[0]).status_code == 200  # one already sent does not count again
            assert post(c, NOOP).status_code == 200  # nor does one that changes no law
            assert post(d, s[4]).status_code == 200  # another key has its own budget
    finally:
        srv.stop()


# -- item 2: large batch responses are streamed, every decision committed before the response starts ----------------
def test_large_batch_is_streamed_with_the_same_document(tmp_path):
    reqs = [{**REQ, "subjects": i, "safeguards": ["consent"] if i % 3 else []} for i in range(40)]
    reqs[7] = {**REQ, "origin": "XX"}
    docs = {}
    for buffer in (10_000_000, 3_000):
        srv = start(tmp_path / str(buffer), batch_buffer=buffer)
        try:
            with srv.client() as c:
                r = c.post("/v1/check/batch", json={"requests": reqs})
            assert r.status_code == 200
            doc = r.json()
            with srv.client("admin") as c:
                audited = c.get("/v1/decisions", params={"batch_id": doc["batch_id"], "limit": 1000}).json()["items"]
            assert [a["id"] for a in audited] == [x["decision_id"] for x in doc["results"] if "decision_id" in x]
            assert all(
                a["verdict"] == x["decision"]["verdict"]
                for a, x in zip(audited, [x for x in doc["results"] if "decision" in x], strict=True)
            )
            docs[buffer] = (r.headers.get("content-length"), doc)
        finally:
            srv.stop()
    (whole_len, whole), (streamed_len, streamed) = docs[10_000_000], docs[3_000]
    assert whole_len is not None and streamed_len is None  # the second one was streamed
    for d in (whole, streamed):
        d.pop("batch_id")
        for x in d["results"]:
            x.pop("decision_id", None)
    assert streamed == whole and streamed["count"] == 40 and streamed["summary"]["invalid"] == 1


# -- item 5: a batch is judged by one bundle while reloads swap engines ---------------------------------------------
def test_batches_are_judged_on_one_bundle_during_reloads(fresh_api):
    stop = threading.Event()
    reloads, failures = [], []
    bundle = fresh_api.rules_dir / "bundle.yaml"
    original = bundle.read_text()

    def reloader():
        with fresh_api.client("admin") as c:
            for i in itertools.count():
                if stop.is_set():
                    return
                if i % 2:
                    bundle.write_text(original)
                else:
                    bump_version(fresh_api.rules_dir, f"9.9.{i}")
                r = c.post("/v1/rulesets/reload")
                if r.status_code != 200:
                    failures.append(r.text)
                reloads.append(r.json().get("status"))
                time.sleep(0.01)

    def checker():
        with fresh_api.client() as c:
            while not stop.is_set():
                r = c.post("/v1/check", json=REQ)
                if r.status_code != 200 or r.json()["ruleset"]["hash"] != r.headers["Dfft-Ruleset-Hash"]:
                    failures.append(r.text)

    threads = [threading.Thread(target=reloader, daemon=True), threading.Thread(target=checker, daemon=True)]
    for t in threads:
        t.start()
    hashes = set()
    try:
        with fresh_api.client() as c:
            deadline = time.monotonic() + 8
            n = 0
            while n < 6 or (len(hashes) < 2 and time.monotonic() < deadline):
                n += 1
                r = c.post(
                    "/v1/check/batch", json={"requests": [{**REQ, "subjects": n * 1000 + k} for k in range(300)]}
                )
                assert r.status_code == 200, r.text
                doc = r.json()
                batch_hash = doc["ruleset"]["hash"]
                assert r.headers["Dfft-Ruleset-Hash"] == batch_hash
                assert {x["decision"]["ruleset"]["hash"] for x in doc["results"]} == {batch_hash}
                hashes.add(batch_hash)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not failures, failures[:3]
    assert reloads.count("reloaded") >= 2 and len(hashes) >= 2
