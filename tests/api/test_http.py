"""The service over real HTTP: checks, batch limits, auth, bad input, problem details, audit log, fail-closed."""

from __future__ import annotations

import json
from concurrent.futures import Future

import httpx
import pytest

from dfft.api.audit import AuditUnavailable
from dfft.engine import Engine, EngineError
from dfft.rules import load_ruleset

from ..conftest import MINI
from .conftest import REQ

PROBLEM = "application/problem+json"


def assert_problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["title"] and body["type"]
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body


# -- probes and checks ---------------------------------------------------------------------------------------------
def test_probes_need_no_key(api):
    with api.client(key=None) as c:
        # status only: the bundle's hash and version are for authenticated callers (/v1/rulesets/current)
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json() == {"status": "ready"}


def test_check_is_the_engine_decision_and_names_its_bundle(api):
    expected = Engine(load_ruleset(MINI)).check(REQ)
    with api.client() as c:
        r = c.post("/v1/check", json=REQ)
    assert r.status_code == 200, r.text
    # the engine's decision, byte for byte, with this check's audit-log id appended (also in the header)
    did = r.headers["Dfft-Decision-Id"]
    assert r.content == expected.model_dump_json().encode()[:-1] + f',"decision_id":"{did}"}}'.encode()
    assert r.json()["ruleset"]["hash"] == r.headers["Dfft-Ruleset-Hash"] == expected.ruleset.hash
    assert len(did) == 32


def test_decision_id_is_per_check_though_decisions_are_memoised(api):
    """Equal requests share one memoised decision, but every check is its own audit row with its own id, in the body
    and the header alike."""
    with api.client() as c:
        a, b = c.post("/v1/check", json=REQ), c.post("/v1/check", json=REQ)
    assert a.status_code == b.status_code == 200
    ids = [r.json()["decision_id"] for r in (a, b)]
    assert ids == [a.headers["Dfft-Decision-Id"], b.headers["Dfft-Decision-Id"]] and ids[0] != ids[1]
    strip = [{k: v for k, v in r.json().items() if k != "decision_id"} for r in (a, b)]
    assert strip[0] == strip[1]
    with api.client("admin") as c:
        items = c.get("/v1/decisions", params={"destination": "VN", "limit": 1000}).json()["items"]
    assert set(ids) <= {i["id"] for i in items}


V2 = {
    **REQ,
    "origin": "SG",
    "destination": "US",
    "via": [{"jurisdiction": "JP", "transit": True}],
    "nationality": ["VN"],
    "recipient": {"relation": "group_company", "access": "full"},
    "safeguards": [{"id": "tia_filed", "outcome": "unfavourable"}],
}


def test_v2_request_over_http_is_the_engine_decision(api):
    """Request model v2 over HTTP: transit hops, recipients, nationality and safeguard outcomes are part of the API's
    schema, and the decision (with its applicable-law section) is byte-for-byte the engine's."""
    expected = Engine(load_ruleset(MINI)).check(V2)
    with api.client() as c:
        r = c.post("/v1/check", json=V2)
        schema = c.get("/openapi.json").json()
    assert r.status_code == 200, r.text
    did = r.headers["Dfft-Decision-Id"]
    assert r.content == expected.model_dump_json().encode()[:-1] + f',"decision_id":"{did}"}}'.encode()
    body = r.json()
    assert [(g["jurisdiction"], g["basis"]) for g in body["regimes"]] == [("SG", "origin"), ("VN", "reach")]
    assert body["verdict"] == "blocked"  # VN-negative-assessment: the assessment concluded protection inadequate
    text = json.dumps(schema)
    for name in ("Recipient", "Hop", "SafeguardOutcome", "RegimeOut", "NotTransfer"):
        assert name in text, f"{name} missing from the OpenAPI schema"


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"recipient": {"access": "partial"}}, "recipient"),
        ({"via": [{"jurisdiction": "JP", "transit": "yes"}]}, "via"),
        ({"safeguards": [{"id": "tia_filed", "outcome": "maybe"}]}, "safeguards"),
        ({"counts": {"health": 10}}, "counts.health"),
        ({"exporter_role": "owner"}, "exporter_role"),
    ],
)
def test_v2_bad_facts_are_422_naming_the_field(api, patch, field):
    with api.client() as c:
        body = assert_problem(c.post("/v1/check", json={**REQ, **patch}), 422)
    assert any(e["field"].startswith(field) for e in body["errors"]), body["errors"]


def test_x_api_key_header_works_too(api):
    with httpx.Client(base_url=api.url, headers={"X-API-Key": api.check_key}) as c:
        assert c.post("/v1/check", json=REQ, params={"allow_other_date": "true"}).status_code == 200


def test_every_decision_is_in_the_audit_log(api):
    with api.client() as c:
        r = c.post("/v1/check", json={**REQ, "subjects": 4242})
    did = r.headers["Dfft-Decision-Id"]
    with api.client("admin") as c:
        items = c.get("/v1/decisions", params={"destination": "vn", "limit": 1000}).json()["items"]
    rec = {i["id"]: i for i in items}[did]
    assert rec["verdict"] == r.json()["verdict"] and rec["ruleset_hash"] == r.json()["ruleset"]["hash"]
    assert rec["request"]["subjects"] == 4242 and rec["caller"] == api.check_key.split("_")[1]
    assert rec["rule_ids"] == [f["rule_id"] for f in r.json()["findings"]] and len(rec["request_hash"]) == 64


# -- auth ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"X-API-Key": "dfft_000000000000_x"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_missing_or_wrong_key_is_401(api, headers):
    with httpx.Client(base_url=api.url, headers=headers) as c:
        body = assert_problem(c.post("/v1/check", json=REQ), 401)
    assert "key" in body["title"].lower()


def test_right_id_wrong_secret_is_401(api):
    forged = api.check_key[:-4] + ("AAAA" if not api.check_key.endswith("AAAA") else "BBBB")
    with api.client(forged) as c:
        assert_problem(c.post("/v1/check", json=REQ), 401)


@pytest.mark.parametrize(
    "method, path", [("POST", "/v1/rulesets/reload"), ("GET", "/v1/decisions"), ("GET", "/v1/decisions/export")]
)
def test_check_scope_cannot_use_admin_endpoints(api, method, path):
    with api.client("check") as c:
        body = assert_problem(c.request(method, path), 403)
    assert "admin" in body["detail"]


def test_admin_key_can_check(api):
    with api.client("admin") as c:
        assert c.post("/v1/check", json=REQ).status_code == 200


def test_revoked_key_is_refused(api):
    token, key = api.app.state.keys.create("check", "to revoke")
    with api.client(token) as c:
        assert c.post("/v1/check", json=REQ).status_code == 200
        assert api.app.state.keys.revoke(key.id)
        assert_problem(c.post("/v1/check", json=REQ), 401)


def test_keys_are_hashed_at_rest(api):
    import sqlalchemy as sa

    with api.app.state.db.connect() as c:
        stored = " ".join(str(v) for row in c.execute(sa.text("SELECT * FROM api_keys")) for v in row)
    assert api.check_key.split("_", 2)[2] not in stored and api.admin_key.split("_", 2)[2] not in stored


# -- bad input -----------------------------------------------------------------------------------------------------
def test_unknown_country_lists_the_valid_ones(api):
    with api.client() as c:
        body = assert_problem(c.post("/v1/check", json={**REQ, "origin": "XX"}), 422)
    assert "JP, SG, VN" in body["detail"]
    assert body["errors"][0]["field"] == "origin" and body["errors"][0]["valid"] == ["JP", "SG", "VN"]


def test_unknown_category_lists_the_valid_ones(api):
    with api.client() as c:
        body = assert_problem(c.post("/v1/check", json={**REQ, "data_categories": ["personnel"]}), 422)
    assert "personal" in body["errors"][0]["valid"]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"origin": "JP"},
        {**REQ, "subjects": -1},
        {**REQ, "extra": 1},
        [],
        "x",
        {**REQ, "as_of": "soon"},
        {**REQ, "data_categories": []},
    ],
)
def test_malformed_requests_are_422_with_fields(api, payload):
    with api.client() as c:
        body = assert_problem(c.post("/v1/check", json=payload), 422)
    assert body["errors"] and all("field" in e and "message" in e for e in body["errors"])


def test_not_json(api):
    with api.client() as c:
        assert_problem(c.post("/v1/check", content=b"{not json", headers={"Content-Type": "application/json"}), 422)
        assert_problem(
            c.post("/v1/check", content=b"origin=JP", headers={"Content-Type": "application/x-www-form-urlencoded"}),
            415,
        )


def test_body_size_limit(api):
    big = {**REQ, "purpose": "x" * 70_000}
    with api.client() as c:
        body = assert_problem(c.post("/v1/check", json=big), 413)
        assert "65,536" in body["detail"]

        def chunks():  # no Content-Length: the limit is enforced while reading
            for _ in range(100):
                yield b" " * 1000

        assert_problem(c.post("/v1/check", content=chunks(), headers={"Content-Type": "application/json"}), 413)


def test_unknown_path_and_method_are_problems(api):
    with api.client() as c:
        assert_problem(c.get("/v2/check"), 404)
        assert_problem(c.get("/v1/check"), 405)


# -- batch ---------------------------------------------------------------------------------------------------------
def test_batch_results_in_order_with_errors_in_place(api):
    reqs = [
        REQ,
        {**REQ, "origin": "QQ"},
        {**REQ, "origin": "VN", "destination": "SG", "data_categories": ["core_data"]},
        {**REQ, "safeguards": ["consent"]},
    ]
    eng = Engine(load_ruleset(MINI))
    with api.client() as c:
        r = c.post("/v1/check/batch", json={"requests": reqs})
    assert r.status_code == 200, r.text
    b = r.json()
    assert [x["index"] for x in b["results"]] == [0, 1, 2, 3] and b["count"] == 4
    assert b["results"][1]["error"]["status"] == 422 and "decision" not in b["results"][1]
    for i in (0, 2, 3):
        assert b["results"][i]["decision"] == json.loads(eng.check(reqs[i]).model_dump_json())
    verdicts = [eng.check(reqs[i]).verdict for i in (0, 2, 3)]
    assert b["summary"] == {v: verdicts.count(v) for v in ("allowed", "conditional", "blocked")} | {"invalid": 1}
    assert b["summary"]["blocked"] == 1
    assert b["ruleset"]["hash"] == eng.hash
    with api.client("admin") as c:
        recs = c.get("/v1/decisions", params={"batch_id": b["batch_id"]}).json()["items"]
    assert [x["id"] for x in recs] == [b["results"][i]["decision_id"] for i in (0, 2, 3)]


def test_batch_limit_is_10000(api):
    many = [{**REQ, "subjects": i % 7} for i in range(10_000)]
    with api.client() as c:
        r = c.post("/v1/check/batch", json={"requests": many})
        assert r.status_code == 200 and r.json()["count"] == 10_000
        body = assert_problem(c.post("/v1/check/batch", json={"requests": many + [REQ]}), 422)
        assert "at most 10,000 requests" in body["detail"]
        assert_problem(c.post("/v1/check/batch", json={"requests": []}), 422)
    with api.client("admin") as c:
        assert (
            len(c.get("/v1/decisions", params={"batch_id": r.json()["batch_id"], "limit": 1000}).json()["items"])
            == 1000
        )


# -- fail closed ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("exc", [EngineError("durable-rules state exception"), RuntimeError("boom at line 3")])
def test_engine_failure_is_500_without_verdict(api, monkeypatch, exc):
    def broken(_):
        raise exc

    monkeypatch.setattr(api.app.state.rules.engine, "check", broken)
    fresh = {**REQ, "subjects": 987_654 + len(str(exc))}  # not memoised by the service
    with api.client() as c:
        for path, body in (("/v1/check", fresh), ("/v1/check/batch", {"requests": [fresh]})):
            r = c.post(path, json=body)
            problem = assert_problem(r, 500)
            assert "allowed" not in json.dumps({k: v for k, v in problem.items() if k != "detail"})
            assert "boom" not in r.text and "verdict" not in problem


def test_audit_failure_returns_no_decision(api, monkeypatch):
    def fail(rows):
        f: Future = Future()
        f.set_exception(AuditUnavailable("disk full"))
        return f

    monkeypatch.setattr(api.app.state.audit, "submit", fail)
    with api.client() as c:
        r = c.post("/v1/check", json=REQ)
        assert_problem(r, 503)
        assert "verdict" not in r.json()
        assert_problem(c.post("/v1/check/batch", json={"requests": [REQ]}), 503)


# -- rule sets -----------------------------------------------------------------------------------------------------
def test_jurisdictions_and_rules(api):
    with api.client() as c:
        js = c.get("/v1/jurisdictions").json()
        assert [j["code"] for j in js] == ["JP", "SG", "VN"] and js[2]["rules"]["localisation"] == 1
        jp = c.get("/v1/jurisdictions/jp/rules").json()
        assert jp["code"] == "JP" and any(r["id"] == "JP-consent" for r in jp["rules"])
        body = assert_problem(c.get("/v1/jurisdictions/XX/rules"), 404)
        assert body["valid"] == ["JP", "SG", "VN"] and "JP, SG, VN" in body["detail"]
        cur = c.get("/v1/rulesets/current").json()
    rs = load_ruleset(MINI)
    assert cur["version"] == rs.version and cur["hash"] == rs.hash and cur["loaded_at"]


# -- audit log queries ---------------------------------------------------------------------------------------------
def test_decisions_filters_pagination_and_jsonl_export(api):
    with api.client() as c:
        c.post(
            "/v1/check/batch",
            json={
                "requests": [
                    {**REQ, "origin": "VN", "destination": "SG", "data_categories": ["core_data"], "subjects": i}
                    for i in range(5)
                ]
            },
        )
    with api.client("admin") as c:
        blocked = c.get("/v1/decisions", params={"verdict": "blocked", "origin": "VN", "limit": 2}).json()
        assert len(blocked["items"]) == 2 and blocked["next_after"] == blocked["items"][-1]["seq"]
        more = c.get(
            "/v1/decisions",
            params={"verdict": "blocked", "origin": "VN", "after": blocked["next_after"], "limit": 1000},
        ).json()
        assert more["items"] and more["items"][0]["seq"] > blocked["next_after"] and more["next_after"] is None
        # filtered by origin as well: other tests of this module judge blocked transfers from elsewhere
        r = c.get("/v1/decisions/export", params={"verdict": "blocked", "origin": "VN"})
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(x) for x in r.text.splitlines()]
        assert len(lines) == len(blocked["items"]) + len(more["items"])
        assert all(x["verdict"] == "blocked" for x in lines) and [x["seq"] for x in lines] == sorted(
            x["seq"] for x in lines
        )
        first = lines[0]["created_at"]
        assert c.get("/v1/decisions", params={"until": first, "verdict": "blocked"}).json()["items"] == [] or all(
            x["created_at"] < first for x in c.get("/v1/decisions", params={"until": first}).json()["items"]
        )
        assert c.get("/v1/decisions", params={"since": "2999-01-01T00:00:00"}).json()["items"] == []
        assert_problem(c.get("/v1/decisions", params={"verdict": "maybe"}), 422)
        assert_problem(c.get("/v1/decisions", params={"limit": 100_000}), 422)
