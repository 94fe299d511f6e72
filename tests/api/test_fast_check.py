"""POST /v1/check's pure-ASGI fast path answers exactly as the FastAPI route does. A query parameter the route ignores
(`route=1`) sends the same request through the route instead, so each pair below is the same request answered both
ways (over real HTTP, by a real server)."""

from __future__ import annotations

import pytest

from .conftest import REQ

FIXED = {"allow_other_date": "true"}  # the fast path's own query (REQ judges as of a fixed date)
ROUTE = {**FIXED, "route": "1"}  # anything else goes through the route


def both(api, body, headers=None, key="check"):
    with api.client(key, fixed_dates=False) as c:
        fast = c.post("/v1/check", params=FIXED, json=body, headers=headers or {})
        route = c.post("/v1/check", params=ROUTE, json=body, headers=headers or {})
    return fast, route


def same_answer(fast, route):
    assert fast.status_code == route.status_code
    for h in ("content-type", "x-content-type-options", "content-security-policy", "dfft-ruleset-hash"):
        assert fast.headers.get(h) == route.headers.get(h), h
    f, r = fast.json(), route.json()
    if fast.status_code == 200:
        assert f.pop("decision_id") != r.pop("decision_id")  # each check its own audit record
        assert fast.headers["dfft-decision-id"] != route.headers["dfft-decision-id"]
    assert f == r


@pytest.mark.parametrize(
    "body",
    [
        REQ,
        {**REQ, "labels": {"job": "etl-7"}},
        {**REQ, "destination": "SG", "safeguards": ["consent"]},
        {**REQ, "destination": "XX"},  # unknown country: 422 from the route, reached through the fast path
        {**REQ, "subjects": "many"},  # invalid field
    ],
)
def test_fast_path_answers_as_the_route(api, body):
    fast, route = both(api, body)
    same_answer(fast, route)
    again, _ = both(api, body)  # the second time from the body memo
    same_answer(again, route)


def test_fast_path_decisions_are_audited_with_their_labels(api):
    body = {**REQ, "subjects": 4242, "labels": {"job": "fast-path"}}
    fast, route = both(api, body)
    ids = {fast.json()["decision_id"], route.json()["decision_id"]}
    with api.client("admin") as c:
        items = c.get("/v1/decisions", params={"label": "job:fast-path", "limit": 1000}).json()["items"]
    assert ids <= {d["id"] for d in items}
    assert all(d["labels"] == {"job": "fast-path"} for d in items if d["id"] in ids)


@pytest.mark.parametrize(
    "headers,status",
    [
        ({"Authorization": "Basic abc"}, 200),  # not a bearer token: the X-API-Key below counts, as on the route
        ({"Authorization": "Bearer dfft_000000000000_wrong"}, 401),  # a bearer token wins over X-API-Key
        ({"Content-Type": "text/plain"}, 415),
        ({"Content-Type": "text/json"}, 422),  # not parsed as JSON by the route
        ({"Content-Type": "application/problem+json"}, 200),
    ],
)
def test_fast_path_headers_as_the_route(api, headers, status):
    hdrs = {"X-API-Key": api.check_key, **headers}
    with api.client(None, fixed_dates=False) as c:
        fast = c.post(
            "/v1/check", params=FIXED, content=_json(REQ), headers={"Content-Type": "application/json", **hdrs}
        )
        route = c.post(
            "/v1/check", params=ROUTE, content=_json(REQ), headers={"Content-Type": "application/json", **hdrs}
        )
    assert fast.status_code == status
    same_answer(fast, route)


def _json(body):
    import json

    return json.dumps(body)


def _count(text: str, line: str) -> float:
    """The value of one sample line of the Prometheus exposition (0 when absent)."""
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.split()[-1])
    return 0.0


def test_fast_path_is_counted_in_the_request_metrics(api):
    """The fast path runs ahead of the metrics middleware, so it records its requests itself, as the middleware
    would: the route template, the method and the status."""
    ok = 'dfft_http_requests_total{method="POST",route="/v1/check",status="200"}'
    timed = 'dfft_http_request_duration_seconds_count{method="POST",route="/v1/check"}'
    with api.client(None) as anon:
        before = anon.get("/metrics").text
    with api.client("check", fixed_dates=False) as c:
        for n in range(3):
            assert c.post("/v1/check", params=FIXED, json={**REQ, "subjects": 777 + n}).status_code == 200
    with api.client(None) as anon:
        after = anon.get("/metrics").text
    assert _count(after, ok) - _count(before, ok) == 3
    assert _count(after, timed) - _count(before, timed) == 3


def _padded(size: int) -> bytes:
    """A valid check request of more than `size` bytes (JSON padded with whitespace: valid but for its size)."""
    import json

    return json.dumps(REQ).encode() + b" " * size


@pytest.mark.parametrize("chunked", [False, True])
def test_fast_path_keeps_the_body_limit(api, chunked):
    """A body over the limit gets the body limit's 413 (with or without Content-Length), as the route would."""
    limit = api.app.state.settings.max_body
    body = _padded(limit + 10)
    content = (body[i : i + 4096] for i in range(0, len(body), 4096)) if chunked else body
    with api.client("check", fixed_dates=False) as c:
        r = c.post("/v1/check", params=FIXED, content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["type"] == "urn:dfft:problem:body-too-large"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_fast_path_reads_a_body_sent_in_chunks(api):
    import json

    body = json.dumps({**REQ, "subjects": 4243}).encode()
    chunks = (body[i : i + 7] for i in range(0, len(body), 7))
    with api.client("check", fixed_dates=False) as c:
        fast = c.post("/v1/check", params=FIXED, content=chunks, headers={"Content-Type": "application/json"})
        route = c.post("/v1/check", params=ROUTE, content=body, headers={"Content-Type": "application/json"})
    assert fast.status_code == 200
    same_answer(fast, route)
