"""Golden cases: per jurisdiction, requests with the verdict and findings the law calls for, each citing its article.

Cases live in tests/golden/<CODE>.yaml (format: docs/rule-language.md)."""

from __future__ import annotations

import pytest
import yaml

from .conftest import GOLDEN

MIN_CASES_PER_JURISDICTION = 8


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


def test_golden_rule_ids_exist(corpus_rs):
    known = {r.id for r in corpus_rs.all_rules()} | {"dfft-no-applicable-rule"}
    known |= {u.id for j in corpus_rs.jurisdictions.values() for u in j.uncovered}
    for p in CASES:
        code, case = p.values
        for rid in case["expect"].get("findings", []) + case["expect"].get("not_findings", []):
            assert rid in known, f"{code}: golden case {case['name']!r} names unknown rule {rid}"


def test_every_jurisdiction_has_golden_cases(corpus_rs):
    counts = {}
    for p in CASES:
        counts[p.values[0]] = counts.get(p.values[0], 0) + 1
    short = {c: counts.get(c, 0) for c in corpus_rs.jurisdictions if counts.get(c, 0) < MIN_CASES_PER_JURISDICTION}
    assert not short, f"jurisdictions with fewer than {MIN_CASES_PER_JURISDICTION} golden cases: {short}"
