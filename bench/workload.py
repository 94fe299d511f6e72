"""Request streams for the benchmarks: realistic, reproducible (seeded), valid for the rule set at hand."""

from __future__ import annotations

import json
import random
from typing import Any

from dfft.rules.model import RuleSet

UNCOVERED = ["US", "BR", "CH", "AE", "ZA", "KP", "MX"]
AS_OF = "2026-06-01"


def requests(rs: RuleSet, n: int, seed: int = 1, unique: bool = True, max_via: int = 1) -> list[dict[str, Any]]:
    """n requests; with unique=True no two are equal (each is never seen before by a fresh engine)."""
    rnd = random.Random(seed)
    covered = sorted(rs.jurisdictions)
    if not covered:
        return []
    v = rs.vocabulary
    cats = sorted(v.data_categories)
    common = [c for c in ("personal", "sensitive_personal", "health", "financial") if c in v.data_categories]
    sgs = sorted(v.safeguards)
    purposes = sorted(v.purposes)
    sectors = sorted(v.sectors)
    exporters = sorted(v.exporters)
    others = [c for c in UNCOVERED if c not in covered]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(out) < n:
        origin = rnd.choice(covered)
        via = [c for c in rnd.sample(covered, min(len(covered), rnd.randint(0, max_via))) if c != origin]
        if rnd.random() < 0.8:
            via = []
        last = via[-1] if via else origin
        dest = rnd.choice([c for c in covered + others if c != last])
        categories = set(rnd.sample(cats, rnd.randint(0, 2)))
        if common and rnd.random() < 0.8:
            categories.add(rnd.choice(common))
        if not categories:
            categories.add(rnd.choice(cats))
        r = {
            "origin": origin,
            "destination": dest,
            "via": via,
            "data_categories": sorted(categories),
            "subjects": rnd.choice([None, rnd.randint(1, 5_000), rnd.randint(5_000, 2_000_000)]),
            "safeguards": sorted(rnd.sample(sgs, rnd.choice([0, 0, 1, 1, 2, 3]))),
            "exporter": rnd.choice(exporters) if rnd.random() < 0.3 else "private",
            "sector": rnd.choice(sectors) if rnd.random() < 0.5 else "general",
            "purpose": rnd.choice(purposes) if rnd.random() < 0.5 else "general",
            "as_of": AS_OF,
        }
        if unique:
            k = json.dumps(r, sort_keys=True)
            if k in seen:
                continue
            seen.add(k)
        out.append(r)
    return out
