"""Golden cases: per jurisdiction, requests with the verdict and findings the law calls for, each citing its article.

Cases live in tests/golden/<CODE>.yaml (format: docs/rule-language.md)."""

from __future__ import annotations

import pytest
import yaml

from .conftest import GOLDEN

MIN_CASES_PER_JURISDICTION = 10


def load_cases() -> list:
    out = []
    for path in sorted(GOLDEN.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for i, case in enumerate(doc.get("cases", [])):
            out.append(pytest.param(path.stem, case, id=f"{path.stem}-{i:02d}-{case.get('name', '?')}"))
    return out


CASES = load_cases()


@pytest.mark.parametrize("code, case", CASES)
def test_golden_case(corpus_engine, code, case):
    assert case.get("name") and case.get("cites"), "every golden case has a name and cites the article behind it"
    expect = case["expect"]
    d = corpus_engine.check(case["request"])
    got = {f.rule_id for f in d.findings}
    missing = set(expect.get("findings", [])) - got
    unexpected = set(expect.get("not_findings", [])) & got
    detail = f"verdict {d.verdict}; findings {sorted((f.rule_id, f.effect, f.status) for f in d.findings)}"
    assert d.verdict == expect["verdict"], detail
    assert not missing, f"missing findings {sorted(missing)}; {detail}"
    assert not unexpected, f"unexpected findings {sorted(unexpected)}; {detail}"
    # request model v2: the applicable-law layer (docs/rule-language.md, "Applicable law")
    excluded = {x.id for x in d.not_transfers}
    assert set(expect.get("not_transfer", [])) <= excluded, f"not_transfer {sorted(excluded)}; {detail}"
    assert not set(expect.get("transfer", [])) & excluded, f"not_transfer {sorted(excluded)}; {detail}"
    governed = {(r.jurisdiction, r.basis) for r in d.regimes}
    for want in expect.get("regimes", []):  # e.g. "VN reach" or "EU established"
        code_, basis = want.split()
        assert (code_, basis) in governed, f"regime {want} not applied: {sorted(governed)}; {detail}"
    for want in expect.get("not_regimes", []):  # a jurisdiction code whose regime must not govern any leg
        assert want not in {r.jurisdiction for r in d.regimes if r.domains}, f"{want} applied; {sorted(governed)}"
    gaps = {g.id for g in d.coverage}
    assert set(expect.get("coverage", [])) <= gaps, f"coverage {sorted(gaps)}; {detail}"


def test_golden_rule_ids_exist(corpus_rs):
    known = {r.id for r in corpus_rs.all_rules()} | {"dfft-no-applicable-rule"}
    known |= {u.id for j in corpus_rs.jurisdictions.values() for u in j.uncovered}
    scope = {e.id for j in corpus_rs.jurisdictions.values() for e in (*j.reach, *j.not_transfer)}
    for p in CASES:
        code, case = p.values
        e = case["expect"]
        for rid in e.get("findings", []) + e.get("not_findings", []) + e.get("coverage", []):
            assert rid in known, f"{code}: golden case {case['name']!r} names unknown rule {rid}"
        for sid in e.get("not_transfer", []) + e.get("transfer", []):
            assert sid in scope, f"{code}: golden case {case['name']!r} names unknown scope entry {sid}"


def test_every_jurisdiction_has_golden_cases(corpus_rs):
    counts = {}
    for p in CASES:
        counts[p.values[0]] = counts.get(p.values[0], 0) + 1
    short = {c: counts.get(c, 0) for c in corpus_rs.jurisdictions if counts.get(c, 0) < MIN_CASES_PER_JURISDICTION}
    assert not short, f"jurisdictions with fewer than {MIN_CASES_PER_JURISDICTION} golden cases: {short}"
