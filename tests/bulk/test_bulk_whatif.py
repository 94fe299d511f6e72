"""The what-if diff and the destination matrix on the `dfft bulk` backends (plugins/bulk_whatif.py): identical to
in-process evaluation, deduplicated by normalised shape, invalid requests reported per transfer, failures fail closed.

The local-backend tests run in the core environment; the Ray ones need `dfft[ray]` (skipped, with the reason,
without it) and run in .ci/run's Ray stage (.venv-ray), with Ray in local mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from dfft.engine import EngineError
from dfft.plugins.bulk import BulkError
from dfft.plugins.bulk_whatif import Backend, WhatifJudge, batch_judge
from dfft.whatif.context import Engines, load_requests
from dfft.whatif.diff import diff
from dfft.whatif.matrix import matrix
from dfft.whatif.scenario import load_scenario

from .conftest import HAVE_RAY, NO_RAY

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TODAY = date(2026, 6, 1)
ORIGINS = ["JP", "SG", "VN", "EU"]


def inventory() -> list[dict]:
    """The example inventory, each row repeated under other ids and in other raw shapes that normalise alike
    (categories reordered and repeated), plus rows that cannot be judged."""
    base = load_requests(EXAMPLES / "inventory.csv")
    rows = []
    for k in range(6):
        for r in base:
            x = {**r, "id": f"{r['id']}/{k}"}
            if k % 2 and len(x.get("data_categories", [])) > 1:
                x["data_categories"] = list(reversed(x["data_categories"]))
            if k == 3:
                x["data_categories"] = [*x.get("data_categories", []), *x.get("data_categories", [])]
            rows.append(x)
    rows.append({"id": "bad-category", "origin": "JP", "destination": "VN", "data_categories": ["personl"]})
    rows.append({"id": "bad-origin", "origin": "XX", "destination": "VN", "data_categories": ["personal"]})
    return rows


def same(a, b) -> None:
    da, db = a.model_dump(mode="json"), b.model_dump(mode="json")
    da.pop("seconds", None), db.pop("seconds", None)  # the matrix's own timing
    assert da == db


@pytest.fixture(scope="module")
def scenario(corpus_rs):
    return load_scenario(EXAMPLES / "asean-mcc.yaml", corpus_rs)


def run_both(corpus_rs, scenario, judge) -> None:
    reqs = inventory()
    with Engines(corpus_rs, today=TODAY) as e:
        ref_diff = diff(e, reqs, scenario)
        ref_matrix = matrix(e, ORIGINS, None, None, scenario, TODAY)
        ref_plain = matrix(e, ORIGINS[:2], None, None, None, TODAY)
    with Engines(corpus_rs, today=TODAY) as e:
        ticks: list[int] = []
        got = diff(e, reqs, scenario, progress=lambda: ticks.append(1), judge=judge)
        same(got, ref_diff)
        assert len(ticks) == len(reqs)  # once per transfer, as in-process
        assert got.counts["errors"] == 2 and got.counts["verdict_changed"] > 0
        done: list[int] = []
        same(matrix(e, ORIGINS, None, None, scenario, TODAY, progress=done.append, judge=judge), ref_matrix)
        assert sum(done) == ref_matrix.checks
        same(matrix(e, ORIGINS[:2], None, None, None, TODAY, judge=judge), ref_plain)
    d = judge.dedup
    assert d["normalised_shapes"] < d["raw_shapes"] < d["requests"]  # deduplicated twice over


def test_local_backend_equals_in_process(corpus_rs, scenario):
    judge = batch_judge("local", None, corpus_rs, TODAY, scenario)
    try:
        assert judge.name == "local"
        run_both(corpus_rs, scenario, judge)
    finally:
        judge.close()


def test_a_worker_on_another_scenario_rule_set_is_refused(corpus_rs, scenario):
    with pytest.raises(BulkError, match="same bundle"):
        Backend("local", None, corpus_rs, TODAY, scenario, "0" * 64)


def test_an_engine_failure_fails_the_analysis_closed(corpus_rs, scenario, monkeypatch):
    judge = batch_judge("local", None, corpus_rs, TODAY, scenario)

    def broken(self, which, requests):
        return [(False, json.dumps({"fatal": "RuntimeError: boom"}))] * len(requests)

    monkeypatch.setattr(WhatifJudge, "_judge", broken)
    try:
        with Engines(corpus_rs, today=TODAY) as e, pytest.raises(EngineError, match="boom"):
            diff(e, load_requests(EXAMPLES / "inventory.csv"), scenario, judge=judge)
    finally:
        judge.close()


# -- Ray (dfft[ray]) --------------------------------------------------------------------------------------------
def test_ray_backend_equals_in_process(ray_local, corpus_rs, scenario):
    judge = batch_judge("ray", None, corpus_rs, TODAY, scenario, workers=2)
    try:
        assert judge.name == "ray" and judge.workers == 2
        run_both(corpus_rs, scenario, judge)
    finally:
        judge.close()
    assert ray_local.is_initialized()  # joined the session's Ray, left it running


@pytest.mark.skipif(not HAVE_RAY, reason=NO_RAY)
def test_cli_whatif_and_matrix_on_ray_print_what_in_process_gives(corpus_rs, scenario, tmp_path):
    """`dfft whatif --inventory FILE --ray` and `dfft matrix --ray`, end to end (each CLI starts its own Ray), against
    the in-process analyses."""

    def cli(*args: str) -> dict:
        p = subprocess.run(
            [sys.executable, "-m", "dfft", *args, "--as-of", TODAY.isoformat(), "--json", "--ray", "--workers", "2"],
            capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        assert "on Ray (2 workers)" in p.stderr or args[0] == "whatif", p.stderr
        return json.loads(p.stdout)

    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps(inventory()), encoding="utf-8")
    with Engines(corpus_rs, today=TODAY) as e:
        want_diff = diff(e, load_requests(inv), scenario).model_dump(mode="json")
        want_matrix = matrix(e, ["JP", "SG"], None, None, scenario, TODAY).model_dump(mode="json")
    assert cli("whatif", str(EXAMPLES / "asean-mcc.yaml"), "--inventory", str(inv)) == want_diff
    got = cli("matrix", "--from", "JP,SG", "--scenario", str(EXAMPLES / "asean-mcc.yaml"))
    got.pop("seconds"), want_matrix.pop("seconds")
    assert got == want_matrix
