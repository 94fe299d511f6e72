"""The OpenAPI document is a contract a generated client can trust, and the API keeps it: problem details on every
error, explicit operation ids, unique model names, described fields, the vocabulary, the decision id and caller
labels. Against the real server over HTTP."""

from __future__ import annotations

import re

import httpx
import pytest

from dfft.api.models import MAX_LABELS
from dfft.rules import load_ruleset

from ..conftest import MINI
from .conftest import REQ

PROBLEM = "application/problem+json"

OPERATIONS = {
    ("get", "/healthz"): "getHealth",
    ("get", "/readyz"): "getReadiness",
    ("post", "/v1/check"): "checkTransfer",
    ("post", "/v1/check/batch"): "checkTransferBatch",
    ("get", "/v1/jurisdictions"): "listJurisdictions",
    ("get", "/v1/jurisdictions/{code}/rules"): "getJurisdictionRules",
    ("get", "/v1/rulesets/current"): "getCurrentRuleset",
    ("get", "/v1/vocabulary"): "getVocabulary",
    ("post", "/v1/rulesets/reload"): "reloadRuleset",
    ("get", "/v1/decisions"): "listDecisions",
    ("get", "/v1/decisions/export"): "exportDecisions",
    ("get", "/metrics"): "getMetrics",
    ("post", "/v1/whatif/diff"): "whatifDiff",
    ("post", "/v1/whatif/matrix"): "whatifMatrix",
    ("post", "/v1/whatif/timeline"): "whatifTimeline",
    ("post", "/v1/whatif/remedy"): "whatifRemedy",
    ("post", "/v1/whatif/report"): "whatifReport",
}


@pytest.fixture(scope="module")
def spec(api) -> dict:
    return httpx.get(api.url + "/openapi.json", timeout=30).json()


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield method, path, op


def test_operation_ids_are_explicit_and_stable(spec):
    assert {(m, p): op["operationId"] for m, p, op in operations(spec)} == OPERATIONS


def test_every_error_response_is_a_problem(spec):
    comps = spec["components"]["schemas"]
    assert "HTTPValidationError" not in comps and "ValidationError" not in comps
    assert {"type", "title", "status", "detail", "errors"} <= set(comps["Problem"]["properties"])
    for method, path, op in operations(spec):
        codes = {int(c) for c in op["responses"] if c.isdigit()}
        assert 500 in codes, (method, path)
        if op.get("security"):
            assert {401, 403, 503} <= codes, (method, path)
        if op.get("requestBody"):
            assert {413, 415, 422} <= codes, (method, path)
        for code, resp in op["responses"].items():
            if int(code) >= 400:
                assert resp["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}, (
                    method,
                    path,
                    code,
                )
                if int(code) in (429, 503):
                    assert "Retry-After" in resp["headers"]


def pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


def test_model_names_do_not_clash_with_names_generators_give_inline_objects(spec):
    """A client generator names an inline object property `<Model><Property>` (openapi-python-client: the `request`
    object of `Timeline` becomes `TimelineRequest`); no component may have such a name."""
    comps = spec["components"]["schemas"]
    clashes = []
    for name, schema in comps.items():
        for prop, p in schema.get("properties", {}).items():
            variants = [p, *p.get("anyOf", [])]
            if (
                any(v.get("type") == "object" and "$ref" not in v for v in variants)
                and pascal(name + "_" + prop) in comps
            ):
                clashes.append(f"{name}.{prop}")
    assert clashes == []
    assert "WhatIfTimelineRequest" in comps and "TimelineRequest" not in comps


@pytest.mark.parametrize("model", ["Decision", "Finding", "ObligationOut", "CitationOut", "RuleSetRef", "Problem"])
def test_decision_fields_are_described(spec, model):
    props = spec["components"]["schemas"][model]["properties"]
    assert [p for p, s in props.items() if not s.get("description")] == []


def test_check_documents_labels_and_the_decision_id(spec):
    op = spec["paths"]["/v1/check"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CheckRequest"}
    labels = spec["components"]["schemas"]["CheckRequest"]["properties"]["labels"]
    obj = next(v for v in labels["anyOf"] if v.get("type") == "object")
    assert obj["maxProperties"] == MAX_LABELS and obj["additionalProperties"]["type"] == "string"
    assert obj["propertyNames"]["pattern"] and "patternProperties" not in obj  # generators ignore patternProperties
    ok = op["responses"]["200"]
    assert set(ok["headers"]) == {"Dfft-Decision-Id", "Dfft-Ruleset-Hash"}
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CheckedDecision"}
    assert "decision_id" in spec["components"]["schemas"]["CheckedDecision"]["properties"]
    batch = spec["components"]["schemas"]["BatchRequest"]["properties"]["requests"]["items"]
    assert batch == {"$ref": "#/components/schemas/CheckRequest"}


def test_vocabulary_lists_every_value_with_its_description(api):
    vocab = load_ruleset(MINI).vocabulary
    assert httpx.get(api.url + "/v1/vocabulary", timeout=30).status_code == 401
    with api.client() as c:
        r = c.get("/v1/vocabulary")
    assert r.status_code == 200, r.text
    v = r.json()
    assert [t["name"] for t in v["data_categories"]] == list(vocab.data_categories)
    health = next(t for t in v["data_categories"] if t["name"] == "health")
    assert health["parents"] == ["sensitive_personal"] and health["description"]
    assert {t["name"]: t["description"] for t in v["safeguards"]} == dict(vocab.safeguards)
    assert {t["name"]: t["description"] for t in v["purposes"]} == dict(vocab.purposes)
    assert {t["name"]: t["description"] for t in v["exporters"]} == dict(vocab.exporters)
    assert [t["name"] for t in v["sectors"]] == list(vocab.sectors)


# -- labels ----------------------------------------------------------------------------------------------------------
def test_labels_are_stored_returned_and_filtered_but_never_change_the_decision(api):
    rules = api.app.state.rules
    req = {**REQ, "subjects": 31337}
    with api.client() as c:
        plain = c.post("/v1/check", json=req)
        memo = len(rules._memo)
        a = c.post("/v1/check", json={**req, "labels": {"job": "etl-7", "dataset": "customers"}})
        b = c.post("/v1/check", json={**req, "labels": {"job": "etl-8", "trace_id": "abc:def"}})
        assert len(rules._memo) == memo  # same request, other labels: the memo entry is reused, not duplicated
    for r in (plain, a, b):
        assert r.status_code == 200, r.text
    body = [{k: v for k, v in r.json().items() if k != "decision_id"} for r in (plain, a, b)]
    assert body[0] == body[1] == body[2] and "labels" not in body[0]["request"]
    with api.client("admin") as c:
        got = c.get("/v1/decisions", params={"label": "job:etl-7"}).json()["items"]
        assert [x["id"] for x in got] == [a.json()["decision_id"]]
        assert got[0]["labels"] == {"job": "etl-7", "dataset": "customers"} and "labels" not in got[0]["request"]
        both = c.get("/v1/decisions", params={"label": ["job:etl-8", "trace_id:abc:def"]}).json()["items"]
        assert [x["id"] for x in both] == [b.json()["decision_id"]]
        assert c.get("/v1/decisions", params={"label": ["job:etl-7", "trace_id:abc:def"]}).json()["items"] == []
        hashes = {
            x["request_hash"]
            for x in c.get("/v1/decisions", params={"limit": 1000}).json()["items"]
            if x["id"] in {r.json()["decision_id"] for r in (plain, a, b)}
        }
        assert len(hashes) == 1  # labels are not part of the request hash
        lines = c.get("/v1/decisions/export", params={"label": "dataset:customers"}).text.splitlines()
        assert len(lines) == 1 and a.json()["decision_id"] in lines[0]


def test_batch_items_carry_their_own_labels(api):
    reqs = [{**REQ, "labels": {"job": "batch-lab", "row": str(i)}} for i in range(3)] + [{**REQ, "origin": "XX"}]
    with api.client() as c:
        r = c.post("/v1/check/batch", json={"requests": reqs})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert res[3]["error"]["status"] == 422
    with api.client("admin") as c:
        items = c.get("/v1/decisions", params={"label": "job:batch-lab"}).json()["items"]
    assert [(x["id"], x["labels"]["row"]) for x in items] == [(res[i]["decision_id"], str(i)) for i in range(3)]


@pytest.mark.parametrize(
    "labels, field",
    [
        ({f"k{i}": "v" for i in range(MAX_LABELS + 1)}, "labels"),
        ({"Job": "x"}, "labels.Job"),
        ({"9job": "x"}, "labels.9job"),
        ({"k" * 65: "x"}, "labels"),
        ({"job": "x" * 257}, "labels.job"),
        ({"job": 7}, "labels.job"),
        (["job", "x"], "labels"),
    ],
)
def test_invalid_labels_are_422_naming_the_field(api, labels, field):
    with api.client() as c:
        for r, prefix in (
            (c.post("/v1/check", json={**REQ, "labels": labels}), ""),
            (c.post("/v1/check/batch", json={"requests": [REQ, {**REQ, "labels": labels}]}), "requests.1."),
        ):
            assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
            fields = [e["field"] for e in r.json()["errors"]]
            assert any(f.startswith(prefix + field.split(".")[0]) for f in fields), fields


@pytest.mark.parametrize("bad", ["job", "Job:x", ":x", "j" * 65 + ":x"])
def test_invalid_label_filter_is_422(api, bad):
    with api.client("admin") as c:
        r = c.get("/v1/decisions", params={"label": bad})
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
    assert r.json()["errors"][0]["field"].startswith("query.label")
