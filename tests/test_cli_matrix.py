"""`dfft matrix` at a terminal (80 and 160 columns: destinations as rows, every line within the width, every
destination and origin shown whole, every letter the verdict the JSON gives), the Matrix's cell lookup, and the
closed sets of the CLI (choices checked when parsed, the valid values listed; placeholders, not type names, in
--help). Real processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from dfft.cli.text import abbreviations, matrix_lines
from dfft.rules import load_ruleset
from dfft.whatif.context import Engines
from dfft.whatif.matrix import matrix

from .conftest import MINI

ROOT = Path(__file__).resolve().parents[1]
LETTER = {"allowed": "A", "conditional": "C", "blocked": "B"}
PROFILE_LETTERS = ["p", "s", "l", "f", "t"]  # personal, sensitive, large_volume, financial, technology


def dfft(*args: str, columns: int = 80, rules: Path | None = MINI) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    pre = ["--rules", str(rules)] if rules else []
    return subprocess.run(
        [sys.executable, "-m", "dfft.cli", *pre, *args], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT
    )


def parse(text: str, abbrev: list[str]) -> dict[tuple[str, str, str], str]:
    """(origin, profile abbreviation, destination) -> the cell's text, read back from the printed matrix: each
    origin heads a group of columns, one per profile, under the profile's abbreviation."""
    lines = text.splitlines()
    cells: dict[tuple[str, str, str], str] = {}
    i = 0
    while i < len(lines):
        if not lines[i].startswith("from "):
            i += 1
            continue
        head, sub = lines[i], lines[i + 1]
        assert sub.startswith("to ")
        origins = [(m.group(), m.start()) for m in re.finditer(r"\S+", head)][1:]
        columns: list[tuple[str, str, int, int]] = []  # origin, abbreviation, start, end
        for n, (o, at) in enumerate(origins):
            end = origins[n + 1][1] if n + 1 < len(origins) else 10**6
            starts = []
            for a in abbrev:
                at = sub.index(a, at)
                starts.append(at)
                at += len(a)
            for k, a in enumerate(abbrev):
                columns.append((o, a, starts[k], starts[k + 1] if k + 1 < len(starts) else end))
        i += 2
        while i < len(lines) and lines[i].strip():
            row = lines[i]
            for o, a, start, end in columns:
                cells[(o, a, row.split()[0])] = row[start:end].strip()
            i += 1
    return cells


def check_matrix_text(text: str, data: dict, columns: int) -> None:
    lines = text.splitlines()
    for line in lines:
        assert len(line) <= columns, f"{len(line)} > {columns}: {line!r}"
    rows = [line.split()[0] for line in lines if line.split() and line.split()[0] in data["destinations"]]
    for d in data["destinations"]:
        assert d in rows, f"destination {d} is not a row"
    heads = " ".join(line for line in lines if line.startswith("from "))
    for o in data["origins"]:
        assert o in heads.split(), f"origin {o} is not in a header"
    for p in data["profiles"]:  # the legend names each profile whole
        assert p["name"] in text.split() or p["name"] in " ".join(text.split())
    short = abbreviations([p["name"] for p in data["profiles"]])
    printed = parse(text, short)
    abbrev = dict(zip(short, [p["name"] for p in data["profiles"]], strict=True))
    seen = 0
    for c in data["cells"]:
        key = (c["origin"], next(a for a, n in abbrev.items() if n == c["profile"]), c["destination"])
        want = LETTER[c["verdict"]]
        if c.get("scenario_verdict") and c["scenario_verdict"] != c["verdict"]:
            want += LETTER[c["scenario_verdict"]]
        assert printed[key] == want, (key, printed[key], want)
        seen += 1
    assert seen == len(data["cells"]) > 0
    for o in data["origins"]:  # an origin against itself: a dot, never a verdict
        if o in data["destinations"]:
            assert all(printed[(o, a, o)] == "." for a in abbrev)


EMBEDDED = ["matrix", "--to", "JP,SG,VN,US,CN", "--as-of", "2026-06-01"]


@pytest.fixture(scope="module")
def embedded_json() -> dict:
    p = dfft(*EMBEDDED, "--json", rules=None)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def scenario_args(tmp_path_factory) -> list[str]:
    sc = tmp_path_factory.mktemp("sc") / "sc.yaml"
    sc.write_text("name: MCCs everywhere\nfacts:\n  - add_safeguards: [asean_mcc]\n", encoding="utf-8")
    return ["matrix", "--scenario", str(sc), "--as-of", "2026-06-01"]


@pytest.fixture(scope="module")
def scenario_json(scenario_args) -> dict:
    p = dfft(*scenario_args, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("columns", [80, 160])
def test_matrix_fits_80_and_160_columns_with_destinations_as_rows(columns, embedded_json):
    """The embedded bundle's 27 origins against five destinations: several blocks of origins at 80 columns."""
    text = dfft(*EMBEDDED, columns=columns, rules=None)
    assert text.returncode == 0, text.stderr
    data = embedded_json
    assert len(data["origins"]) > 20
    check_matrix_text(text.stdout, data, columns)
    blocks = text.stdout.count("\nfrom ")
    assert blocks >= (3 if columns == 80 else 2)  # 27 origins do not fit one 80- or 160-column row


@pytest.mark.parametrize("columns", [80, 160])
def test_matrix_under_a_scenario_every_destination(columns, scenario_args, scenario_json):
    text = dfft(*scenario_args, columns=columns)
    assert text.returncode == 0, text.stderr
    data = scenario_json
    assert data["scenario"] == "MCCs everywhere"
    assert any(c["scenario_verdict"] != c["verdict"] for c in data["cells"]), "the scenario should change a cell"
    check_matrix_text(text.stdout, data, columns)
    assert "checks for" in text.stderr


def test_profile_abbreviations_are_unique_prefixes_with_a_legend():
    assert abbreviations(["personal", "sensitive", "large_volume"]) == ["p", "s", "l"]
    assert abbreviations(["personal", "personal_eu", "payment"]) == ["personal", "personal_", "payment"]
    assert abbreviations(["health", "hr"]) == ["he", "hr"]


def test_long_profile_names_still_fit_and_read_back(tmp_path):
    prof = tmp_path / "profiles.yaml"
    prof.write_text(
        "profiles:\n"
        "  customers_eu: {title: Customers, request: {data_categories: [personal], subjects: 100}}\n"
        "  customers_asia: {title: Customers in Asia, request: {data_categories: [personal], subjects: 2000000}}\n"
        "  health: {title: Patients, request: {data_categories: [health]}}\n",
        encoding="utf-8",
    )
    args = ["matrix", "--profiles", str(prof), "--as-of", "2026-06-01"]
    data = json.loads(dfft(*args, "--json").stdout)
    for columns in (80, 160):
        text = dfft(*args, columns=columns)
        assert text.returncode == 0, text.stderr
        check_matrix_text(text.stdout, data, columns)
        assert "customers_e customers_eu (Customers)" in " ".join(text.stdout.split())


def test_matrix_cell_lookup_is_the_cell():
    rs = load_ruleset(MINI)
    with Engines(rs) as e:
        m = matrix(e)
    for c in m.cells:
        assert m.cell(c.origin, c.profile, c.destination) is c
    assert m.cell("JP", "personal", "JP") is None and m.cell("JP", "nope", "SG") is None
    assert {ln for ln, _ in matrix_lines(m, 80)} and all(len(ln) <= 80 for ln, _ in matrix_lines(m, 80))


# -- closed sets (in-process: these stop before anything is judged) ----------------------------------------------
@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `dfft ...` in this process (on the mini bundle): (exit code, stdout, stderr)."""
    from dfft.cli import main
    from dfft.cli.options import state

    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(state, "_ruleset", None)
        with pytest.raises(SystemExit) as e:
            main(["--rules", str(MINI), *args])
        got = capsys.readouterr()
        return int(e.value.code or 0), got.out, got.err

    return run


CHECK = ["check", "--from", "JP", "--to", "VN", "--data", "personal"]
BAD = [
    (["--data", "personl"], "--data", "personl", "health"),
    (["--safeguard", "sccx"], "--safeguard", "sccx", "eu_scc"),
    (["--safeguard", "tia_filed=bad"], "--safeguard", "tia_filed=bad", "unfavourable"),
    (["--exporter", "privat"], "--exporter", "privat", "public_body"),
    (["--sector", "fin"], "--sector", "fin", "finance"),
    (["--purpose", "analytic"], "--purpose", "analytic", "analytics"),
    (["--role", "boss"], "--role", "boss", "data_subject"),
    (["--size", "huge"], "--size", "huge", "medium"),
    (["--relation", "friend"], "--relation", "friend", "group_company"),
    (["--recipient-role", "owner"], "--recipient-role", "owner", "processor"),
    (["--access", "some"], "--access", "some", "none"),
    (["--recipient-kind", "alien"], "--recipient-kind", "alien", "court"),
    (["--count", "healt=4"], "--count", "healt", "health"),
    (["--engine", "fast"], "--engine", "fast", "reference"),
]


@pytest.mark.parametrize("extra, option, value, valid", BAD, ids=[b[1] + "=" + b[2] for b in BAD])
def test_a_value_outside_a_closed_set_is_refused_listing_the_valid_ones(cli, extra, option, value, valid):
    code, out, err = cli(*CHECK, *extra)
    assert code == 3, out + err
    flat = " ".join(err.split())
    assert option in flat and repr(value) in flat and valid in flat and "Traceback" not in flat, flat


@pytest.mark.parametrize(
    "args, option",
    [
        (["timeline", "--from", "JP", "--to", "VN", "--data", "personl"], "--data"),
        (["remedy", "--from", "JP", "--to", "VN", "--data", "personal", "--sector", "fin"], "--sector"),
        (["matrix", "--engine", "fast"], "--engine"),
        (["matrix", "--workers", "2"], "--ray"),
        (["bulk", "examples/inventory.csv", "--format", "xlsx"], "--format"),
        (["bulk", "examples/inventory.csv", "--backend", "spark"], "--backend"),
        (["serve", "--log-level", "loud"], "--log-level"),
        (["web", "user", "add", "bob", "--role", "boss", "--password-stdin"], "--role"),
    ],
)
def test_the_other_commands_check_their_closed_sets_too(cli, args, option, tmp_path):
    code, _, err = cli(*args, *(["--data-dir", str(tmp_path / "data")] if args[0] in ("serve", "web") else []))
    assert code == 3 and option in err and ("expected one of" in err or option == "--ray"), err
    assert not (tmp_path / "data").exists()  # refused before anything is created


def test_the_cli_sets_are_the_engines_sets():
    from dfft.cli import options
    from dfft.engine.core import BackendName
    from dfft.plugins import bulk

    assert options.BULK_FORMATS == bulk.FORMATS
    assert set(options.ENGINES) == set(get_args(BackendName))
    pytest.importorskip("uvicorn", reason="the server extra is not installed")
    from uvicorn.config import LOG_LEVELS

    from dfft.web.accounts import ROLES

    assert set(options.LOG_LEVELS) == set(LOG_LEVELS) and options.WEB_ROLES == ROLES


def test_valid_values_and_mapped_labels_pass(cli):
    code, out, err = cli(
        *CHECK[:-1], "user.contact.email,health", "--safeguard", "eu_scc,tia_filed=favourable", "--role", "processor",
        "--exporter", "private", "--sector", "finance", "--purpose", "analytics", "--count", "health=10", "--json",
    )  # fmt: skip
    assert code in (0, 1, 2), err
    assert json.loads(out)["verdict"]


COMMANDS = [
    [],
    ["check"],
    ["vocab"],
    ["lint"],
    ["whatif"],
    ["matrix"],
    ["timeline"],
    ["remedy"],
    ["bulk"],
    ["rules", "show"],
    ["rules", "list"],
    ["serve"],
    ["keys", "create"],
    ["web", "user", "add"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=[" ".join(c) or "dfft" for c in COMMANDS])
def test_help_shows_placeholders_not_type_names(cli, cmd):
    code, out, err = cli(*cmd, "--help")
    assert code == 0 and "Usage" in out, err
    if cmd and cmd[0] in ("check", "whatif", "matrix", "timeline", "remedy"):
        assert "Exit codes: 0" in out and "3 invalid" in out
    names = re.findall(r"<(?:str|int|bool|float|path|list\[[a-z]+\]|[a-z]+ range)>", out)
    assert not names, f"type names in `dfft {' '.join(cmd)} --help`: {sorted(set(names))}"
