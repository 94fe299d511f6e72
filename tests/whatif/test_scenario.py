"""Scenario files: validation with clear errors, applying to facts and law, the examples."""

from __future__ import annotations

import json
from datetime import date

import pytest

from dfft.whatif import Scenario, ScenarioError, diff, law_delta, load_requests, load_scenario, parse_scenario

from .conftest import DAY, EXAMPLES


def problems(doc, rs):
    with pytest.raises(ScenarioError) as e:
        parse_scenario(doc, rs, source="s.yaml")
    return [str(p) for p in e.value.problems]


@pytest.mark.parametrize(
    "doc, expect",
    [
        ({"facts": []}, "s.yaml field name: required field"),
        ({"name": "x", "law": {"disable_rules": ["VN-tiaa"]}}, "unknown rule 'VN-tiaa'; did you mean VN-tia"),
        (
            {"name": "x", "law": {"rule_dates": [{"rule": "nope", "effective_from": "2027-01-01"}]}},
            "law.rule_dates[0].rule: unknown rule 'nope'",
        ),
        (
            {"name": "x", "law": {"lists": [{"list": "JP.adequacy", "add": ["ID"]}]}},
            "unknown list 'JP.adequacy'; expected one of ['ASEAN', 'JP.equivalent', 'JP.restricted']",
        ),
        (
            {"name": "x", "facts": [{"where": {"destination": "APEC"}, "add_safeguards": ["consent"]}]},
            "facts[0].where.destination: unknown list 'APEC'",
        ),
        ({"name": "x", "facts": [{"add_safeguards": ["sccs"]}]}, "facts[0].add_safeguards: unknown value 'sccs'"),
        ({"name": "x", "facts": [{"sector": "shipbuilding"}]}, "facts[0].sector: unknown value 'shipbuilding'"),
        ({"name": "x", "facts": [{"add_safeguard": ["consent"]}]}, "facts[0].add_safeguard: unknown field"),
        (
            {"name": "x", "law": {"law_dates": [{"law": "VN.PDPA", "effective_from": "2027-01-01"}]}},
            "unknown law 'PDPA' of VN; expected one of ['CSL', 'PDPL']",
        ),
        ({"name": "x", "law": {"lists": [{"list": "ASEAN", "add": ["Vietnam"]}]}}, "law.lists[0].add"),
        (
            {
                "name": "x",
                "law": {
                    "add_rules": [
                        {
                            "jurisdiction": "VN",
                            "domain": "data_protection",
                            "id": "VN-tia",
                            "title": "t",
                            "citation": {"law": "PDPL", "article": "1"},
                            "confidence": "high",
                            "when": {"field": "subjects", "gte": 1},
                            "then": {"effect": "block"},
                        }
                    ]
                },
            },
            "a rule with this id exists",
        ),
        (
            {
                "name": "x",
                "law": {
                    "add_rules": [
                        {
                            "jurisdiction": "VN",
                            "domain": "data_protection",
                            "id": "VN-new",
                            "title": "t",
                            "citation": {"law": "PDPL", "article": "1"},
                            "confidence": "high",
                            "when": {"field": "data_categories", "contains": "personel"},
                            "then": {"effect": "block"},
                        }
                    ]
                },
            },
            "rule VN-new field law.add_rules[0].when: unknown data_categories value 'personel'",
        ),
        (
            {
                "name": "x",
                "law": {
                    "add_rules": [
                        {
                            "jurisdiction": "VN",
                            "domain": "data_protection",
                            "id": "VN-new",
                            "title": "t",
                            "citation": {"law": "PDPL", "article": "1"},
                            "confidence": "high",
                            "when": {"field": "subjects", "gte": 1},
                            "then": {
                                "effect": "condition",
                                "obligations": [{"id": "o", "text": "t", "one_of": ["consent"]}],
                            },
                        }
                    ]
                },
            },
            "holding 'consent' does not make `unless` true",
        ),
    ],
)
def test_invalid_scenarios_fail_clearly(mini_rs, doc, expect):
    found = problems(doc, mini_rs)
    assert any(expect in p for p in found), found


def test_errors_name_the_file(mini_rs, tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nlaw:\n  disable_rules: [nope]\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml field law.disable_rules\[0\]: unknown rule 'nope'"):
        load_scenario(p, mini_rs)
    p.write_text("name: x\nname: y\n")
    with pytest.raises(ScenarioError, match="duplicate key"):
        load_scenario(p, mini_rs)


def test_json_scenario_with_dates(mini_rs, tmp_path):
    p = tmp_path / "s.json"
    p.write_text(
        json.dumps(
            {
                "name": "j",
                "as_of": "2025-06-01",
                "law": {"lists": [{"list": "JP.equivalent", "add": [{"code": "SG", "from": "2020-01-01"}]}]},
            }
        )
    )
    sc = load_scenario(p, mini_rs)
    assert sc.as_of == date(2025, 6, 1)
    assert sc.apply_law(mini_rs).jurisdictions["JP"].lists["equivalent"].contains("SG", date(2021, 1, 1))


def test_apply_request_where_lists_and_codes(mini_rs):
    sc = parse_scenario(
        {
            "name": "x",
            "facts": [
                {"where": {"destination": "ASEAN"}, "add_safeguards": ["asean_mcc"]},
                {
                    "where": {"origin": ["JP"]},
                    "remove_data_categories": ["health"],
                    "add_data_categories": ["personal"],
                    "subjects": 5,
                },
            ],
        },
        mini_rs,
    )
    r = sc.apply_request({"origin": "JP", "destination": "SG", "data_categories": ["health"], "as_of": DAY}, mini_rs)
    assert r["safeguards"] == ["asean_mcc"] and r["data_categories"] == ["personal"] and r["subjects"] == 5
    r = sc.apply_request({"origin": "SG", "destination": "GB", "data_categories": ["health"]}, mini_rs)
    assert "safeguards" not in r and r["data_categories"] == ["health"]


def test_law_changes(mini_rs):
    sc = parse_scenario(
        {
            "name": "x",
            "law": {
                "disable_rules": ["VN-tia"],
                "law_dates": [{"law": "VN.PDPL", "effective_from": "2027-01-01"}],
                "rule_dates": [{"rule": "JP-consent", "effective_until": "2028-01-01"}],
                "add_rules": [
                    {
                        "jurisdiction": "SG",
                        "domain": "localisation",
                        "id": "SG-health-local",
                        "title": "health stays",
                        "citation": {"law": "PDPA", "article": "x"},
                        "confidence": "low",
                        "note": "hypothetical",
                        "when": {"field": "data_categories", "contains": "health"},
                        "then": {"effect": "block"},
                    }
                ],
            },
        },
        mini_rs,
    )
    rs = sc.apply_law(mini_rs)
    ids = {r.id for r in rs.all_rules()}
    assert "VN-tia" not in ids and "SG-health-local" in ids
    assert rs.rule("VN-huge").effective_from == date(2027, 1, 1)  # inherited its law's window, so it moves
    assert rs.jurisdictions["VN"].laws["PDPL"].effective_from == date(2027, 1, 1)
    assert rs.rule("JP-consent").effective_until == date(2028, 1, 1)
    back = law_delta(rs, mini_rs)
    assert Scenario(name="back", law=back).apply_law(rs).hash == mini_rs.hash


def test_law_date_moves_rules_that_inherited_it(mini_rs):
    # VN-tia's window starts with its law; moving the law moves it
    sc = parse_scenario(
        {"name": "x", "law": {"law_dates": [{"law": "VN.PDPL", "effective_from": "2027-01-01"}]}}, mini_rs
    )
    assert sc.apply_law(mini_rs).rule("VN-tia").effective_from == date(2027, 1, 1)


def test_examples_validate(mini_rs, mini_eu):
    for name in ("asean-mcc.yaml", "vn-pdpl-not-in-force.yaml"):
        load_scenario(EXAMPLES / name, mini_rs)
    with pytest.raises(ScenarioError, match="unknown list 'EU.adequacy'"):
        load_scenario(EXAMPLES / "eu-adequacy-indonesia.yaml", mini_rs)
    sc = load_scenario(EXAMPLES / "eu-adequacy-indonesia.yaml", mini_eu)
    assert sc.apply_law(mini_eu).jurisdictions["EU"].lists["adequacy"].contains("ID", date(2026, 6, 1))


def test_example_inventory_loads_and_judges(engines):
    reqs = load_requests(EXAMPLES / "inventory.csv")
    assert reqs[0]["id"] == "crm-sync" and reqs[1]["data_categories"] == ["personal", "financial"]
    reqs = [r for r in reqs if r["origin"] in engines.baseline.jurisdictions]  # the fixture has no EU rule set
    sc = load_scenario(EXAMPLES / "vn-pdpl-not-in-force.yaml", engines.baseline)
    d = diff(engines, reqs, sc)
    assert d.counts["errors"] == 0
    analytics = next(x for x in d.items if x.id == "analytics")
    assert (analytics.baseline, analytics.scenario) == ("conditional", "allowed")
    assert {f.rule_id for f in analytics.disappeared} == {"VN-tia"}
    assert "as of 2025-06-01" in analytics.disappeared[0].why


def test_eu_adequacy_example_diff(mini_eu):
    from dfft.whatif import Engines

    e = Engines(mini_eu, backend="reference", today=DAY)
    sc = load_scenario(EXAMPLES / "eu-adequacy-indonesia.yaml", mini_eu)
    d = diff(e, [{"id": "x", "origin": "EU", "destination": "ID", "data_categories": ["personal"]}], sc)
    it = d.items[0]
    assert (it.baseline, it.scenario, it.direction) == ("conditional", "allowed", "better")
    assert [f.rule_id for f in it.disappeared] == ["EU-46"] and it.disappeared[0].citation.article == "Art. 46"
    assert [o.id for o in it.obligations_disappeared] == ["EU-ob-46"]


def test_a_finding_that_becomes_met_is_reported_once(engines):
    sc = load_scenario(EXAMPLES / "asean-mcc.yaml", engines.baseline)
    it = diff(
        engines,
        [{"id": "x", "origin": "SG", "destination": "VN", "data_categories": ["personal"], "as_of": "2026-06-01"}],
        sc,
    ).items[0]
    assert [f.rule_id for f in it.appeared] == []
    assert [(f.rule_id, f.why) for f in it.disappeared] == [("SG-26", "now met by safeguards: asean_mcc")]
