"""`dfft bulk`: same decisions as Engine.check on every row, every row accounted for, failures fail closed.

The in-process tests run in the core environment; the Ray tests need `dfft[ray]` and are skipped (with the reason)
without it. `.ci/run` runs this folder with Ray in local mode in its own stage (.venv-ray)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bench.bulk_inventory import write_csv, write_jsonl, write_parquet
from dfft.engine import Engine, RequestError
from dfft.plugins.airflow.regions import RegionMap
from dfft.plugins.bulk import (
    BulkError,
    Judge,
    LocalBackend,
    RayBackend,
    read_output,
    read_rows,
    run,
)

from .conftest import HAVE_ARROW, HAVE_RAY, NO_ARROW, NO_RAY

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "inventory.csv"
TODAY = date(2026, 6, 1)


def judge_all(path: Path, backend: Any, fmt: str | None = None, **kw: Any) -> tuple[list[dict], Any]:
    out: list[dict] = []
    _, rows = read_rows(path, fmt, kw.pop("region_map", None))
    s = run(rows, out.extend, backend, **kw)
    return out, s


def in_process(path: Path, rs, fmt: str | None = None, region_map=None) -> list[dict]:
    """What one Engine says, row by row in input order (the reference every backend must equal)."""
    engine = Engine(rs)
    _, rows = read_rows(path, fmt, region_map)
    out = []
    for r in rows:
        rec: dict[str, Any] = {"row": r.number, "id": r.id}
        if r.request is None:
            rec.update(verdict=None, rules=[], error=r.error)
        else:
            try:
                d = engine.check(r.request, TODAY)
                rec.update(
                    verdict=d.verdict, rules=d.rule_ids, ruleset=d.ruleset.hash, decision=d.model_dump(mode="json")
                )
            except RequestError as e:
                msg = "; ".join(f"{x['field']}: {x['message']}" for x in e.errors)
                rec.update(verdict=None, rules=[], error=f"invalid request: {msg}")
        out.append(rec)
    return out


@pytest.fixture(scope="module")
def local(corpus_rs):
    b = LocalBackend(None, corpus_rs.hash, TODAY.isoformat(), True)
    yield b
    b.close()


@pytest.fixture(scope="module")
def inventory(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("inv") / "inv.jsonl", 3000, shapes=400, bad=5)


# -- in-process backend (core environment) ----------------------------------------------------------------------
def test_local_equals_engine_check_on_examples_and_generated(local, corpus_rs, inventory):
    for path in (EXAMPLES, inventory):
        got, s = judge_all(path, local, chunk=700, batch=64)  # several chunks: dedup across chunk boundaries
        want = in_process(path, corpus_rs)
        assert got == want
        assert s.rows == len(want) and s.judged + s.errors == s.rows
    assert s.errors > 0 and s.failed == 0  # the generated inventory has invalid rows on purpose
    assert s.shapes < s.raw_shapes <= 400 < s.rows  # deduplicated: far fewer shapes judged than rows


def test_bad_rows_are_reported_with_row_and_reason_never_dropped(local, tmp_path):
    csv_ = tmp_path / "bad.csv"
    csv_.write_text(
        "id,origin,destination,data_categories,subjects\n"
        "a,JP,SG,personal,10\n"
        "b,JP,SG,personal,ten\n"
        "c,JP,SG,personal,10,extra\n"
        "d,XX,SG,personal,10\n"
        "e,JP,VN,health,\n",
        encoding="utf-8",
    )
    got, s = judge_all(csv_, local)
    assert [r["id"] for r in got] == ["a", "b", "line 4", "d", "e"]
    assert [r["row"] for r in got] == [1, 2, 3, 4, 5]
    errs = {r["id"]: r["error"] for r in got if r.get("error")}
    assert "subjects: 'ten' is not a whole number" in errs["b"]
    assert "more fields than the header" in errs["line 4"]
    assert errs["d"].startswith("invalid request: origin:")
    assert all(r["verdict"] is None for r in got if r.get("error"))
    assert s.errors == 3 and s.judged == 2

    jl = tmp_path / "bad.jsonl"
    jl.write_text(
        '{"origin":"JP","destination":"SG","data_categories":["personal"]}\n{not json\n[1]\n\n'
        '{"origin":"JP","destination":"SG","data_categories":"personal;health","via":7}\n',
        encoding="utf-8",
    )
    got, s = judge_all(jl, local)
    assert [(r["row"], r["verdict"] is None) for r in got] == [(1, False), (2, True), (3, True), (4, True)]
    assert "line 2: not JSON" in got[1]["error"] and "expected an object" in got[2]["error"]
    assert "field via: expected a list" in got[3]["error"]


def test_v2_columns_in_csv_and_jsonl_equal_engine_check(local, corpus_rs, tmp_path):
    csv_ = tmp_path / "v2.csv"
    csv_.write_text(
        "id,origin,destination,data_categories,subjects,recipient_role,recipient_access,purposes,transit,counts\n"
        "store,JP,US,personal,5000,processor,none,cloud_storage,,\n"
        "handle,JP,US,personal,5000,processor,,cloud_storage,SG,personal=5000\n"
        "bad,JP,US,personal,5000,,,,,personal=lots\n",
        encoding="utf-8",
    )
    got, s = judge_all(csv_, local)
    assert got == in_process(csv_, corpus_rs)
    by_id = {r["id"]: r for r in got}
    assert by_id["store"]["verdict"] == "allowed" and by_id["handle"]["verdict"] == "conditional"
    assert "field counts" in by_id["bad"]["error"] and s.errors == 1


def test_engine_failure_fails_closed(corpus_rs):
    b = LocalBackend(None, corpus_rs.hash, TODAY.isoformat(), False)
    b.judge.engine.close()  # every check now raises EngineError
    got, s = judge_all(EXAMPLES, b)
    assert len(got) == 8 and all(r["verdict"] is None and r["error"].startswith("engine error") for r in got)
    assert s.failed == s.errors == 8 and not s.verdicts


def test_worker_on_another_bundle_is_refused(corpus_rs):
    with pytest.raises(BulkError, match="must see the same bundle"):
        Judge(None, "0" * 64, TODAY.isoformat(), False)
    Judge(None, corpus_rs.hash, TODAY.isoformat(), False)  # the right hash starts


def test_changed_since_last_run(local, tmp_path):
    got, _ = judge_all(EXAMPLES, local)
    prev = tmp_path / "prev.jsonl"
    edited = [dict(r, verdict="allowed") if r["id"] == "code-mirror" else r for r in got if r["id"] != "mapping"]
    edited.append({"row": 99, "id": "retired-flow", "verdict": "allowed"})
    prev.write_text("".join(json.dumps(r) + "\n" for r in edited), encoding="utf-8")
    _, s = judge_all(EXAMPLES, local, previous=read_output(prev))
    assert s.changed == 1 and dict(s.changes) == {"allowed -> blocked": 1}
    assert s.change_samples == ["code-mirror: allowed -> blocked"]
    assert s.new == 1 and s.gone == 1  # mapping is new; retired-flow is gone


OL_MAP = RegionMap.from_dict(
    {
        "regions": {"s3://acme-tokyo": "JP", "s3://acme-hanoi": "VN", "postgres://crm.sg": "SG"},
        "categories": {"s3://acme-tokyo/customers": ["personal"], "postgres://crm.sg": ["personal", "financial"]},
    }
)


def _event(inputs: list[str], outputs: list[str], kind: str = "COMPLETE", run_id: str = "r1") -> str:
    def ds(uri: str) -> dict:
        ns, _, name = uri.rpartition("/")
        return {"namespace": ns, "name": name}

    return json.dumps(
        {
            "eventType": kind,
            "eventTime": "2026-06-01T10:00:00Z",
            "run": {"runId": run_id},
            "job": {"namespace": "airflow", "name": "sync"},
            "inputs": [ds(u) for u in inputs],
            "outputs": [ds(u) for u in outputs],
        }
    )


def test_openlineage_events_through_the_region_map(local, corpus_rs, tmp_path):
    p = tmp_path / "events.jsonl"
    p.write_text(
        "\n".join(
            [
                _event(["s3://acme-tokyo/customers/a"], ["s3://acme-hanoi/x", "postgres://crm.sg/t"]),
                _event(["s3://acme-tokyo/customers/a"], ["s3://acme-hanoi/x"], kind="START"),  # counted once
                _event(["s3://acme-tokyo/customers/a"], ["s3://acme-tokyo/b"]),  # no border crossed
                _event(["s3://nowhere/a"], ["s3://acme-hanoi/x"], run_id="r9"),  # cannot be placed
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    got, s = judge_all(p, local, fmt="openlineage", region_map=OL_MAP)
    assert [(r["id"], r["verdict"] is not None) for r in got] == [
        ("airflow/sync run r1 JP->SG", True),
        ("airflow/sync run r1 JP->VN", True),
        ("airflow/sync run r9 (line 4)", False),
    ]
    assert "no region for dataset 's3://nowhere/a'" in got[2]["error"]
    assert got == in_process(p, corpus_rs, "openlineage", OL_MAP)
    assert got[0]["decision"]["request"]["as_of"] == "2026-06-01"


def test_cli_local_backend(tmp_path):
    out, summ = tmp_path / "out.jsonl", tmp_path / "s.json"
    p = subprocess.run(
        [sys.executable, "-m", "dfft", "bulk", str(EXAMPLES), "--backend", "local", "-o", str(out),
         "--summary-json", str(summ), "--as-of", "2026-06-01"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["row"] for r in lines] == list(range(1, 9))
    s = json.loads(summ.read_text())
    assert s["rows"] == 8 and s["verdicts"] == {"allowed": 1, "blocked": 1, "conditional": 6}
    assert "dfft bulk" in p.stderr and "judging" not in p.stderr  # summary shown; no progress bar off a terminal


# -- Parquet (pyarrow) ------------------------------------------------------------------------------------------
@pytest.mark.skipif(not HAVE_ARROW, reason=NO_ARROW)
def test_parquet_in_and_out(local, corpus_rs, tmp_path):
    from dfft.plugins.bulk import ParquetWriter

    src = write_parquet(tmp_path / "inv.parquet", 500, shapes=80, bad=4)
    got, _ = judge_all(src, local)
    assert got == in_process(src, corpus_rs)
    w = ParquetWriter(tmp_path / "out.parquet", full=True)
    w.write(got)
    w.close()
    back = read_output(tmp_path / "out.parquet")
    assert len(back) == 500 and all(back[r["id"]]["verdict"] == r["verdict"] for r in got)


# -- Ray (dfft[ray]) --------------------------------------------------------------------------------------------
def _ray_backend(corpus_rs, full: bool = True) -> RayBackend:
    return RayBackend(None, corpus_rs.hash, TODAY.isoformat(), full, workers=2)


def test_ray_equals_engine_check(ray_local, corpus_rs, inventory, tmp_path):
    b = _ray_backend(corpus_rs)
    try:
        assert b.workers == 2 and len({pid for pid, _ in ray_local.get([a.ready.remote() for a in b.actors])}) == 2
        csv_inv = write_csv(tmp_path / "inv.csv", 2000, shapes=300, seed=3)
        for path in (EXAMPLES, inventory, csv_inv):
            got, s = judge_all(path, b, chunk=900, batch=32)
            assert got == in_process(path, corpus_rs)
            assert s.backend == "ray" and s.workers == 2
    finally:
        b.close()
    assert ray_local.is_initialized()  # a backend that joined a running Ray leaves it running


def test_ray_worker_on_another_bundle_is_refused(ray_local):
    with pytest.raises(BulkError, match="could not start.*same bundle"):
        RayBackend(None, "f" * 64, TODAY.isoformat(), False, workers=1)


def test_ray_dead_worker_fails_closed(ray_local, corpus_rs):
    b = _ray_backend(corpus_rs, full=False)
    try:
        ray_local.kill(b.actors[1])
        got, s = judge_all(EXAMPLES, b, batch=1)  # batches alternate between the live and the dead worker
    finally:
        b.close()
    assert len(got) == 8 and s.rows == 8
    dead = [r for r in got if r.get("error")]
    assert dead and all(r["verdict"] is None and r["error"].startswith("worker failed") for r in dead)
    assert s.failed == len(dead) and s.judged == 8 - len(dead) > 0


@pytest.mark.skipif(not HAVE_RAY, reason=NO_RAY)
def test_ray_cli_on_a_100k_inventory(corpus_rs, tmp_path):
    """The CLI end to end on 100,000 generated flows with Ray in local mode (its own Ray: the CLI is a subprocess)."""
    src = write_jsonl(tmp_path / "inv100k.jsonl", 100_000)
    out, summ = tmp_path / "out.jsonl", tmp_path / "s.json"
    p = subprocess.run(
        [sys.executable, "-m", "dfft", "bulk", str(src), "--workers", "2", "--object-store-mb", "80", "-o", str(out),
         "--summary-json", str(summ), "--as-of", TODAY.isoformat()],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert p.returncode == 3, p.stderr  # the inventory holds invalid rows on purpose: exit 3, not 0
    s = json.loads(summ.read_text())
    assert s["rows"] == 100_000 and s["judged"] + s["errors"] == 100_000 and s["failed"] == 0
    assert s["backend"] == "ray" and s["workers"] == 2 and s["dedup_ratio"] > 10
    engine = Engine(corpus_rs)
    n = 0
    with src.open() as f, out.open() as g:
        for line_in, line_out in zip(f, g, strict=True):
            r, rec = json.loads(line_in), json.loads(line_out)
            n += 1
            assert rec["row"] == n and rec["id"] == r.pop("id")
            try:
                d = engine.check(r, TODAY)
                assert (rec["verdict"], rec["rules"]) == (d.verdict, d.rule_ids), rec
            except RequestError:
                assert rec["verdict"] is None and rec["error"].startswith("invalid request"), rec
    assert n == 100_000
