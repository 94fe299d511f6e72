"""Engines per rule set, and reading request files (the data-flow inventory)."""

from __future__ import annotations

import csv
import json
import threading
from collections import OrderedDict
from datetime import date
from pathlib import Path
from typing import Any, Optional

import yaml

from ..engine import Decision, Engine
from ..engine.request import RequestError
from ..rules.model import RuleSet
from .scenario import Scenario

SEVERITY = {"allowed": 0, "conditional": 1, "blocked": 2}


class EnginePool:
    """Compiled engines shared across analyses, one per distinct rule set (by content hash), at most `limit`.

    Each Engine compiles its own durable-rules rulesets. An engine evicted from the pool (least recently used) is
    retired: it is closed -- its compiled rulesets freed -- as soon as no analysis holds a lease on it, so memory
    stays bounded by the pool size plus the engines in use right now. Engines are immutable and have no date of
    their own: each analysis passes its date with every check (see Engines)."""

    def __init__(self, backend: str = "durable", limit: int = 32, memo_budget: Optional[int] = None):
        self.backend = backend
        self.limit = max(1, limit)
        self.memo_budget = memo_budget
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._hashes: dict[int, tuple[RuleSet, str]] = {}
        self._lock = threading.Lock()
        self.compiled = 0
        self.evicted = 0

    def hash_of(self, rs: RuleSet) -> str:
        with self._lock:
            return self._hash(rs)

    def _hash(self, rs: RuleSet) -> str:
        known = self._hashes.get(id(rs))
        if known is None or known[0] is not rs:  # RuleSet.hash dumps the whole bundle: compute it once
            known = self._hashes[id(rs)] = (rs, rs.hash)
            if len(self._hashes) > 4 * self.limit:
                self._hashes.pop(next(iter(self._hashes)))
        return known[1]

    def lease(self, rs: RuleSet) -> Engine:
        """The engine of `rs`, with a lease taken on it: the caller must release() it when done."""
        with self._lock:
            key = self._hash(rs)
            e = self._engines.get(key)
            if e is None:
                e = Engine(rs, backend=self.backend, memo_budget=self.memo_budget)  # type: ignore[arg-type]
                self.compiled += 1
                self._engines[key] = e
            else:
                self._engines.move_to_end(key)
            e.acquire()
            while len(self._engines) > self.limit:
                _, old = self._engines.popitem(last=False)
                self.evicted += 1
                old.retire()
            return e

    def __len__(self) -> int:
        return len(self._engines)

    def close(self) -> None:
        with self._lock:
            engines, self._engines = list(self._engines.values()), OrderedDict()
        for e in engines:
            e.retire()


class Dated:
    """An engine as one analysis sees it: every check is judged as of the analysis's date (requests without
    `as_of`), passed per call, so analyses with different dates can share the engine."""

    __slots__ = ("engine", "today")

    def __init__(self, engine: Engine, today: date):
        self.engine, self.today = engine, today

    def check(self, request: Any, today: Optional[date] = None) -> Decision:
        return self.engine.check(request, today or self.today)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


class Engines:
    """What one analysis (or a CLI run) judges with: the baseline rule set, the date requests without `as_of` are
    judged as of, and engines from a pool (its own, or one shared by the service).

    Every engine handed out is leased from the pool until close() (or the end of a `with` block), so an engine in
    use is never closed under an analysis. A service creates one Engines per request on a shared EnginePool and
    closes it when the request is done."""

    def __init__(
        self,
        baseline: RuleSet,
        backend: str = "durable",
        limit: int = 32,
        today: Optional[date] = None,
        pool: Optional[EnginePool] = None,
    ):
        self.baseline = baseline
        self.backend = backend
        self.limit = limit
        self.today = today or date.today()
        self.pool = pool if pool is not None else EnginePool(backend, limit)
        self._leased: dict[int, Engine] = {}
        self._lock = threading.Lock()

    def engine(self, rs: Optional[RuleSet] = None) -> Dated:
        e = self.pool.lease(rs or self.baseline)
        with self._lock:
            if id(e) in self._leased:
                held = True
            else:
                held = False
                self._leased[id(e)] = e
        if held:
            e.release()  # one lease per engine and analysis is enough
        return Dated(e, self.today)

    def for_scenario(self, sc: Optional[Scenario]) -> tuple[RuleSet, Dated]:
        rs = sc.apply_law(self.baseline) if sc else self.baseline
        return rs, self.engine(rs)

    def judge(self, request: dict[str, Any], sc: Optional[Scenario] = None) -> Decision:
        rs, e = self.for_scenario(sc)
        return e.check(sc.apply_request(request, rs, self.today) if sc else request)

    def close(self) -> None:
        """Release every lease this analysis holds."""
        with self._lock:
            leased, self._leased = list(self._leased.values()), {}
        for e in leased:
            e.release()

    def __enter__(self) -> Engines:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InventoryError(ValueError):
    pass


LIST_FIELDS = (
    "via",
    "data_categories",
    "safeguards",
    "purposes",
    "established",
    "subjects_in",
    "nationality",
    "transit",
)
# Flat columns of an inventory (CSV, Parquet, JSONL rows): the request fields whose values are strings or lists, and
# flat spellings of the nested ones of request model v2 -- recipient_relation/role/access/kind make `recipient`,
# `transit` adds transit hops after `via`, `counts` reads `health=120;personal=5000`.
RECIPIENT_COLUMNS = ("recipient_relation", "recipient_role", "recipient_access", "recipient_kind")
FIELDS = (
    "id",
    "origin",
    "destination",
    "via",
    "data_categories",
    "subjects",
    "safeguards",
    "exporter",
    "sector",
    "purpose",
    "as_of",
    "purposes",
    "exporter_role",
    "exporter_size",
    "established",
    "subjects_in",
    "nationality",
    "collected_in",
    "publicly_available",
    "transit",
    "counts",
    *RECIPIENT_COLUMNS,
)
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


def unflatten(r: dict[str, Any], where: str) -> dict[str, Any]:
    """Turn the flat columns of one inventory row (already split into lists where LIST_FIELDS says) into request
    fields; raises InventoryError naming the field. Values that are already structured (JSONL) pass unchanged."""
    r = dict(r)
    if isinstance(r.get("subjects"), str):
        try:
            r["subjects"] = int(r["subjects"].replace("_", ""))
        except ValueError:
            raise InventoryError(f"{where} field subjects: {r['subjects']!r} is not a whole number") from None
    if isinstance(r.get("publicly_available"), str):
        v = r["publicly_available"].strip().lower()
        if v not in _TRUE + _FALSE:
            raise InventoryError(
                f"{where} field publicly_available: {r['publicly_available']!r}; expected true or false"
            )
        r["publicly_available"] = v in _TRUE
    if isinstance(r.get("counts"), str):
        counts: dict[str, int] = {}
        for part in _split(r["counts"]):
            cat, eq, n = part.partition("=")
            try:
                if not eq:
                    raise ValueError
                counts[cat.strip()] = int(n.strip().replace("_", ""))
            except ValueError:
                raise InventoryError(
                    f"{where} field counts: {part!r}; expected CATEGORY=N pairs separated by ';'"
                ) from None
        r["counts"] = counts
    rec = {c.removeprefix("recipient_"): r.pop(c) for c in RECIPIENT_COLUMNS if c in r}
    if rec:
        if "recipient" in r:
            raise InventoryError(f"{where}: give recipient or the recipient_* columns, not both")
        r["recipient"] = rec
    if "transit" in r:
        transit = r.pop("transit")
        if not isinstance(transit, list):
            raise InventoryError(f"{where} field transit: expected a list of jurisdiction codes")
        r["via"] = [*(r.get("via") or []), *({"jurisdiction": c, "transit": True} for c in transit)]
    return r


def _split(v: str) -> list[str]:
    return [x.strip() for x in v.replace("|", ";").replace(",", ";").split(";") if x.strip()]


def load_requests(path: Path | str) -> list[dict[str, Any]]:
    """Read a request file: CSV (one transfer a row; list fields separated by `;`), JSON or YAML (a list, or a
    mapping with `requests`). Each request gets an `id` (its own, or `row N`). Fields are checked when judged."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InventoryError(f"{path}: cannot be read: {e}") from None
    rows: list[dict[str, Any]]
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        unknown = [c for c in reader.fieldnames or [] if c not in FIELDS]
        if unknown:
            raise InventoryError(f"{path}: unknown column(s) {unknown}; expected some of {list(FIELDS)}")
        rows = []
        for i, row in enumerate(reader, start=2):
            r: dict[str, Any] = {k: v.strip() for k, v in row.items() if v is not None and v.strip() != ""}
            for k in LIST_FIELDS:
                if k in r:
                    r[k] = _split(r[k])
            r = unflatten(r, f"{path} line {i}")
            r.setdefault("id", f"line {i}")
            rows.append(r)
    else:
        try:
            doc = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as e:
            raise InventoryError(f"{path}: cannot be parsed: {e}") from None
        if isinstance(doc, dict):
            doc = doc.get("requests")
        if not isinstance(doc, list) or not all(isinstance(x, dict) for x in doc):
            raise InventoryError(f"{path}: expected a list of requests (or a mapping with `requests`)")
        rows = [
            {"id": f"#{i + 1}", **{k: (v.isoformat() if isinstance(v, date) else v) for k, v in x.items()}}
            for i, x in enumerate(doc)
        ]
    for r in rows:
        r["id"] = str(r["id"])
    return rows


def strip_id(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k != "id"}


def request_error(path: Any, rid: str, e: RequestError) -> str:
    return f"{path} request {rid}: " + "; ".join(f"{x['field']}: {x['message']}" for x in e.errors)
