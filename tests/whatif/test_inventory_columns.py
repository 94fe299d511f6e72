"""Inventory files carry the fields of request model v2 as flat columns (whatif/context.py `unflatten`), read the same
way by `dfft whatif --requests` and by `dfft bulk`."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfft.engine import Engine
from dfft.rules import load_ruleset
from dfft.whatif.context import InventoryError, load_requests, strip_id

from ..conftest import MINI

HEADER = (
    "id,origin,destination,via,transit,data_categories,subjects,counts,purposes,exporter_role,established,"
    "subjects_in,nationality,collected_in,publicly_available,recipient_relation,recipient_role,recipient_access,as_of\n"
)


def _write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "inv.csv"
    p.write_text(HEADER + body, encoding="utf-8")
    return p


def test_flat_v2_columns_become_request_fields(tmp_path):
    p = _write(
        tmp_path,
        "a,JP,VN,,SG;TH,personal;health,1000,health=10;personal=1000,cloud_storage;hr,processor,JP,JP;VN,JP,JP,"
        "yes,group_company,processor,none,2026-06-01\n",
    )
    (r,) = load_requests(p)
    assert r["via"] == [{"jurisdiction": "SG", "transit": True}, {"jurisdiction": "TH", "transit": True}]
    assert r["counts"] == {"health": 10, "personal": 1000}
    assert r["purposes"] == ["cloud_storage", "hr"] and r["subjects_in"] == ["JP", "VN"]
    assert r["recipient"] == {"relation": "group_company", "role": "processor", "access": "none"}
    assert r["publicly_available"] is True and r["exporter_role"] == "processor"


def test_the_columns_change_the_verdict_as_the_json_form_would(tmp_path):
    engine = Engine(load_ruleset(MINI))
    p = _write(
        tmp_path, "a,JP,VN,,,personal,,,,,,,,,,,processor,none,2026-06-01\nb,JP,VN,,,personal,,,,,,,,,,,,,2026-06-01\n"
    )
    a, b = (engine.check(strip_id(r)) for r in load_requests(p))
    as_json = engine.check(
        {
            "origin": "JP",
            "destination": "VN",
            "data_categories": ["personal"],
            "as_of": "2026-06-01",
            "recipient": {"role": "processor", "access": "none"},
        }
    )
    assert a.verdict == as_json.verdict == "allowed" and [n.id for n in a.not_transfers] == ["JP-no-access"]
    assert b.verdict == "conditional"


@pytest.mark.parametrize(
    "row, field",
    [
        ("a,JP,VN,,,personal,,health=ten,,,,,,,,,,,\n", "counts"),
        ("a,JP,VN,,,personal,,health,,,,,,,,,,,\n", "counts"),
        ("a,JP,VN,,,personal,,,,,,,,,maybe,,,,\n", "publicly_available"),
        ("a,JP,VN,,,personal,lots,,,,,,,,,,,,\n", "subjects"),
    ],
)
def test_bad_cells_name_the_field(tmp_path, row, field):
    with pytest.raises(InventoryError, match=f"field {field}"):
        load_requests(_write(tmp_path, row))
