"""The `dfft` command as a user runs it: a real process, documented exit codes, JSON that matches the engine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dfft.engine import Engine
from dfft.rules import load_ruleset

from .conftest import MINI

DFFT = [sys.executable, "-m", "dfft.cli"]


def run(*args, rules=MINI):
    return subprocess.run([*DFFT, "--rules", str(rules), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args, code",
    [
        (["--from", "JP", "--to", "VN", "--data", "personal", "--safeguard", "consent", "--as-of", "2025-01-01"], 0),
        (["--from", "JP", "--to", "VN", "--data", "personal", "--as-of", "2026-06-01"], 1),
        (["--from", "VN", "--to", "SG", "--data", "core_data", "--as-of", "2026-06-01"], 2),
        (["--from", "XX", "--to", "VN", "--data", "personal"], 3),
        (["--from", "JP", "--to", "VN", "--data", "personnel"], 3),
        (["--from", "JP", "--to", "VN", "--data", "personal", "--as-of", "soon"], 3),
        (["--from", "JP", "--data", "personal"], 3),
    ],
)
def test_exit_codes(args, code):
    p = run("check", *args)
    assert p.returncode == code, p.stdout + p.stderr
    if code == 3:
        assert p.stderr.strip()


def test_text_output_cites_and_lists_obligations():
    p = run(
        "check",
        "--from",
        "JP",
        "--via",
        "SG",
        "--to",
        "VN",
        "--data",
        "personal,health",
        "--subjects",
        "50000",
        "--as-of",
        "2026-06-01",
    )
    assert "CONDITIONAL" in p.stdout and "L1 Art. 3" in p.stdout
    assert ["JP-ob-consent", "gating"] in [line.split() for line in p.stdout.splitlines()]  # the obligation, its kind


def test_json_is_the_engine_decision():
    p = run(
        "check",
        "--from",
        "JP",
        "--to",
        "VN",
        "--data",
        "personal",
        "--subjects",
        "1000",
        "--as-of",
        "2026-06-01",
        "--json",
    )
    assert p.returncode == 1
    d = Engine(load_ruleset(MINI)).check(
        dict(origin="JP", destination="VN", data_categories=["personal"], subjects=1000, as_of="2026-06-01")
    )
    assert json.loads(p.stdout) == json.loads(d.model_dump_json())


def test_lint_ok_and_bad_rules_exit_4(tmp_path):
    p = run("lint")
    assert p.returncode == 0 and "3 jurisdictions" in p.stdout
    bad = tmp_path / "b"
    shutil.copytree(MINI, bad)
    (bad / "SG" / "data_protection.yaml").write_text(
        "jurisdiction: SG\ndomain: data_protection\nrules:\n  - id: SG-x\n"
    )
    p = run("lint", rules=bad)
    assert p.returncode == 4 and "SG-x" in p.stderr and "title" in p.stderr


def test_rules_list_and_show():
    p = run("rules", "list", "--json")
    assert {r["code"] for r in json.loads(p.stdout)} == {"JP", "SG", "VN"}
    p = run("rules", "show", "JP-consent", "--json")
    assert json.loads(p.stdout)["citation"]["article"] == "Art. 3"
    assert run("rules", "show", "JP").returncode == 0
    assert run("rules", "show", "nope").returncode == 3


def test_rules_coverage():
    p = run("rules", "coverage", "--markdown")
    assert p.returncode == 0 and "| JP | Japan (fixture) | 4 (3/1/0)" in p.stdout


def test_docs_coverage_is_current():
    """docs/coverage.md is generated from the embedded corpus; regenerate it with
    `dfft rules coverage --markdown > docs/coverage.md` when the rules change."""
    from dfft.rules.coverage import markdown

    doc = Path(__file__).parent.parent / "docs" / "coverage.md"
    assert doc.read_text(encoding="utf-8") == markdown(load_ruleset()), "docs/coverage.md is stale"


V2_REQUEST = {
    "origin": "SG",
    "destination": "US",
    "via": [{"jurisdiction": "JP", "transit": True}],
    "data_categories": ["health"],
    "subjects": 5000,
    "counts": {"health": 2000},
    "nationality": ["VN"],
    "safeguards": [{"id": "tia_filed", "outcome": "done"}],
    "as_of": "2026-06-01",
}


def _decision_json(p):
    assert p.returncode in (0, 1, 2), p.stdout + p.stderr
    d = json.loads(p.stdout)
    return {k: v for k, v in d.items() if k != "engine"}


def test_check_request_from_file_stdin_and_yaml_agree_with_the_engine(tmp_path):
    """`dfft check --request FILE|-` takes the API's schema in JSON or YAML and judges exactly what the engine does."""
    f = tmp_path / "req.json"
    f.write_text(json.dumps(V2_REQUEST))
    y = tmp_path / "req.yaml"
    y.write_text(
        "\n".join(f"{k}: {json.dumps(v)}" for k, v in V2_REQUEST.items()).replace('"2026-06-01"', "2026-06-01")
    )
    from_file = run("check", "--request", str(f), "--json")
    from_yaml = run("check", "--request", str(y), "--json")
    from_stdin = subprocess.run(
        [*DFFT, "--rules", str(MINI), "check", "--request", "-", "--json"],
        input=json.dumps(V2_REQUEST),
        capture_output=True,
        text=True,
        timeout=120,
    )
    want = json.loads(Engine(load_ruleset(MINI)).check(V2_REQUEST).model_dump_json())
    want.pop("engine")
    assert _decision_json(from_file) == _decision_json(from_yaml) == _decision_json(from_stdin) == want
    assert [(r["jurisdiction"], r["basis"]) for r in want["regimes"]] == [("SG", "origin"), ("VN", "reach")]


def test_check_v2_options_build_the_same_request_as_the_api_schema():
    p = run(
        "check", "--from", "SG", "--to", "US", "--transit", "JP", "--data", "health", "--subjects", "5000",
        "--count", "health=2000", "--nationality", "VN", "--safeguard", "tia_filed=done", "--as-of", "2026-06-01",
        "--json",
    )  # fmt: skip
    want = json.loads(Engine(load_ruleset(MINI)).check(V2_REQUEST).model_dump_json())
    want.pop("engine")
    assert _decision_json(p) == want
    text = run("check", "--from", "JP", "--to", "US", "--data", "personal", "--access", "none", "--as-of", "2026-06-01")
    assert text.returncode == 0 and "not a transfer under JP" in text.stdout and "JP-no-access" in text.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--request", "missing.json"], "cannot read"),
        (["--to", "VN", "--data", "personal"], "--from"),
        (["--from", "JP", "--to", "VN", "--data", "personal", "--count", "personal"], "CATEGORY=N"),
        (["--from", "JP", "--to", "VN", "--data", "personal", "--access", "some"], "access"),
    ],
)
def test_check_v2_bad_input_names_the_option(args, message):
    p = run("check", *args)
    assert p.returncode == 3, p.stdout + p.stderr
    assert message in p.stderr, p.stderr
