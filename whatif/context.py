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


class Engines:
    """One Engine per distinct rule set (by content hash), reused across analyses.

    Each Engine compiles its own durable-rules rulesets, which durable-rules never frees; the pool keeps at most
    `limit` engines (an evicted engine's compiled rulesets stay in the C engine, so a long-running service should
    bound the number of distinct scenarios it serves)."""

    def __init__(self, baseline: RuleSet, backend: str = "durable", limit: int = 32, today: Optional[date] = None):
        self.baseline = baseline
        self.backend = backend
        self.limit = limit
        self.today = today or date.today()
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._lock = threading.Lock()
        self._hashes: dict[int, tuple[RuleSet, str]] = {}

    def engine(self, rs: Optional[RuleSet] = None) -> Engine:
        rs = rs or self.baseline
        with self._lock:
            known = self._hashes.get(id(rs))
            if known is None or known[0] is not rs:   # RuleSet.hash dumps the whole bundle: compute it once
                known = self._hashes[id(rs)] = (rs, rs.hash)
                if len(self._hashes) > 4 * self.limit:
                    self._hashes.pop(next(iter(self._hashes)))
            key = known[1]
            e = self._engines.get(key)
            if e is None:
                e = Engine(rs, backend=self.backend, today=self.today)  # type: ignore[arg-type]
                self._engines[key] = e
                if len(self._engines) > self.limit:
                    self._engines.popitem(last=False)
            else:
                self._engines.move_to_end(key)
            return e

    def for_scenario(self, sc: Optional[Scenario]) -> tuple[RuleSet, Engine]:
        rs = sc.apply_law(self.baseline) if sc else self.baseline
        return rs, self.engine(rs)

    def judge(self, request: dict[str, Any], sc: Optional[Scenario] = None) -> Decision:
        rs, e = self.for_scenario(sc)
        return e.check(sc.apply_request(request, rs, self.today) if sc else request)


class InventoryError(ValueError):
    pass


LIST_FIELDS = ("via", "data_categories", "safeguards")
FIELDS = ("id", "origin", "destination", "via", "data_categories", "subjects", "safeguards", "exporter", "sector",
          "purpose", "as_of")


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
            if "subjects" in r:
                try:
                    r["subjects"] = int(r["subjects"].replace("_", ""))
                except ValueError:
                    raise InventoryError(f"{path} line {i} field subjects: {r['subjects']!r} is not a whole number") from None
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
        rows = [{"id": f"#{i + 1}", **{k: (v.isoformat() if isinstance(v, date) else v) for k, v in x.items()}}
                for i, x in enumerate(doc)]
    for r in rows:
        r["id"] = str(r["id"])
    return rows


def strip_id(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k != "id"}


def request_error(path: Any, rid: str, e: RequestError) -> str:
    return f"{path} request {rid}: " + "; ".join(f"{x['field']}: {x['message']}" for x in e.errors)
