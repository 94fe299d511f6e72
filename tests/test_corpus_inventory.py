"""Localisation inventories (issue 13 item 3): every localisation or cross-border restriction measure found for CN,
IN, ID, RU, VN, KR and MY is listed in its jurisdiction.yaml, encoded (by rules that exist) or reviewed (with the
reason it is not encoded), and docs/coverage.md renders them."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from dfft.rules import RuleSetError, load_ruleset
from dfft.rules.coverage import inventory_counts, markdown
from dfft.rules.dump import dump_ruleset
from dfft.rules.loader import write_manifest

from .conftest import MINI

INVENTORIED = ("CN", "IN", "ID", "RU", "VN", "KR", "MY")


@pytest.mark.parametrize("code", INVENTORIED)
def test_every_listed_jurisdiction_has_an_inventory(corpus_rs, code):
    inv = corpus_rs.jurisdictions[code].inventory
    assert inv, f"{code}: no `inventory:` in jurisdiction.yaml"
    assert any(e.status == "encoded" for e in inv), f"{code}: nothing encoded"
    assert any(e.status == "reviewed" for e in inv), f"{code}: no measure reviewed and left out, with its reason"


@pytest.mark.parametrize("code", INVENTORIED)
def test_inventory_rule_ids_exist_in_the_jurisdiction(corpus_rs, code):
    j = corpus_rs.jurisdictions[code]
    ids = {r.id for r in j.rules}
    for e in j.inventory:
        if e.status == "encoded":
            assert e.rules and set(e.rules) <= ids, (e.measure, sorted(set(e.rules) - ids))
        else:
            assert not e.rules and e.reason, e.measure


@pytest.mark.parametrize("code", INVENTORIED)
def test_every_localisation_rule_is_inventoried(corpus_rs, code):
    """A localisation rule of these jurisdictions appears in the inventory (the list is complete for what is encoded)."""
    j = corpus_rs.jurisdictions[code]
    listed = {r for e in j.inventory for r in e.rules}
    missing = sorted(r.id for r in j.rules_in("localisation") if r.id not in listed)
    assert not missing, f"{code}: localisation rules missing from the inventory: {missing}"


def test_coverage_markdown_lists_each_inventory(corpus_rs):
    md = markdown(corpus_rs)
    assert "## Localisation inventory" in md
    counts = inventory_counts(corpus_rs)
    for code in INVENTORIED:
        enc, rev = counts[code]
        assert f"| {code} | {enc} | {rev} |" in md
        assert f"### {code} — " in md
    for e in corpus_rs.jurisdictions["IN"].inventory:
        assert e.url in md


# -- the loader's checks, on the small fixture bundle -------------------------------------------------------------

ENTRY = {
    "measure": "Transfer abroad needs consent",
    "instrument": "PDPA s.26",
    "url": "https://sso.agc.gov.sg/Act/PDPA2012",
    "domain": "personal_data",
    "status": "encoded",
    "rules": ["SG-26"],
    "confidence": "high",
    "source_date": date(2021, 2, 1),
}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(MINI, dst)
    return dst


def add_entry(root: Path, entry: dict) -> None:
    path = root / "SG" / "jurisdiction.yaml"
    doc = yaml.safe_load(path.read_text())
    doc.setdefault("inventory", []).append(entry)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    write_manifest(root)


def test_inventory_loads_and_round_trips(bundle, tmp_path):
    add_entry(bundle, ENTRY)
    rs = load_ruleset(bundle)
    (e,) = rs.jurisdictions["SG"].inventory
    assert (e.status, e.rules, e.source_date) == ("encoded", ("SG-26",), date(2021, 2, 1))
    again = load_ruleset(dump_ruleset(rs, tmp_path / "out"))
    assert again == rs and again.hash == rs.hash


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"rules": ["SG-nope"]}, "inventory[0].rules", "unknown rule id 'SG-nope'"),
        ({"rules": ["JP-consent"]}, "inventory[0].rules", "expected a rule of SG"),
        ({"status": "reviewed", "reason": "not a transfer restriction"}, "inventory[0].rules", "name no rules"),
        ({"status": "reviewed", "rules": None}, "inventory[0].reason", "needs the reason"),
    ],
)
def test_inventory_is_checked(bundle, change, field, message):
    entry = {k: v for k, v in {**ENTRY, **change}.items() if v is not None}
    add_entry(bundle, entry)
    with pytest.raises(RuleSetError) as exc:
        load_ruleset(bundle)
    found = [p for p in exc.value.problems if p.field == field]
    assert found and message in found[0].message, exc.value.problems


@pytest.mark.parametrize(
    "change, field",
    [({"status": "pending"}, "status"), ({"domain": "finance"}, "domain"), ({"url": "not a url"}, "url")],
)
def test_inventory_schema_names_the_field(bundle, change, field):
    add_entry(bundle, {**ENTRY, **change})
    with pytest.raises(RuleSetError) as exc:
        load_ruleset(bundle)
    assert any(field in (p.field or "") for p in exc.value.problems), exc.value.problems
