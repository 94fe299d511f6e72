"""Bulk evaluation: judge a large data-flow inventory, on Ray (local or a cluster) or in-process.

    rows (CSV, JSONL, Parquet, OpenLineage run events)
      -> chunks of CHUNK rows, in input order
      -> raw shape (the row without its id, canonical JSON): rows with equal shapes are judged once
      -> round 1, on the workers: each new raw shape is normalised against the rule set (engine/request.py) to its
         normalised key, or to the RequestError that names the field
      -> round 2, on the workers: each new normalised key is judged once, on its first row in input order
      -> results fanned back out to every row, written in input order (JSONL or Parquet)

Judging the first row of each normalised shape and reusing its decision for the rest is exactly what one Engine does
with its memo when it judges the rows in order, so the output equals `Engine.check(row)` on every row
(tests/bulk/test_bulk.py). Every row gets a line: a decision, or an `error` (bad row, invalid request, engine or
worker failure) with its row number and reason; no row is dropped and an error never carries a verdict.

Ray is optional (`pip install dfft[ray]`); it is imported only when the Ray backend is used. Each Ray worker is an
actor holding one Engine built from the same bundle directory, and refuses to start when its bundle hash differs from
the driver's.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Optional

from ..engine import Engine, EngineError, RequestError
from ..rules import load_ruleset
from ..whatif.context import FIELDS, LIST_FIELDS, InventoryError, unflatten
from .airflow.regions import RegionMap, RegionMapError, transfers_from_lineage

FORMATS = ("csv", "jsonl", "parquet", "openlineage")
CHUNK = 20_000  # rows read, deduplicated and written at a time (bounds the driver's memory per chunk)
BATCH = 256  # shapes per task sent to a worker
MAX_LINE = 1 << 20  # a JSONL / OpenLineage line longer than this is a bad row, not read further
MAX_SHAPES = 2_000_000  # distinct raw shapes remembered across chunks (beyond: judged again, never wrong)


FAILURES = ("engine error", "internal error", "worker failed")  # error reasons that are not the row's fault


class BulkError(ValueError):
    """The run cannot start or go on: unreadable input, unknown format, a worker on another bundle."""


# -- reading ----------------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One input row: its 1-based number, its id, and the request (or why it cannot be one)."""

    number: int
    id: str
    request: Optional[dict[str, Any]] = None
    error: Optional[str] = None


def detect_format(path: Path) -> str:
    s = path.name.lower()
    if s.endswith(".csv"):
        return "csv"
    if s.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if s.endswith(".parquet"):
        return "parquet"
    raise BulkError(f"{path}: cannot tell the format from the name; pass --format ({', '.join(FORMATS)})")


def _clean(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    return v


def _from_mapping(number: int, raw: Any, where: str) -> Row:
    if not isinstance(raw, dict):
        return Row(number, f"row {number}", error=f"{where}: expected an object with the request fields")
    rid = raw.get("id")
    req = {k: _clean(v) for k, v in raw.items() if k != "id" and v is not None}
    for k in LIST_FIELDS:  # Parquet / JSONL may carry lists as `a;b` strings too
        if isinstance(req.get(k), str):
            req[k] = [x.strip() for x in req[k].replace("|", ";").replace(",", ";").split(";") if x.strip()]
        elif k in req and not isinstance(req[k], (list, tuple)):
            return Row(number, str(rid or f"row {number}"), error=f"{where} field {k}: expected a list of strings")
        elif k in req:
            req[k] = list(req[k])
    try:
        req = unflatten(req, where)
    except InventoryError as e:
        return Row(number, str(rid or f"row {number}"), error=str(e))
    return Row(number, str(rid) if rid is not None else f"row {number}", req)


def read_csv(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        unknown = [c for c in reader.fieldnames or [] if c not in FIELDS]
        if unknown:
            raise BulkError(f"{path}: unknown column(s) {unknown}; expected some of {list(FIELDS)}")
        for n, row in enumerate(reader, start=1):
            line = reader.line_num
            if None in row:
                yield Row(n, f"line {line}", error=f"line {line}: more fields than the header has columns")
                continue
            r: dict[str, Any] = {k: v.strip() for k, v in row.items() if v is not None and v.strip() != ""}
            rid = r.pop("id", f"line {line}")
            for k in LIST_FIELDS:
                if k in r:
                    r[k] = [x.strip() for x in r[k].replace("|", ";").replace(",", ";").split(";") if x.strip()]
            try:
                r = unflatten(r, f"line {line}")
            except InventoryError as e:
                yield Row(n, rid, error=str(e))
                continue
            yield Row(n, rid, r)


def _lines(path: Path) -> Iterator[tuple[int, Any, Optional[str]]]:
    with path.open("rb") as f:
        for n, line in enumerate(f, start=1):
            if len(line) > MAX_LINE:
                yield n, None, f"line {n}: longer than {MAX_LINE} bytes"
                continue
            if not line.strip():
                continue
            try:
                yield n, json.loads(line), None
            except ValueError as e:
                yield n, None, f"line {n}: not JSON: {e}"


def read_jsonl(path: Path) -> Iterator[Row]:
    for number, (line, doc, problem) in enumerate(_lines(path), start=1):
        if problem:
            yield Row(number, f"line {line}", error=problem)
        else:
            r = _from_mapping(number, doc, f"line {line}")
            if r.id == f"row {number}":
                r.id = f"line {line}"
            yield r


def read_parquet(path: Path) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BulkError("reading Parquet needs pyarrow: pip install 'dfft[ray]'") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise BulkError(f"{path}: not a readable Parquet file: {e}") from None
    unknown = [c for c in pf.schema_arrow.names if c not in FIELDS]
    if unknown:
        raise BulkError(f"{path}: unknown column(s) {unknown}; expected some of {list(FIELDS)}")
    number = 0
    for batch in pf.iter_batches(batch_size=CHUNK):
        for rec in batch.to_pylist():
            number += 1
            yield _from_mapping(number, rec, f"row {number}")


@dataclass(frozen=True)
class OLDataset:
    """An OpenLineage dataset as the region map reads it (namespace + name; facets may carry a `dfft` facet)."""

    namespace: str
    name: str
    facets: dict[str, Any] = field(default_factory=dict)


def _datasets(event: dict[str, Any], key: str) -> list[OLDataset]:
    out = []
    for i, d in enumerate(event.get(key) or []):
        if not isinstance(d, dict) or not isinstance(d.get("namespace"), str) or not isinstance(d.get("name"), str):
            raise RegionMapError(f"{key}[{i}]: expected a dataset with string namespace and name")
        f = d.get("facets")
        facets: dict[str, Any] = f if isinstance(f, dict) else {}
        out.append(OLDataset(d["namespace"], d["name"], facets))
    return out


def read_openlineage(path: Path, region_map: RegionMap, event_types: tuple[str, ...] = ("COMPLETE",)) -> Iterator[Row]:
    """One row per cross-border transfer derived from each run event (by default COMPLETE events only, so a run
    is counted once), through the same region map as the Airflow integration (plugins/airflow/regions.py); judged as
    of the event's date. An event that cannot be placed is a row with an error, never skipped."""
    number = 0
    for line, ev, problem in _lines(path):
        if problem:
            number += 1
            yield Row(number, f"line {line}", error=problem)
            continue
        if not isinstance(ev, dict):
            number += 1
            yield Row(number, f"line {line}", error=f"line {line}: expected an OpenLineage run event object")
            continue
        if ev.get("eventType", "COMPLETE") not in event_types:
            continue
        j, r = ev.get("job"), ev.get("run")
        job: dict[str, Any] = j if isinstance(j, dict) else {}
        run_: dict[str, Any] = r if isinstance(r, dict) else {}
        label = f"{job.get('namespace', '?')}/{job.get('name', '?')} run {run_.get('runId', '?')}"
        try:
            ins, outs = _datasets(ev, "inputs"), _datasets(ev, "outputs")
            if not ins or not outs:  # a run that only reads or only writes moves nothing across a border
                continue
            transfers = transfers_from_lineage(ins, outs, region_map)
        except RegionMapError as e:
            number += 1
            yield Row(number, f"{label} (line {line})", error=f"line {line}: {e}")
            continue
        when = ev.get("eventTime")
        for t in transfers:
            number += 1
            req: dict[str, Any] = {
                "origin": t.origin,
                "destination": t.destination,
                "data_categories": list(t.data_categories),
            }
            if isinstance(when, str) and len(when) >= 10:
                req["as_of"] = when[:10]
            yield Row(number, f"{label} {t.origin}->{t.destination}", req)


def read_rows(
    path: Path, fmt: Optional[str] = None, region_map: Optional[RegionMap] = None
) -> tuple[str, Iterator[Row]]:
    path = Path(path)
    if not path.is_file():
        raise BulkError(f"{path}: no such file")
    fmt = fmt or detect_format(path)
    if fmt == "csv":
        return fmt, read_csv(path)
    if fmt == "jsonl":
        return fmt, read_jsonl(path)
    if fmt == "parquet":
        return fmt, read_parquet(path)
    if fmt == "openlineage":
        return fmt, read_openlineage(path, region_map if region_map is not None else RegionMap.resolve(None))
    raise BulkError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


# -- judging ----------------------------------------------------------------------------------------------------
def shape_of(request: dict[str, Any]) -> str:
    """The raw shape of a request: canonical JSON of its fields (the id is not part of it)."""
    return json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)


class Judge:
    """One engine on one bundle: what each worker (a Ray actor, or the driver with --backend local) runs."""

    def __init__(self, rules_dir: Optional[str], expected_hash: str, today: str, full: bool):
        self.engine = Engine(load_ruleset(Path(rules_dir) if rules_dir else None))
        if self.engine.hash != expected_hash:
            raise BulkError(
                f"worker {os.getpid()} loaded bundle {self.engine.hash[:12]} but the run judges with "
                f"{expected_hash[:12]}: every worker must see the same bundle"
            )
        self.today = date.fromisoformat(today)
        self.full = full

    def ready(self) -> tuple[int, str]:
        return os.getpid(), self.engine.hash

    def stats(self) -> dict[str, Any]:
        """This worker's process id, peak resident memory (bytes) and memo hits / misses (the benchmark reads them)."""
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        return {"pid": os.getpid(), "peak_rss": peak, "hits": self.engine.hits, "misses": self.engine.misses}

    def normalise(self, requests: list[dict[str, Any]]) -> list[tuple[bool, str]]:
        """(True, normalised key) or (False, why the request cannot be judged), per request."""
        out: list[tuple[bool, str]] = []
        for r in requests:
            try:
                out.append((True, self.engine.normalise(r, self.today).key))
            except RequestError as e:
                out.append((False, "invalid request: " + "; ".join(f"{x['field']}: {x['message']}" for x in e.errors)))
            except Exception as e:  # fail closed: no verdict for a request that could not be read
                out.append((False, f"internal error while reading the request: {type(e).__name__}: {e}"))
        return out

    def judge(self, requests: list[dict[str, Any]]) -> list[tuple[bool, str]]:
        """(True, result JSON) or (False, reason), per request; the result holds the fields every output row gets."""
        out: list[tuple[bool, str]] = []
        for r in requests:
            try:
                d = self.engine.check(r, self.today)
            except RequestError as e:
                out.append((False, "invalid request: " + "; ".join(f"{x['field']}: {x['message']}" for x in e.errors)))
                continue
            except EngineError as e:
                out.append((False, f"engine error: {e}"))
                continue
            except Exception as e:  # fail closed
                out.append((False, f"internal error: {type(e).__name__}: {e}"))
                continue
            res: dict[str, Any] = {
                "verdict": d.verdict,
                "rules": d.rule_ids,
                "ruleset": d.ruleset.hash,
            }
            if self.full:
                res["decision"] = d.model_dump(mode="json")
            out.append((True, json.dumps(res, separators=(",", ":"))))
        return out


class LocalBackend:
    """In-process: one Judge in the driver (no Ray)."""

    name = "local"

    def __init__(
        self,
        rules_dir: Optional[str],
        expected_hash: str,
        today: str,
        full: bool,
        judge_class: Optional[type] = None,
        judge_args: tuple = (),
    ):
        self.judge = (judge_class or Judge)(rules_dir, expected_hash, today, full, *judge_args)
        self.workers = 1

    def map(self, method: str, batches: list[list[dict[str, Any]]]) -> Iterator[tuple[int, list[tuple[bool, str]]]]:
        for i, b in enumerate(batches):
            yield i, getattr(self.judge, method)(b)

    def close(self) -> None:
        self.judge.engine.close()


class RayBackend:
    """One Ray actor per worker, each holding an Engine on the same bundle (hash checked at start)."""

    name = "ray"

    def __init__(
        self,
        rules_dir: Optional[str],
        expected_hash: str,
        today: str,
        full: bool,
        workers: Optional[int] = None,
        address: Optional[str] = None,
        object_store_bytes: Optional[int] = None,
        judge_class: Optional[type] = None,
        judge_args: tuple = (),
    ):
        try:
            import ray
        except ImportError:
            raise BulkError("the Ray backend needs Ray: pip install 'dfft[ray]' (or use --backend local)") from None
        self.ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            if address:
                kw["address"] = address
            else:  # "local": always a new local instance, never one found on the machine
                kw["address"] = "local"
                kw["num_cpus"] = workers or os.cpu_count() or 1
                if object_store_bytes:
                    kw["object_store_memory"] = object_store_bytes
            ray.init(**kw)
        n = workers or int(ray.available_resources().get("CPU", 1)) or 1
        self.workers = max(1, n)
        actor = ray.remote(num_cpus=1)(judge_class or Judge)  # judge_class: a Judge with more (plugins/bulk_whatif.py)
        self.actors = [actor.remote(rules_dir, expected_hash, today, full, *judge_args) for _ in range(self.workers)]
        try:
            ready = ray.get([a.ready.remote() for a in self.actors])
        except Exception as e:
            self.close()
            last = [x for x in str(e).splitlines() if x.strip()][-1:] or [type(e).__name__]
            raise BulkError(f"a worker could not start: {last[0].strip()}") from None
        bad = [h for _, h in ready if h != expected_hash]
        if bad:  # the actor checks this itself; a second look costs nothing
            self.close()
            raise BulkError(f"a worker judges with bundle {bad[0][:12]}, not {expected_hash[:12]}")

    def map(self, method: str, batches: list[list[dict[str, Any]]]) -> Iterator[tuple[int, list[tuple[bool, str]]]]:
        ray = self.ray
        pending: dict[Any, int] = {}
        for i, b in enumerate(batches):
            a = self.actors[i % len(self.actors)]
            pending[getattr(a, method).remote(b)] = i
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    yield i, ray.get(ref)
                except Exception as e:  # a worker that died or failed: its requests fail closed, with the reason
                    cause = getattr(e, "cause", None) or e
                    reason = (
                        f"worker failed: {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
                    )
                    yield i, [(False, reason)] * len(batches[i])

    def close(self) -> None:
        for a in getattr(self, "actors", []):
            with contextlib.suppress(Exception):
                self.ray.kill(a)
        self.actors = []
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()


# -- writing ----------------------------------------------------------------------------------------------------
class JsonlWriter:
    def __init__(self, target: Any, owns: bool = False):
        self.f = target
        self.owns = owns

    def write(self, records: list[dict[str, Any]]) -> None:
        self.f.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))

    def close(self) -> None:
        self.f.flush()
        if self.owns:
            self.f.close()


class ParquetWriter:
    def __init__(self, path: Path, full: bool):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise BulkError("writing Parquet needs pyarrow: pip install 'dfft[ray]'") from None
        self.pa = pa
        fields = [
            pa.field("row", pa.int64()),
            pa.field("id", pa.string()),
            pa.field("verdict", pa.string()),
            pa.field("rules", pa.list_(pa.string())),
            pa.field("ruleset", pa.string()),
            pa.field("error", pa.string()),
        ]
        if full:
            fields.append(pa.field("decision", pa.string()))  # the decision as JSON
        self.schema = pa.schema(fields)
        self.full = full
        self.w = pq.ParquetWriter(str(path), self.schema)

    def write(self, records: list[dict[str, Any]]) -> None:
        cols: dict[str, list[Any]] = {f.name: [] for f in self.schema}
        for r in records:
            for name in cols:
                v = r.get(name)
                if name == "decision" and v is not None:
                    v = json.dumps(v, separators=(",", ":"))
                cols[name].append(v)
        self.w.write_table(self.pa.table(cols, schema=self.schema))

    def close(self) -> None:
        self.w.close()


def read_output(path: Path) -> dict[str, dict[str, Any]]:
    """A previous run's output (JSONL or Parquet), by row id: what changed-since-last-run compares with."""
    path = Path(path)
    recs: Iterable[dict[str, Any]]
    if path.name.lower().endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise BulkError("reading a Parquet output needs pyarrow: pip install 'dfft[ray]'") from None
        recs = pq.read_table(path, columns=["row", "id", "verdict", "rules", "error"]).to_pylist()
    else:
        try:
            with path.open(encoding="utf-8") as f:
                recs = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as e:
            raise BulkError(f"{path}: cannot read the previous output: {e}") from None
    return {str(r.get("id")): r for r in recs if isinstance(r, dict)}


# -- the run ----------------------------------------------------------------------------------------------------
@dataclass
class Summary:
    rows: int = 0
    judged: int = 0
    errors: int = 0
    failed: int = 0  # of the errors, those from an engine or worker failure (not the row's fault)
    raw_shapes: int = 0  # distinct raw shapes normalised
    shapes: int = 0  # distinct normalised shapes judged
    verdicts: Counter = field(default_factory=Counter)
    rules: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    changed: Optional[int] = None
    changes: Counter = field(default_factory=Counter)  # "allowed -> blocked": count
    change_samples: list[str] = field(default_factory=list)
    new: int = 0
    gone: Optional[int] = None
    seconds: float = 0.0
    workers: int = 1
    backend: str = "local"
    ruleset: str = ""

    @property
    def dedup_ratio(self) -> float:
        return self.rows / self.shapes if self.shapes else 0.0

    def as_dict(self, top: int = 10) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "judged": self.judged,
            "errors": self.errors,
            "failed": self.failed,
            "verdicts": dict(sorted(self.verdicts.items())),
            "top_rules": self.rules.most_common(top),
            "raw_shapes": self.raw_shapes,
            "normalised_shapes": self.shapes,
            "dedup_ratio": round(self.dedup_ratio, 2),
            "error_samples": self.error_samples,
            "changed": self.changed,
            "changes": dict(self.changes),
            "change_samples": self.change_samples,
            "new_rows": self.new if self.changed is not None else None,
            "gone_rows": self.gone,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds) if self.seconds else None,
            "backend": self.backend,
            "workers": self.workers,
            "ruleset": self.ruleset,
        }


def _batches(items: list[dict[str, Any]], n: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


def run(
    rows: Iterable[Row],
    write: Callable[[list[dict[str, Any]]], None],
    backend: Any,
    previous: Optional[dict[str, dict[str, Any]]] = None,
    progress: Optional[Callable[[int], None]] = None,
    chunk: int = CHUNK,
    batch: int = BATCH,
    samples: int = 20,
) -> Summary:
    """Judge `rows` with `backend` (LocalBackend / RayBackend) and hand every row's record to `write`, in input order,
    a chunk at a time. Returns the summary."""
    t0 = time.perf_counter()
    s = Summary(workers=backend.workers, backend=backend.name)
    key_of: dict[str, tuple[bool, str]] = {}  # raw shape -> (True, normalised key) | (False, reason)
    result_of: dict[str, tuple[bool, Any]] = {}  # normalised key -> (True, result) | (False, reason)
    seen: set[str] = set()

    def flush(buf: list[Row]) -> None:
        shapes = [None if r.request is None else shape_of(r.request) for r in buf]
        # round 1: normalise each new raw shape
        new_raw: dict[str, dict[str, Any]] = {}
        for r, sh in zip(buf, shapes, strict=True):
            if sh is not None and sh not in key_of and sh not in new_raw:
                new_raw[sh] = r.request  # type: ignore[assignment]
        if len(key_of) + len(new_raw) > MAX_SHAPES:
            key_of.clear()
            result_of.clear()
        order = list(new_raw)
        bs = _batches([new_raw[k] for k in order], batch)
        for i, res in backend.map("normalise", bs):
            for sh, v in zip(order[i * batch : (i + 1) * batch], res, strict=True):
                key_of[sh] = v
        s.raw_shapes += len(order)
        # round 2: judge each new normalised shape on its first row in input order
        first: dict[str, dict[str, Any]] = {}
        for r, sh in zip(buf, shapes, strict=True):
            if sh is None:
                continue
            ok, key = key_of[sh]
            if ok and key not in result_of and key not in first:
                first[key] = r.request  # type: ignore[assignment]
        korder = list(first)
        bs = _batches([first[k] for k in korder], batch)
        for i, res in backend.map("judge", bs):
            for k, v in zip(korder[i * batch : (i + 1) * batch], res, strict=True):
                result_of[k] = (True, json.loads(v[1])) if v[0] else v  # parsed once per shape, not per row
        s.shapes += len(korder)
        # fan out, in input order
        records: list[dict[str, Any]] = []
        for r, sh in zip(buf, shapes, strict=True):
            rec: dict[str, Any] = {"row": r.number, "id": r.id}
            why: Any
            if sh is None:
                ok, why = False, r.error or "unreadable row"
            else:
                ok, key = key_of[sh]
                ok, why = result_of[key] if ok else (False, key)
            if ok:
                rec.update(why)
                s.judged += 1
                s.verdicts[rec["verdict"]] += 1
                s.rules.update(rec["rules"])
            else:
                rec.update(verdict=None, rules=[], error=why)
                s.errors += 1
                if why.startswith(FAILURES):
                    s.failed += 1
                if len(s.error_samples) < samples:
                    s.error_samples.append(f"row {r.number} ({r.id}): {why}")
            if previous is not None:
                seen.add(r.id)
                old = previous.get(r.id)
                if old is None:
                    s.new += 1
                elif old.get("verdict") != rec.get("verdict"):
                    s.changed = (s.changed or 0) + 1
                    change = f"{old.get('verdict') or 'error'} -> {rec.get('verdict') or 'error'}"
                    s.changes[change] += 1
                    if len(s.change_samples) < samples:
                        s.change_samples.append(f"{r.id}: {change}")
            records.append(rec)
        write(records)
        s.rows += len(buf)
        if progress:
            progress(len(buf))

    if previous is not None:
        s.changed = 0
    buf: list[Row] = []
    for r in rows:
        buf.append(r)
        if len(buf) >= chunk:
            flush(buf)
            buf = []
    if buf:
        flush(buf)
    if previous is not None:
        s.gone = len(set(previous) - seen)
    s.seconds = time.perf_counter() - t0
    return s


def make_backend(
    kind: str,
    rules_dir: Optional[Path],
    expected_hash: str,
    today: date,
    full: bool,
    workers: Optional[int] = None,
    address: Optional[str] = None,
    object_store_bytes: Optional[int] = None,
    judge_class: Optional[type] = None,
    judge_args: tuple = (),
) -> Any:
    rd = str(rules_dir) if rules_dir else None
    if kind == "local":
        return LocalBackend(rd, expected_hash, today.isoformat(), full, judge_class, judge_args)
    if kind == "ray":
        return RayBackend(
            rd, expected_hash, today.isoformat(), full, workers, address, object_store_bytes, judge_class, judge_args
        )
    raise BulkError(f"unknown backend {kind!r}; expected ray or local")


def writer_for(path: Optional[Path], full: bool, stdout: Any = None) -> Any:
    if path is None:
        return JsonlWriter(stdout if stdout is not None else io.TextIOWrapper(os.fdopen(1, "wb", closefd=False)))
    if path.name.lower().endswith(".parquet"):
        return ParquetWriter(path, full)
    return JsonlWriter(path.open("w", encoding="utf-8"), owns=True)
