"""The durable-rules backend (with its compiled applicable-law conditions, shared decision parts and memos) gives the
decisions the reference interpreter gives, on the benchmark's own seeded workload: v1-shaped requests
(bench/workload.py) and requests with the facts of request model v2 (bench/decisions.py), on the embedded corpus.

No timing here: benchmarks live in bench/."""

from __future__ import annotations

import sys
from datetime import date
from functools import cache
from pathlib import Path

import pytest

from dfft.engine import Engine, RequestError
from dfft.rules import load_ruleset
from dfft.rules.model import RuleSet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.decisions import v2_requests  # noqa: E402
from bench.workload import requests  # noqa: E402

TODAY = date(2026, 3, 1)


@cache
def corpus() -> RuleSet:
    rs = load_ruleset()
    if not rs.jurisdictions:
        pytest.skip("the embedded corpus has no jurisdictions")
    return rs


def _answer(eng: Engine, r: dict) -> str:
    try:
        return eng.check(r, today=TODAY).model_copy(update={"engine": "-"}).model_dump_json()
    except RequestError as e:
        return f"error {e.errors}"


@pytest.mark.parametrize("shape", ["v1", "v2"])
def test_durable_equals_reference_on_the_workload(shape):
    rs = corpus()
    reqs = requests(rs, 400, seed=11) if shape == "v1" else v2_requests(rs, 400, seed=13)
    durable = Engine(rs, cache_size=64)  # a small memo that evicts, so hits and misses both occur
    reference = Engine(rs, backend="reference", cache_size=0)
    for r in reqs + reqs[:50]:  # the repeats are memo hits
        assert _answer(durable, r) == _answer(reference, r), r
