"""A synthetic rule corpus with realistic rule shapes, for measuring how cost grows with the number of rules.

Each jurisdiction gets laws, an adequacy-style list and `rules` rules cycled from templates modelled on the real
corpus: derived flags (list lookups, volume tiers, two-level chains), consent / transfer-mechanism rules with
`unless` exceptions, sensitive-category rules, volume filings, sector and exporter conditions, localisation blocks,
export control with an embargo, importer-side text-and-data-mining allowances and continuing duties. Copy k of a
template varies its categories, thresholds, sectors and lists and derives its own flags, so a scaled corpus is more
distinct rules, not the same rule repeated; copies after the first are also narrowed to a sector, purposes or
destinations (as real rule growth is), so a request meets roughly as many rules at 16x as at 1x and the scaling rows
measure the cost of rule count rather than of a 16x larger decision.

The bundle is written as YAML and loaded with `load_ruleset`, so it passes the same schema and meaning checks as
the real corpus.
"""

from __future__ import annotations

import random
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from dfft.rules import load_ruleset
from dfft.rules.loader import write_manifest
from dfft.rules.model import RuleSet

CODES = [
    "JP",
    "SG",
    "VN",
    "CN",
    "KR",
    "IN",
    "ID",
    "MY",
    "TH",
    "PH",
    "AU",
    "NZ",
    "US",
    "GB",
    "EU",
    "BR",
    "CA",
    "HK",
    "TW",
]
OTHERS = ["DE", "FR", "CH", "AE", "ZA", "KP", "IR", "MX", "AR", "IL", "NO"]
SENSITIVE = ["health", "biometric", "genomic", "financial", "payment", "precise_geolocation", "employee"]
LOCAL = ["government", "important_data", "core_data", "geospatial"]
SECTORS = ["finance", "health", "telecom", "energy", "transport", "public", "defence", "technology"]
MECHANISMS = ["asean_mcc", "bcr", "cbpr_certified", "eu_scc", "recipient_contract", "idta"]
EXEMPT_PURPOSES = ["legal_obligation", "vital_interests", "contract_performance", "legal_claims", "public_interest"]


def _rule(
    code: str,
    rid: str,
    title: str,
    law: str,
    article: str,
    when: dict,
    then: dict,
    *,
    unless: dict | None = None,
    scope: str | None = None,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "id": f"{code}-{rid}",
        "title": title,
        "citation": {"law": law, "article": article},
        "confidence": "high",
        "when": when,
    }
    if scope:
        r["scope"] = scope
    if unless:
        r["unless"] = unless
    r["then"] = then
    return r


def _ob(oid: str, text: str, one_of: list[str] | None = None, deadline: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"id": oid, "text": text}
    if one_of:
        d["one_of"] = one_of
    if deadline:
        d["deadline"] = deadline
    return d


def _templates(code: str, k: int, rnd: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """One copy of every template: (domain, rule). Flags are suffixed with k so copies chain among themselves."""
    s = f"_{k}" if k else ""
    sens = rnd.sample(SENSITIVE, 2)
    mech = rnd.sample(MECHANISMS, 3)
    thr = rnd.choice([1_000, 10_000, 50_000, 100_000, 1_000_000]) * (k + 1)
    sectors = rnd.sample(SECTORS, 2)
    purposes = rnd.sample(EXEMPT_PURPOSES, 2)
    loc = rnd.sample(LOCAL, 2)
    a = f"Art. {10 + k}"
    out: list[tuple[str, dict[str, Any]]] = [
        (
            "data_protection",
            _rule(
                code,
                f"adequate{s}",
                "destination recognised as adequate",
                "DPA",
                a,
                {"field": "to", "in_list": "adequate" if k % 2 == 0 else "ASEAN"},
                {"derive": [f"adequate{s}"]},
            ),
        ),
        (
            "data_protection",
            _rule(
                code,
                f"large{s}",
                "large-volume transfer",
                "DPA",
                a,
                {"field": "subjects", "gte": thr},
                {"derive": [f"large{s}"]},
            ),
        ),
        (
            "data_protection",
            _rule(
                code,
                f"very-large{s}",
                "very large volume (chained from large)",
                "DPA",
                a,
                {"all": [{"flag": f"large{s}"}, {"field": "subjects", "gte": thr * 10}]},
                {"derive": [f"very_large{s}"]},
            ),
        ),
        (
            "data_protection",
            _rule(
                code,
                f"transfer-basis{s}",
                "a transfer basis is needed for personal data",
                "DPA",
                a,
                {"all": [{"field": "data_categories", "contains": "personal"}, {"field": "hop", "gte": 0}]},
                {
                    "effect": "condition",
                    "obligations": [_ob(f"{code}-ob-basis{s}", "have a transfer basis", ["consent", *mech])],
                },
                unless={
                    "any": [
                        {"field": "safeguards", "contains_any": ["consent", *mech]},
                        {"flag": f"adequate{s}"},
                        {"field": "purpose", "in": purposes},
                    ]
                },
            ),
        ),
        (
            "data_protection",
            _rule(
                code,
                f"sensitive{s}",
                "sensitive data needs explicit consent and an assessment",
                "DPA",
                a,
                {"field": "data_categories", "contains_any": sens},
                {
                    "effect": "condition",
                    "obligations": [
                        _ob(f"{code}-ob-explicit{s}", "explicit consent", ["consent"]),
                        _ob(f"{code}-ob-tia{s}", "impact assessment", ["tia_filed"], "before the transfer"),
                    ],
                },
                unless={
                    "all": [
                        {"field": "safeguards", "contains_all": ["consent", "tia_filed"]},
                        {"not": {"field": "to", "in": ["KP", "IR"]}},
                    ]
                },
            ),
        ),
        (
            "data_protection",
            _rule(
                code,
                f"volume-filing{s}",
                "large transfers are filed with the regulator",
                "DPA",
                a,
                {"all": [{"flag": f"large{s}"}, {"field": "data_categories", "contains": "personal"}]},
                {
                    "effect": "condition",
                    "obligations": [
                        _ob(
                            f"{code}-ob-filing{s}",
                            "file with the regulator",
                            ["regulator_notified", "tia_filed"],
                            "60 days",
                        )
                    ],
                },
                unless={
                    "any": [
                        {"field": "safeguards", "contains_any": ["regulator_notified", "tia_filed"]},
                        {"field": "exporter", "eq": "public_body"},
                    ]
                },
            ),
        ),
        (
            "data_protection",
            _rule(
                code,
                f"approval{s}",
                "very large transfers need approval",
                "DPA",
                a,
                {"flag": f"very_large{s}"},
                {
                    "effect": "condition",
                    "obligations": [_ob(f"{code}-ob-approval{s}", "obtain approval", ["regulator_approval"])],
                },
                unless={"field": "safeguards", "contains": "regulator_approval"},
            ),
        ),
        (
            "data_protection",
            _rule(
                code,
                f"ciio{s}",
                "critical operators need a security assessment",
                "DPA",
                a,
                {
                    "all": [
                        {"field": "exporter", "eq": "ciio"},
                        {"field": "data_categories", "contains": "personal"},
                        {"field": "sector", "in": sectors},
                    ]
                },
                {
                    "effect": "condition",
                    "obligations": [_ob(f"{code}-ob-cac{s}", "security assessment", ["cac_security_assessment"])],
                },
                unless={"field": "safeguards", "contains": "cac_security_assessment"},
            ),
        ),
        (
            "data_protection",
            _rule(
                code,
                f"duty{s}",
                "continuing duty when relying on a mechanism",
                "DPA",
                a,
                {
                    "all": [
                        {"field": "safeguards", "contains_any": mech},
                        {"not": {"flag": f"adequate{s}"}},
                        {"field": "data_categories", "contains": "personal"},
                    ]
                },
                {"effect": "allow", "obligations": [_ob(f"{code}-ob-monitor{s}", "monitor the recipient")]},
            ),
        ),
        (
            "localisation",
            _rule(
                code,
                f"localise{s}",
                "data that must stay in the country",
                "LOC",
                a,
                {
                    "any": [
                        {"field": "data_categories", "contains_any": loc},
                        {
                            "all": [
                                {"field": "sector", "eq": sectors[0]},
                                {"field": "data_categories", "contains": sens[0]},
                            ]
                        },
                    ]
                },
                {"effect": "block"},
            ),
        ),
        (
            "ip",
            _rule(
                code,
                f"export-control{s}",
                "controlled technology needs a licence",
                "IPL",
                a,
                {"field": "data_categories", "contains": "controlled_technology"},
                {
                    "effect": "condition",
                    "obligations": [_ob(f"{code}-ob-licence{s}", "export licence", ["export_licence"])],
                },
                unless={"field": "safeguards", "contains": "export_licence"},
            ),
        ),
        (
            "ip",
            _rule(
                code,
                f"embargo{s}",
                "no technology to embargoed destinations",
                "IPL",
                a,
                {
                    "all": [
                        {"field": "data_categories", "contains_any": ["controlled_technology", "source_code"]},
                        {"field": "destination", "in": rnd.sample(["KP", "IR", "CU", "SY", "RU"], 2)},
                    ]
                },
                {"effect": "block"},
            ),
        ),
        (
            "ip",
            _rule(
                code,
                f"tdm{s}",
                "text-and-data mining allowed at this destination",
                "IPL",
                a,
                {
                    "all": [
                        {"field": "data_categories", "contains": "copyrighted_works"},
                        {"field": "purpose", "in": ["ai_training", "research"]},
                    ]
                },
                {"effect": "allow"},
                scope="importer",
            ),
        ),
        (
            "ip",
            _rule(
                code,
                f"trade-secret{s}",
                "trade secrets need confidentiality",
                "IPL",
                a,
                {"all": [{"field": "data_categories", "contains": "trade_secret"}, {"field": "hops", "gte": 1}]},
                {"effect": "condition", "obligations": [_ob(f"{code}-ob-nda{s}", "NDA", ["nda"])]},
                unless={"field": "safeguards", "contains": "nda"},
            ),
        ),
    ]
    if k:
        # later copies are specialised, as real rule growth is: sector-, purpose- or destination-specific rules
        narrow = [
            {"field": "sector", "eq": SECTORS[k % len(SECTORS)]},
            {
                "field": "purpose",
                "in": rnd.sample(
                    ["analytics", "marketing", "research", "cloud_storage", "hr_management", "ai_training"], 2
                ),
            },
            {"field": "to", "in": rnd.sample(CODES + OTHERS, 4)},
        ][k % 3]
        for _, rule in out:
            if "effect" in rule["then"] and rule.get("scope") != "importer":
                rule["when"] = {"all": [rule["when"], narrow]}
    return out


TEMPLATES_PER_COPY = 14


def bundle_docs(jurisdictions: int = 19, rules: int = 14, seed: int = 0) -> dict[str, Any]:
    """The YAML documents of a bundle: {relative path: document}."""
    rnd = random.Random(seed)
    codes = (CODES + [f"X{chr(65 + i // 26)}{chr(65 + i % 26)}"[:2] for i in range(100)])[:jurisdictions]
    docs: dict[str, Any] = {
        "bundle.yaml": {
            "version": f"0.{jurisdictions * 1000 + rules}.{seed}",
            "title": f"synthetic benchmark corpus {jurisdictions}x{rules} seed {seed}",
        },
        "groups.yaml": {
            "aliases": {},
            "groups": {
                "ASEAN": {"title": "ASEAN", "members": [{"code": c} for c in ["SG", "VN", "ID", "MY", "TH", "PH"]]}
            },
        },
    }
    for code in codes:
        members = rnd.sample([c for c in CODES + OTHERS if c != code], 8)
        docs[f"{code}/jurisdiction.yaml"] = {
            "code": code,
            "name": f"{code} (synthetic)",
            "laws": {
                "DPA": {
                    "title": "Data Protection Act",
                    "url": "https://example.org/dpa",
                    "effective_from": date(2018, 1, 1),
                },
                "LOC": {
                    "title": "Cybersecurity Law",
                    "url": "https://example.org/csl",
                    "effective_from": date(2017, 6, 1),
                },
                "IPL": {
                    "title": "Foreign Trade Act",
                    "url": "https://example.org/fta",
                    "effective_from": date(2000, 1, 1),
                },
            },
            "lists": {
                "adequate": {
                    "title": "adequate destinations",
                    "members": [{"code": c, "from": date(2010 + rnd.randint(0, 14), 1, 1)} for c in members],
                }
            },
        }
        by_domain: dict[str, list] = {"data_protection": [], "localisation": [], "ip": []}
        n = 0
        k = 0
        while n < rules:
            for domain, rule in _templates(code, k, rnd):
                if n == rules:
                    break
                by_domain[domain].append(rule)
                n += 1
            k += 1
        for domain, rs in by_domain.items():
            if rs:
                docs[f"{code}/{domain}.yaml"] = {"jurisdiction": code, "domain": domain, "rules": rs}
    return docs


def write_bundle(root: Path, jurisdictions: int = 19, rules: int = 14, seed: int = 0) -> Path:
    for rel, doc in bundle_docs(jurisdictions, rules, seed).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    write_manifest(root)
    return root


def synthetic_ruleset(jurisdictions: int = 19, rules: int = 14, seed: int = 0) -> RuleSet:
    with tempfile.TemporaryDirectory(prefix="dfft-synth-") as tmp:
        return load_ruleset(write_bundle(Path(tmp), jurisdictions, rules, seed))


if __name__ == "__main__":
    import sys

    rs = synthetic_ruleset(*(int(a) for a in sys.argv[1:]))
    print(rs.version, sum(len(j.rules) for j in rs.jurisdictions.values()), "rules", rs.hash[:12])
