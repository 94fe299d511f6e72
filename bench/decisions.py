"""python -m bench.decisions dump FILE | compare OLD NEW: decisions as JSON, to check an optimisation changed nothing.

`dump` writes one line per request (JSON of the decision, or of the RequestError's errors): every golden case of the
embedded corpus, ~5,000 seeded v1-shaped workload requests (bench/workload.py), ~2,000 seeded requests with the facts
of request model v2 (parties, roles, access, transit, counts, outcomes), a few invalid requests (the error must name
the field) and workload requests on the synthetic corpus at 1x and 16x (bench/synth.py). Run it on two revisions
(PYTHONPATH=<other tree> python <this file> dump ...) and `compare`: the lines must be byte-identical.

Self-contained (only the public dfft API and bench.workload / bench.synth), so it runs against older trees too."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import yaml

from dfft.engine import Engine, RequestError
from dfft.rules import load_ruleset

ROOT = Path(__file__).resolve().parents[1]

RELATIONS = ["third_party", "group_company", "same_entity", "employee", "controller_of_exporter"]
CODES = ["EU", "JP", "VN", "ID", "PH", "US", "CN", "SG", "BR", "KR", "DE", "GB", "IN", "AU", "MY", "RU"]


def v2_requests(rs: Any, n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Seeded requests with the v2 facts drawn at random (cf. tests/strategies.py requests_v2)."""
    from bench.workload import requests

    rnd = random.Random(seed)
    base = requests(rs, n, seed=seed, max_via=2)
    codes = [c for c in CODES if c in rs.jurisdictions or c in ("US", "BR")]
    out = []

    def recipient() -> dict[str, Any]:
        r: dict[str, Any] = {}
        if rnd.random() < 0.5:
            r["relation"] = rnd.choice(RELATIONS)
        if rnd.random() < 0.3:
            r["role"] = rnd.choice(["controller", "processor"])
        if rnd.random() < 0.3:
            r["access"] = rnd.choice(["full", "none"])
        if rnd.random() < 0.2:
            r["kind"] = rnd.choice(["private", "public_authority", "court", "international_organisation"])
        return r

    for r in base:
        r = dict(r)
        via = []
        for v in r["via"]:
            c = rnd.randint(0, 2)
            via.append(
                v
                if c == 0
                else {"jurisdiction": v, "transit": True}
                if c == 1
                else {"jurisdiction": v, "recipient": recipient()}
            )
        r["via"] = via
        if rnd.random() < 0.3:
            r["exporter_role"] = rnd.choice(["controller", "processor", "data_subject"])
        if rnd.random() < 0.2:
            r["exporter_size"] = rnd.choice(["unknown", "micro", "small", "medium", "large"])
        if rnd.random() < 0.3:
            r["established"] = sorted(set(rnd.sample(codes, rnd.randint(1, 2))))
        if rnd.random() < 0.4:
            r["recipient"] = recipient()
        if rnd.random() < 0.3:
            r["subjects_in"] = sorted(set(rnd.sample(codes, rnd.randint(1, 2))))
        if rnd.random() < 0.2:
            r["nationality"] = sorted(set(rnd.sample(codes, rnd.randint(1, 2))))
        if rnd.random() < 0.2:
            r["collected_in"] = rnd.choice(codes)
        if rnd.random() < 0.15:
            r["publicly_available"] = rnd.random() < 0.5
        if rnd.random() < 0.3:
            r["purposes"] = sorted(set(rnd.sample(sorted(rs.vocabulary.purposes), rnd.randint(1, 2))))
        if r["safeguards"] and rnd.random() < 0.3:
            sgs = list(r["safeguards"])
            sg = sgs.pop()
            sgs.append({"id": sg, "outcome": rnd.choice(["done", "favourable", "unfavourable"])})
            r["safeguards"] = sgs
        if isinstance(r["subjects"], int) and rnd.random() < 0.3:
            r["counts"] = {rnd.choice(r["data_categories"]): rnd.randint(0, r["subjects"])}
        if rnd.random() < 0.05:
            del r["as_of"]  # judged as of the engine's date
        out.append(r)
    return out


BAD = [
    {"origin": "XX", "destination": "JP", "data_categories": ["personal"]},
    {"origin": "JP", "destination": "VN", "data_categories": ["nope"], "safeguards": ["nah", "consent"]},
    {"origin": "JP", "destination": "VN", "data_categories": ["personal"], "subjects": "12"},
    {"origin": "JP", "destination": "JP", "data_categories": ["personal"]},
    {"origin": "JP", "destination": "VN", "data_categories": ["personal"], "as_of": 20260601},
    {"origin": "JP", "destination": "VN", "data_categories": [], "purpose": "x"},
    {"origin": "JP", "destination": "VN", "data_categories": ["personal"], "counts": {"health": 5}, "subjects": 3},
    {"origin": "JP", "destination": "VN", "data_categories": ["personal"], "extra": 1},
    {"origin": "JP", "destination": "VN", "data_categories": ["personal"], "via": [{"jurisdiction": "ZZ"}]},
    {"origin": "JP", "destination": "VN", "data_categories": ["personal"] * 70},
    {"origin": "JP", "destination": "VN", "data_categories": ["personal"], "recipient": {"access": "some"}},
    {
        "origin": "JP",
        "destination": "VN",
        "data_categories": ["personal"],
        "safeguards": [{"id": "consent", "outcome": "done"}, {"id": "consent", "outcome": "favourable"}],
    },
    {
        "origin": "SG",
        "destination": "JP",
        "data_categories": ["personal"],
        "via": [{"jurisdiction": "SG", "transit": True}],
    },
    "not a request",
]


def _line(eng: Engine, r: Any) -> str:
    from datetime import date

    try:
        return eng.check(r, today=date(2026, 3, 1)).model_dump_json()
    except RequestError as e:
        return json.dumps({"error": e.errors}, sort_keys=True, default=str)


def dump(path: Path, n: int = 5000) -> int:
    from bench.synth import synthetic_ruleset
    from bench.workload import requests

    rs = load_ruleset()
    eng = Engine(rs, cache_size=0)
    lines: list[str] = []
    for f in sorted((ROOT / "tests" / "golden").glob("*.yaml")):
        for case in (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("cases", []):
            lines.append(_line(eng, case["request"]))
    lines += [_line(eng, r) for r in requests(rs, n, seed=1)]
    lines += [_line(eng, r) for r in v2_requests(rs, n // 2)]
    lines += [_line(eng, r) for r in BAD]
    for rules in (14, 224):
        srs = synthetic_ruleset(19, rules)
        seng = Engine(srs, cache_size=0)
        lines += [_line(seng, r) for r in requests(srs, n // 5, seed=5)]
        seng.close()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def compare(a: Path, b: Path) -> int:
    x = a.read_text(encoding="utf-8").splitlines()
    y = b.read_text(encoding="utf-8").splitlines()
    diff = [i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q]
    if len(x) != len(y):
        print(f"line counts differ: {len(x)} vs {len(y)}")
    for i in diff[:5]:
        print(f"line {i}:\n  {x[i][:600]}\n  {y[i][:600]}")
    print(f"{len(x)} decisions, {len(diff)} differ")
    return 1 if diff or len(x) != len(y) else 0


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        print(dump(Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 5000), "decisions written")
    else:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
