"""Uploaded inventories as people save them: Excel CSV (BOM, `;`, Shift_JIS), thousands separators, quoted newlines,
XLSX, JSON; every problem named by row and field."""

from __future__ import annotations

import io
import json
from datetime import date, datetime

import pytest
from openpyxl import Workbook

from dfft.rules import load_ruleset
from dfft.web.inventory import parse_inventory, to_csv, validate_rows, whole_number
from dfft.whatif.context import load_requests

from .conftest import BUNDLE


def test_excel_csv_utf8_with_bom_semicolons_and_thousands():
    text = (
        "\ufeffid;origin;destination;data_categories;subjects;safeguards\r\n"
        'crm;JP;SG;personal,financial;"1.000";\r\n'
        'hr;SG;VN;"personal\nemployee";25 000;asean_mcc|consent\r\n'
    )
    p = parse_inventory("inv.csv", text.encode("utf-8"))
    assert p.errors == [] and p.format == "csv"
    assert p.rows[0] == {
        "id": "crm",
        "origin": "JP",
        "destination": "SG",
        "data_categories": ["personal", "financial"],
        "subjects": 1000,
    }
    assert p.rows[1]["data_categories"] == ["personal", "employee"]  # a quoted newline inside a cell
    assert p.rows[1]["subjects"] == 25000 and p.rows[1]["safeguards"] == ["asean_mcc", "consent"]


def test_comma_csv_quoted_thousands_and_shift_jis():
    text = 'origin,destination,data_categories,subjects,purpose\nJP,VN,personal;health,"1,000",research\n'
    p = parse_inventory("x.csv", text.encode("cp932"))
    assert p.errors == []
    assert p.rows == [
        {
            "origin": "JP",
            "destination": "VN",
            "data_categories": ["personal", "health"],
            "subjects": 1000,
            "purpose": "research",
            "id": "line 2",
        }
    ]
    jp = "id,origin,destination\n顧客,JP,SG\n".encode("cp932")  # Excel's "CSV (Comma delimited)" on Japanese Windows
    assert parse_inventory("x.csv", jp).rows[0]["id"] == "顧客"


@pytest.mark.parametrize(
    "v,expected", [("1,000", 1000), ("1.000", 1000), ("1 000 000", 1_000_000), ("12", 12), (3.0, 3), (7, 7)]
)
def test_whole_numbers(v, expected):
    assert whole_number(v) == expected


@pytest.mark.parametrize("v", ["1,5", "1.5", "ten", "-3", 2.5, "1,00"])
def test_not_whole_numbers(v):
    with pytest.raises(ValueError):
        whole_number(v)


def test_problems_name_the_row_and_field():
    text = "origin,destination,subjects\nJP,VN,lots\nJP,SG,12\n"
    p = parse_inventory("x.csv", text.encode())
    assert [str(e) for e in p.errors] == ["line 2, subjects: 'lots' is not a whole number (e.g. 1000, 1,000 or 1.000)"]
    assert [r["id"] for r in p.rows] == ["line 3"]
    bad = parse_inventory("x.csv", b"origin,destination,colour\nJP,VN,red\n")
    assert bad.errors and bad.errors[0].row == "header" and "colour" in bad.errors[0].field
    missing = parse_inventory("x.csv", b"destination\nVN\n")
    assert [(e.row, e.field) for e in missing.errors] == [("header", "origin")]
    extra = parse_inventory("x.csv", b"origin,destination\nJP,VN,oops\n")
    assert extra.errors and "2 columns" in extra.errors[0].message


def test_row_limit():
    text = "origin,destination\n" + "JP,VN\n" * 11
    p = parse_inventory("x.csv", text.encode(), max_rows=10)
    assert len(p.rows) == 10 and "at most 10" in p.errors[0].message


def xlsx(rows: list[list]) -> bytes:
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_xlsx_numbers_dates_and_lists():
    data = xlsx(
        [
            ["ID", "Origin", "Destination", "Data categories", "Subjects", "As of"],
            ["crm", "JP", "SG", "personal;financial", 25000, datetime(2026, 6, 1)],
            [None, None, None, None, None, None],
            ["hr", "SG", "VN", "personal", "1,000", date(2026, 6, 1)],
        ]
    )
    p = parse_inventory("inv.xlsx", data)
    assert p.errors == [] and p.format == "xlsx"
    assert p.rows == [
        {
            "id": "crm",
            "origin": "JP",
            "destination": "SG",
            "data_categories": ["personal", "financial"],
            "subjects": 25000,
            "as_of": "2026-06-01",
        },
        {
            "id": "hr",
            "origin": "SG",
            "destination": "VN",
            "data_categories": ["personal"],
            "subjects": 1000,
            "as_of": "2026-06-01",
        },
    ]
    assert parse_inventory("x.xlsx", b"PK\x03\x04not a workbook").errors[0].field == "xlsx"


def test_json_list_or_mapping():
    reqs = [{"origin": "JP", "destination": "VN", "data_categories": ["personal"], "subjects": 5}]
    assert parse_inventory("x.json", json.dumps(reqs).encode()).rows[0]["subjects"] == 5
    assert parse_inventory("x.json", json.dumps({"requests": reqs}).encode()).rows[0]["id"] == "#1"
    assert parse_inventory("x.json", b'{"requests": 3}').errors
    assert parse_inventory("x.json", b'[{"origin": "JP", "colour": 1}]').errors[0].row == "#1"


def test_validation_and_export_round_trip_through_the_cli_reader(tmp_path):
    rs = load_ruleset(BUNDLE)
    p = parse_inventory("x.csv", b"id,origin,destination,data_categories\na,JP,VN,personal\nb,JP,XX,personal\n")
    problems = validate_rows(p.rows, rs)
    assert list(problems) == ["b"] and problems["b"][0]["field"] == "destination"
    out = tmp_path / "export.csv"
    out.write_text(to_csv(p.rows), encoding="utf-8")
    back = load_requests(out)  # the file `dfft whatif --requests` reads
    assert [(r["id"], r["origin"], r["destination"], r["data_categories"]) for r in back] == [
        ("a", "JP", "VN", ["personal"]),
        ("b", "JP", "XX", ["personal"]),
    ]
