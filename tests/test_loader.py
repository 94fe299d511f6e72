"""Malformed rule files are refused with errors naming the file, the rule and the field; nothing half-loads."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from dfft.rules import RuleSetError, load_ruleset
from dfft.rules.dump import dump_ruleset
from dfft.rules.loader import write_manifest

from .conftest import MINI


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(MINI, dst)
    return dst


def edit(path: Path, fn) -> None:
    doc = yaml.safe_load(path.read_text())
    fn(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    write_manifest(path.parents[1])  # these tests are about content: the manifest follows the edit


def problems(root: Path) -> list:
    write_manifest(root)
    with pytest.raises(RuleSetError) as exc:
        load_ruleset(root)
    return exc.value.problems


def test_fixture_loads(bundle):
    rs = load_ruleset(bundle)
    assert sorted(rs.jurisdictions) == ["JP", "SG", "VN"]
    assert rs.rule("JP-consent").citation.article == "Art. 3"


def test_unknown_operator_names_file_rule_and_field(bundle):
    edit(
        bundle / "SG/data_protection.yaml",
        lambda d: d["rules"][0]["when"].update({"field": "data_categories", "has": "x"}),
    )
    (p,) = problems(bundle)
    assert p.file.endswith("SG/data_protection.yaml") and p.rule_id == "SG-26" and p.field == "when"
    assert "contains" in p.message  # lists what was expected


def test_unknown_category_lists_valid_ones(bundle):
    edit(bundle / "SG/data_protection.yaml", lambda d: d["rules"][0]["when"].update({"contains": "persona"}))
    (p,) = problems(bundle)
    assert p.rule_id == "SG-26" and "persona" in p.message and "sensitive_personal" in p.message


def test_missing_required_field(bundle):
    edit(bundle / "SG/data_protection.yaml", lambda d: d["rules"][0].pop("citation"))
    (p,) = problems(bundle)
    assert p.rule_id == "SG-26" and p.field == "citation" and "required" in p.message


def test_bad_effect_lists_allowed_values(bundle):
    edit(bundle / "SG/data_protection.yaml", lambda d: d["rules"][0]["then"].update({"effect": "deny"}))
    ps = problems(bundle)
    assert any(p.field == "then.effect" and "block" in p.message for p in ps)


def test_unknown_law_and_bad_prefix(bundle):
    def f(d):
        d["rules"][0]["citation"]["law"] = "NOPE"
        d["rules"][0]["id"] = "JP-stray"

    edit(bundle / "SG/data_protection.yaml", f)
    msgs = {(p.field, p.rule_id) for p in problems(bundle)}
    assert ("citation.law", "JP-stray") in msgs and ("id", "JP-stray") in msgs


def test_duplicate_rule_id_across_files(bundle):
    edit(bundle / "JP/ip.yaml", lambda d: d["rules"][0].update({"id": "JP-consent"}))
    assert any("duplicate rule id" in p.message for p in problems(bundle))


def test_duplicate_yaml_key_is_an_error(bundle):
    path = bundle / "SG/jurisdiction.yaml"
    path.write_text(path.read_text() + "name: again\n")
    (p,) = problems(bundle)
    assert "duplicate key 'name'" in p.message


def test_stray_file_is_not_silently_ignored(bundle):
    (bundle / "SG" / "dataprotection.yaml").write_text("rules: []\n")
    (p,) = problems(bundle)
    assert p.file.endswith("dataprotection.yaml") and "unexpected file" in p.message


def test_flag_cycle_is_refused(bundle):
    def f(d):
        d["rules"][0]["when"] = {"flag": "recipient_system"}
        d["rules"][1]["when"] = {"flag": "equivalent"}

    edit(bundle / "JP/data_protection.yaml", f)
    assert any("depend on themselves" in p.message for p in problems(bundle))


def test_undefined_flag(bundle):
    edit(bundle / "SG/data_protection.yaml", lambda d: d["rules"][0].update({"when": {"flag": "ghost"}}))
    (p,) = problems(bundle)
    assert "ghost" in p.message


def test_safeguard_that_would_raise_severity_is_refused(bundle):
    edit(
        bundle / "VN/localisation.yaml",
        lambda d: d["rules"][0].update({"when": {"field": "safeguards", "contains": "encryption"}}),
    )
    (p,) = problems(bundle)
    assert p.rule_id == "VN-core" and "more severe" in p.message


def test_obligation_safeguard_must_discharge_the_rule(bundle):
    edit(
        bundle / "SG/data_protection.yaml",
        lambda d: d["rules"][0]["then"]["obligations"][0].update({"one_of": ["consent", "eu_scc"]}),
    )
    (p,) = problems(bundle)
    assert "eu_scc" in p.message and p.field == "unless"


def test_low_confidence_needs_a_note(bundle):
    edit(bundle / "VN/data_protection.yaml", lambda d: d["rules"][3].pop("note"))
    (p,) = problems(bundle)
    assert p.rule_id == "VN-huge" and p.field == "note"


def test_all_problems_reported_at_once(bundle):
    edit(bundle / "SG/data_protection.yaml", lambda d: d["rules"][0].pop("title"))
    edit(bundle / "VN/localisation.yaml", lambda d: d["rules"][0].pop("confidence"))
    files = {Path(p.file).parent.name for p in problems(bundle)}
    assert files == {"SG", "VN"}


def test_folder_code_mismatch(bundle):
    edit(bundle / "SG/jurisdiction.yaml", lambda d: d.update({"code": "SX"}))
    (p,) = problems(bundle)
    assert "does not match the folder" in p.message


def test_round_trip(mini_rs, tmp_path):
    again = load_ruleset(dump_ruleset(mini_rs, tmp_path / "out"))
    assert again == mini_rs and again.hash == mini_rs.hash


def test_hash_ignores_file_and_rule_order(bundle):
    before = load_ruleset(bundle).hash
    edit(bundle / "JP/data_protection.yaml", lambda d: d["rules"].reverse())
    assert load_ruleset(bundle).hash == before


GAP = {
    "id": "SG-old-regs",
    "provision": "s.26 and the earlier regulations",
    "url": "https://example.invalid/old",
    "from": date(2014, 7, 2),
    "until": date(2021, 2, 1),
    "data_categories": ["personal"],
    "confidence": "high",
}


def test_uncovered_periods_load_and_round_trip(bundle, tmp_path):
    edit(bundle / "SG/jurisdiction.yaml", lambda d: d.setdefault("uncovered", []).append(dict(GAP)))
    rs = load_ruleset(bundle)
    (gap,) = rs.jurisdictions["SG"].uncovered
    assert (gap.from_.isoformat(), gap.until.isoformat(), gap.scope) == ("2014-07-02", "2021-02-01", "exporter")
    again = load_ruleset(dump_ruleset(rs, tmp_path / "out"))
    assert again == rs and again.hash == rs.hash


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"law": "NOPE"}, "uncovered[0].law", "unknown law 'NOPE'"),
        ({"until": date(2014, 7, 2)}, "uncovered[0]", "from is not before until"),
        ({"data_categories": ["persnal"]}, "uncovered[0].data_categories", "unknown value 'persnal'"),
        ({"confidence": "low"}, "uncovered[0].note", "needs a note"),
        ({"id": "JP-old-regs"}, "uncovered[0].id", "must start with the jurisdiction code 'SG-'"),
    ],
)
def test_uncovered_periods_are_checked(bundle, change, field, message):
    edit(bundle / "SG/jurisdiction.yaml", lambda d: d.setdefault("uncovered", []).append({**GAP, **change}))
    found = [p for p in problems(bundle) if p.field == field]
    assert found and message in found[0].message, problems(bundle)
