"""A synthetic data-flow inventory for `dfft bulk` (tests/bulk/ and `python -m bench.bulk`).

Real inventories repeat themselves: many pipelines move the same kind of data between the same places. Rows are drawn
from a pool of `shapes` distinct flows with a Zipf-like skew (a few shapes are very common), each row with its own id;
`bad` of every 1,000 rows are invalid on purpose (an unknown jurisdiction or category), so the error path is exercised.
Deterministic for a given seed.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ORIGINS = ["JP", "SG", "VN", "EU", "CN", "IN", "ID", "KR", "MY", "TH", "PH", "AU", "GB", "US", "RU"]
DESTS = ORIGINS + ["BR", "KP", "IR", "CA", "NG"]
CATEGORIES = [
    ["personal"],
    ["personal", "financial"],
    ["health"],
    ["personal", "employee"],
    ["geospatial", "personal"],
    ["source_code"],
    ["controlled_technology"],
    ["personal", "sensitive_personal"],
    ["important_data"],
    ["pseudonymised"],
]
SAFEGUARDS: list[list[str]] = [[], [], [], ["consent"], ["eu_scc"], ["asean_mcc"], ["bcr"], ["encryption"]]
SUBJECTS = [None, 50, 800, 5000, 25_000, 120_000, 2_000_000]
SECTORS = ["general", "retail", "technology", "finance", "health"]
AS_OF = ["2026-06-01", "2026-01-15", "2025-09-01"]


def _shape(rng: random.Random) -> dict[str, Any]:
    o = rng.choice(ORIGINS)
    d = rng.choice([x for x in DESTS if x != o])
    r: dict[str, Any] = {"origin": o, "destination": d, "data_categories": rng.choice(CATEGORIES)}
    if rng.random() < 0.1:
        r["via"] = [rng.choice([x for x in ORIGINS if x not in (o, d)])]
    s = rng.choice(SUBJECTS)
    if s is not None:
        r["subjects"] = s
    sg = rng.choice(SAFEGUARDS)
    if sg:
        r["safeguards"] = sg
    r["sector"] = rng.choice(SECTORS)
    r["as_of"] = rng.choice(AS_OF)
    return r


def rows(n: int, shapes: int = 2000, seed: int = 17, bad: int = 1) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    pool = [_shape(rng) for _ in range(shapes)]
    weights = [1.0 / (i + 1) for i in range(shapes)]
    picks = rng.choices(range(shapes), weights=weights, k=n)
    for i, k in enumerate(picks):
        r = {"id": f"flow-{i + 1}", **pool[k]}
        if bad and i % 1000 < bad:
            r = {**r, "origin": "ZZ"} if i % 2 else {**r, "data_categories": ["no_such_category"]}
        yield r


def write_jsonl(path: Path, n: int, **kw: Any) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in rows(n, **kw):
            f.write(json.dumps(r) + "\n")
    return path


def write_csv(path: Path, n: int, **kw: Any) -> Path:
    cols = ["id", "origin", "destination", "via", "data_categories", "subjects", "safeguards", "sector", "as_of"]
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows(n, **kw):
            w.writerow({k: (";".join(v) if isinstance(v, list) else v) for k, v in r.items()})
    return path


def write_parquet(path: Path, n: int, **kw: Any) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    recs = list(rows(n, **kw))
    cols = ["id", "origin", "destination", "via", "data_categories", "subjects", "safeguards", "sector", "as_of"]
    table = pa.table(
        {
            c: pa.array(
                [r.get(c) for r in recs],
                type=pa.list_(pa.string())
                if c in ("via", "data_categories", "safeguards")
                else (pa.int64() if c == "subjects" else pa.string()),
            )
            for c in cols
        }
    )
    pq.write_table(table, str(path))
    return path
