"""The embedded corpus: issue 3's 19 jurisdictions plus issue 13's APEC economies, every pair checkable, every rule dated."""

from __future__ import annotations

import itertools

import pytest

from .test_golden import CASES

EXPECTED = {
    "JP",
    "BN",
    "KH",
    "ID",
    "LA",
    "MY",
    "MM",
    "PH",
    "SG",
    "TH",
    "VN",
    "EU",
    "GB",
    "US",
    "CN",
    "KR",
    "IN",
    "AU",
    "RU",
    # issue 13 item 4: APEC economies
    "NZ",
    "PE",
    "PG",
    "TW",
    "CA",
    "CL",
    "HK",
    "MX",
}


def test_all_expected_jurisdictions(corpus_rs):
    assert set(corpus_rs.jurisdictions) == EXPECTED


def test_every_pair_gets_a_verdict(corpus_engine):
    for a, b in itertools.permutations(sorted(EXPECTED), 2):
        for as_of in ("2024-06-01", "2026-06-01"):
            d = corpus_engine.check(
                dict(origin=a, destination=b, data_categories=["personal", "health"], subjects=50_000, as_of=as_of)
            )
            assert d.verdict in ("allowed", "conditional", "blocked")


def test_every_rule_is_cited_dated_and_linked(corpus_rs):
    for r in corpus_rs.all_rules():
        law = corpus_rs.jurisdictions[r.jurisdiction].laws[r.citation.law]
        assert r.citation.article.strip(), r.id
        assert (r.citation.url or law.url).startswith("http"), r.id
        assert r.effective_from is not None, f"{r.id}: no effective date (neither the rule nor its law has one)"


def test_golden_cases_cover_every_outcome(corpus_rs):
    assert len(CASES) >= 150
    verdicts = {p.values[1]["expect"]["verdict"] for p in CASES}
    assert verdicts == {"allowed", "conditional", "blocked"}


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_golden_cases_touch_every_domain_with_rules(corpus_rs, code):
    domains = {r.domain for r in corpus_rs.jurisdictions[code].rules if r.effect}
    gaps = {u.id for u in corpus_rs.jurisdictions[code].uncovered}  # coverage gaps have no domain
    hit = set()
    for p in CASES:
        if p.values[0] == code:
            for rid in p.values[1]["expect"].get("findings", []):
                if rid.startswith(code + "-") and rid not in gaps:
                    hit.add(corpus_rs.rule(rid).domain)
    assert domains <= hit, f"{code}: golden cases name no finding in {sorted(domains - hit)}"
