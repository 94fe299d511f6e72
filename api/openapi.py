"""The OpenAPI document as a contract a generated client can trust.

FastAPI's generated document is post-processed once (`contract`):
- every error response of every operation is `application/problem+json` with the `Problem` schema (FastAPI documents
  its own validation errors as `HTTPValidationError`, which the service never sends), and every status an operation
  can answer is listed: 500 everywhere; 401, 403 and 503 where a key is checked (the key store is a database); 422
  where there are parameters or a body; 413 and 415 where there is a body;
- the bodies the service parses itself (POST /v1/check and /v1/check/batch: `labels` are split off before the request
  reaches the engine) are documented by their wire models, `CheckRequest` and `BatchRequest`.
Operation ids are set explicitly on every route (api/app.py, api/whatif.py) and are part of the contract.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic.json_schema import models_json_schema

from .models import PROBLEM, BatchRequest, CheckRequest, Problem

REF = "#/components/schemas/{model}"
PROBLEM_REF = {"$ref": REF.format(model="Problem")}

ERROR_TEXT = {
    401: "Missing or invalid API key",
    403: "The API key's scope does not allow this",
    404: "Not found",
    413: "Request body too large",
    415: "The body is not JSON (send `Content-Type: application/json`)",
    422: "Invalid request",
    429: "Too many requests: retry after `Retry-After` seconds",
    500: "Internal error: no verdict (treat the transfer as not allowed)",
    503: "Service unavailable (database or audit log): no verdict; retry after `Retry-After` seconds",
}
RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer", "minimum": 0}}
}

DECISION_HEADERS = {
    "Dfft-Decision-Id": {
        "description": "the audit-log id of the decision (also `decision_id` in the body)",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    },
    "Dfft-Ruleset-Hash": {
        "description": "the content hash of the rule bundle that judged the request",
        "schema": {"type": "string"},
    },
}


def request_body(model: str, description: str) -> dict[str, Any]:
    """`openapi_extra` for a route that parses its JSON body itself: the body is documented as `model`."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
        }
    }


def _wire_models() -> dict[str, Any]:
    _, top = models_json_schema([(CheckRequest, "validation"), (BatchRequest, "validation")], ref_template=REF)
    return top.get("$defs", {})


def contract(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's OpenAPI document, made into the contract described in the module docstring (in place)."""
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    comps["Problem"] = Problem.model_json_schema(ref_template=REF)
    for name, s in _wire_models().items():
        if name in comps and comps[name] != s and name not in ("CheckRequest", "BatchRequest"):
            # a nested model of the wire models that FastAPI documented differently (its output form): keep both
            continue
        comps[name] = s
    for item in schema.get("paths", {}).values():
        for op in item.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            for media in op.get("requestBody", {}).get("content", {}).values():
                if "$ref" in media.get("schema", {}):  # FastAPI's own title ("Body") beside a documented model
                    media["schema"] = {"$ref": media["schema"]["$ref"]}
            responses: dict[str, Any] = op["responses"]
            codes = {500}
            if op.get("security"):
                codes |= {401, 403, 503}
            if op.get("parameters") or op.get("requestBody"):
                codes.add(422)
            if op.get("requestBody"):
                codes |= {413, 415}
            for c in codes:
                responses.setdefault(str(c), {"description": ERROR_TEXT[c]})
            for status, resp in responses.items():
                if not status.isdigit() or int(status) < 400:
                    continue
                resp["content"] = {PROBLEM: {"schema": copy.deepcopy(PROBLEM_REF)}}
                if int(status) in (429, 503):
                    resp.setdefault("headers", {}).update(copy.deepcopy(RETRY_AFTER_HEADER))
                if int(status) == 401:
                    resp.setdefault("headers", {})["WWW-Authenticate"] = {
                        "description": 'the authentication scheme: `Bearer realm="dfft"`',
                        "schema": {"type": "string"},
                    }
            # the order a reader expects: by status code
            op["responses"] = dict(sorted(responses.items(), key=lambda kv: kv[0]))
    text = repr(schema.get("paths"))
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"schemas/{unused}'" not in text:
            comps.pop(unused, None)
    schema["components"]["schemas"] = dict(sorted(comps.items()))
    return schema
