"""Property-based API testing from the OpenAPI schema (schemathesis), against the real server over HTTP: no
generated request, valid or not, may produce a 5xx; responses must match the documented schemas and types."""

from __future__ import annotations

import time

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks as C
from schemathesis.specs.openapi import checks as O

# Examples per operation (it was 20 for every one): 100 for the operations with a body or parameters (checks, batch,
# rules of a jurisdiction, audit log: the contract a pipeline lives on); 20 for the what-if analyses, each of which may
# compile scenarios and judge whole matrices; 10 for those without input (probes, lists) and for the reload (it reads
# and hashes the bundle each time).
MAX_EXAMPLES = 100
WHATIF_EXAMPLES = 20
FEW_EXAMPLES = 10


def examples(op) -> int:
    if "/whatif/" in op.path:
        return WHATIF_EXAMPLES
    if op.path == "/v1/rulesets/reload" or not (
        op.definition.raw.get("parameters") or op.definition.raw.get("requestBody")
    ):
        return FEW_EXAMPLES
    return MAX_EXAMPLES


def test_api_never_fails_with_5xx(api):
    # Operations are driven here with hypothesis directly (schemathesis' pytest fixture loader does not support
    # the installed pytest); each operation gets its own bounded, derandomised run.
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {api.admin_key}"}  # every operation reachable; auth is tested elsewhere
    chosen = [
        C.not_a_server_error,
        O.status_code_conformance,
        O.content_type_conformance,
        O.response_schema_conformance,
    ]
    ran = []
    for result in schema.get_all_operations():
        op = result.ok()

        @given(case=op.as_strategy())
        @settings(
            max_examples=examples(op),
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            # a bounded wait: a response that never ends (seen once under heavy load on GET /v1/decisions/export,
            # not reproduced) fails this test with a read timeout instead of hanging the suite
            case.call_and_validate(headers=headers, checks=chosen, timeout=120)

        t0 = time.monotonic()
        run()
        ran.append(op.label)
        print(f"{op.label}: {time.monotonic() - t0:.1f} s")
    assert len(ran) >= 10, ran
