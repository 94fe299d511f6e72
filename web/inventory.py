"""Reading data-flow inventories as people save them: CSV from Excel (UTF-8 with a BOM, or the Japanese Windows
code page), `;` or `,` or tab delimited, numbers with thousands separators (`1,000`, `1.000`, `1 000`), cells with
quoted newlines; XLSX (first sheet); JSON (a list of requests, or `{"requests": [...]}`).

Every problem is reported per row and field; nothing is guessed silently. The rows are plain request dicts with an
`id`, as `dfft whatif --requests` reads them (whatif.context.load_requests).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Optional

from ..engine.request import RequestError, normalise
from ..rules.model import RuleSet
from ..whatif.context import FIELDS, LIST_FIELDS

ALIASES = {
    "from": "origin",
    "to": "destination",
    "categories": "data_categories",
    "data": "data_categories",
    "data_category": "data_categories",
    "safeguard": "safeguards",
    "date": "as_of",
}
THOUSANDS = re.compile(r"^\d{1,3}([,.'\u00a0\u202f _]\d{3})+$")
MAX_CELL = 2000


@dataclass
class RowError:
    row: str  # "line 3", "row 3", "#3"
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.row}, {self.field}: {self.message}"


@dataclass
class Parsed:
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    format: str = ""


def whole_number(v: Any) -> int:
    """An integer from a cell: 1000, "1,000", "1.000", "1 000", 1000.0; anything else raises ValueError."""
    if isinstance(v, bool):
        raise ValueError("not a number")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if v.is_integer():
            return int(v)
        raise ValueError("not a whole number")
    s = str(v).strip().replace("_", "")
    if THOUSANDS.match(s):
        s = re.sub(r"\D", "", s)
    if not re.fullmatch(r"\d+", s):
        raise ValueError("not a whole number")
    return int(s)


def split_list(v: Any, sep: str) -> list[str]:
    if isinstance(v, list):
        return [str(x).strip() for x in v if str(x).strip()]
    s = str(v)
    for ch in ("|", "\n", "\r", "，", "、", "；", ",", ";"):  # any list separator, whatever the file's delimiter
        s = s.replace(ch, sep)
    return [x.strip() for x in s.split(sep) if x.strip()]


def column(name: Any) -> str:
    n = re.sub(r"[\s\-]+", "_", str(name or "").strip().lower().lstrip("\ufeff"))
    return ALIASES.get(n, n)


def decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp932")  # Excel's "CSV (Comma delimited)" on Japanese Windows


def _cells(out: Parsed, label: str, raw: dict[str, Any], list_sep: str) -> None:
    r: dict[str, Any] = {}
    errors = len(out.errors)
    for k, v in raw.items():
        if v is None or (isinstance(v, str) and v.strip() == ""):
            continue
        if isinstance(v, str) and len(v) > MAX_CELL:
            out.errors.append(RowError(label, k, f"a cell may hold at most {MAX_CELL} characters"))
            continue
        if isinstance(v, datetime):
            v = v.date()
        if isinstance(v, date):
            v = v.isoformat()
        if k in LIST_FIELDS:
            r[k] = split_list(v, list_sep)
        elif k == "subjects":
            try:
                r[k] = whole_number(v)
            except ValueError:
                out.errors.append(
                    RowError(label, k, f"{str(v)[:40]!r} is not a whole number (e.g. 1000, 1,000 or 1.000)")
                )
                continue
        elif isinstance(v, float) and v.is_integer():
            r[k] = str(int(v))
        else:
            r[k] = str(v).strip()
    if not r or len(out.errors) > errors:
        return  # an empty line, or a row with a problem (reported)
    r["id"] = str(r.get("id") or label)
    out.rows.append(r)


def _header(out: Parsed, names: list[Any]) -> Optional[list[str]]:
    cols = [column(n) for n in names]
    unknown = [str(n) for n, c in zip(names, cols, strict=True) if c and c not in FIELDS]
    if unknown:
        out.errors.append(
            RowError("header", ", ".join(unknown)[:200], f"unknown column(s); expected some of {', '.join(FIELDS)}")
        )
        return None
    for need in ("origin", "destination"):
        if need not in cols:
            out.errors.append(RowError("header", need, "this column is required"))
    return None if out.errors else cols


def parse_csv(data: bytes, max_rows: int) -> Parsed:
    out = Parsed(format="csv")
    try:
        text = decode(data)
    except UnicodeDecodeError:
        out.errors.append(RowError("file", "encoding", "not UTF-8 (with or without BOM), UTF-16 or Shift_JIS text"))
        return out
    first = text.split("\n", 1)[0]
    delim = max((";", ",", "\t"), key=first.count)
    list_sep = ";" if delim != ";" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    try:
        header = next(reader, None)
        if header is None:
            out.errors.append(RowError("file", "header", "the file is empty"))
            return out
        cols = _header(out, header)
        if cols is None:
            return out
        for cells in reader:
            line = f"line {reader.line_num}"
            if len(out.rows) >= max_rows:
                out.errors.append(RowError(line, "rows", f"at most {max_rows:,} transfers in one inventory"))
                break
            if len(cells) > len(cols) and any(c.strip() for c in cells[len(cols) :]):
                out.errors.append(
                    RowError(line, "cells", f"{len(cells)} cells but {len(cols)} columns (a delimiter inside a value?)")
                )
                continue
            _cells(out, line, {c: v for c, v in zip(cols, cells, strict=False) if c}, list_sep)
    except csv.Error as e:
        out.errors.append(RowError(f"line {reader.line_num}", "file", f"cannot be read as CSV: {e}"))
    return out


def parse_xlsx(data: bytes, max_rows: int) -> Parsed:
    out = Parsed(format="xlsx")
    try:
        from openpyxl import load_workbook

        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 — a zip that is not a workbook, a broken file: the user's error
        out.errors.append(RowError("file", "xlsx", f"cannot be read as an Excel workbook: {type(e).__name__}"))
        return out
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            out.errors.append(RowError("file", "header", "the first sheet is empty"))
            return out
        cols = _header(out, [h for h in header])
        if cols is None:
            return out
        for i, cells in enumerate(rows, start=2):
            if len(out.rows) >= max_rows:
                out.errors.append(RowError(f"row {i}", "rows", f"at most {max_rows:,} transfers in one inventory"))
                break
            _cells(out, f"row {i}", {c: v for c, v in zip(cols, cells, strict=False) if c}, ";")
    finally:
        wb.close()
    return out


def parse_json(data: bytes, max_rows: int) -> Parsed:
    out = Parsed(format="json")
    try:
        doc = json.loads(decode(data))
    except (ValueError, UnicodeDecodeError) as e:
        out.errors.append(RowError("file", "json", f"cannot be parsed: {str(e)[:200]}"))
        return out
    if isinstance(doc, dict):
        doc = doc.get("requests")
    if not isinstance(doc, list):
        out.errors.append(RowError("file", "json", 'expected a list of requests, or {"requests": [...]}'))
        return out
    for i, x in enumerate(doc, start=1):
        if len(out.rows) >= max_rows:
            out.errors.append(RowError(f"#{i}", "rows", f"at most {max_rows:,} transfers in one inventory"))
            break
        if not isinstance(x, dict):
            out.errors.append(RowError(f"#{i}", "request", "expected an object with origin, destination, ..."))
            continue
        raw = {column(k): v for k, v in x.items()}
        unknown = [k for k in raw if k not in FIELDS]
        if unknown:
            out.errors.append(
                RowError(f"#{i}", ", ".join(unknown)[:200], f"unknown field(s); expected some of {', '.join(FIELDS)}")
            )
            continue
        _cells(out, f"#{i}", raw, ";")
    return out


def parse_inventory(filename: str, data: bytes, max_rows: int = 5_000) -> Parsed:
    """Rows and per-row problems of an uploaded inventory, by the file's extension (or its first bytes)."""
    name = (filename or "").lower()
    if name.endswith((".xlsx", ".xlsm")) or data.startswith(b"PK\x03\x04"):
        return parse_xlsx(data, max_rows)
    if name.endswith(".json") or data.lstrip(b"\xef\xbb\xbf \r\n\t")[:1] in (b"[", b"{"):
        return parse_json(data, max_rows)
    return parse_csv(data, max_rows)


def request_of(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "id"}


def validate_rows(rows: list[dict[str, Any]], rs: RuleSet) -> dict[str, list[dict[str, Any]]]:
    """Per row id, the problems the engine finds in the request (unknown country, category, safeguard, ...)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        try:
            normalise(request_of(r), rs)
        except RequestError as e:
            out[r["id"]] = e.errors
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(FIELDS)
    for r in rows:
        w.writerow([";".join(r[k]) if k in LIST_FIELDS and k in r else r.get(k, "") for k in FIELDS])
    return buf.getvalue()
