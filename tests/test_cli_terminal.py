"""The `dfft` command at a terminal: 80 columns, rule ids whole, the vocabulary, --version, exit codes in --help,
rules shown as text, `dfft keys list` creating nothing, and `dfft serve` naming the extra it needs. Real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dfft.rules import load_ruleset

from .conftest import MINI

DFFT = [sys.executable, "-m", "dfft.cli"]


def run(*args, rules=MINI, columns=80, env=None, pre=None):
    e = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", **(env or {})}
    cmd = [*DFFT, "--rules", str(rules), *args]
    if pre:  # run the CLI after some Python (e.g. hiding a module)
        cmd = [sys.executable, "-c", f"{pre}\nimport sys\nfrom dfft.cli import main\nmain(sys.argv[1:])", *cmd[3:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=e)


CHECKS = [
    ["--from", "JP", "--to", "VN", "--data", "personal,health", "--subjects", "50000", "--as-of", "2026-06-01"],
    ["--from", "VN", "--to", "SG", "--data", "core_data", "--as-of", "2026-06-01"],
    ["--from", "JP", "--via", "SG", "--to", "VN", "--data", "personal", "--as-of", "2026-06-01"],
]


@pytest.mark.parametrize("args, columns", [(a, 80) for a in CHECKS] + [(CHECKS[0], 120)])
def test_check_fits_the_terminal_and_keeps_rule_ids_whole(args, columns):
    text = run("check", *args, columns=columns)
    data = json.loads(run("check", *args, "--json").stdout)
    assert text.returncode in (0, 1, 2), text.stderr
    lines = text.stdout.splitlines()
    assert data["findings"], "the case should have findings"
    for f in data["findings"]:
        assert any(f["rule_id"] in line.split() for line in lines), f["rule_id"]  # whole, as one word
    for o in data["obligations"]:
        assert any(o["id"] in line.split() for line in lines), o["id"]
    words = set(json.dumps(data).replace('"', " ").split())
    for line in lines:
        # no line wider than the terminal, unless it is one word that does not fit (never cut)
        assert len(line) <= columns or len(line.split()) == 1, line
    # no word broken across lines: every wrapped line ends and starts with whole words of the decision's text
    for a in lines:
        for w in a.split():
            if w.endswith("-") and len(w) > 1:
                assert w in words or w.rstrip(",;.") in words, w


def test_exit_codes_are_in_help():
    for args in (["--help"], ["check", "--help"]):
        p = run(*args)
        flat = " ".join(p.stdout.split())
        assert p.returncode == 0 and "1 conditional" in flat and "5 internal error" in flat, p.stdout


def test_version():
    p = run("--version")
    assert p.returncode == 0 and p.stdout.startswith("dfft ") and "Python" in p.stdout


def test_vocab_lists_every_value_with_its_description():
    vocab = load_ruleset(MINI).vocabulary
    p = run("vocab")
    assert p.returncode == 0, p.stderr
    assert all(len(line) <= 80 or len(line.split()) == 1 for line in p.stdout.splitlines())
    words = p.stdout.split()
    for name in [*vocab.data_categories, *vocab.safeguards, *vocab.purposes, *vocab.sectors, *vocab.exporters]:
        assert name in words, name
    flat = " ".join(words)
    assert " ".join(vocab.safeguards["consent"].split()) in flat
    j = json.loads(run("vocab", "--json").stdout)
    assert {t["name"] for t in j["exporters"]} == set(vocab.exporters)


def test_rules_show_a_rule_as_text():
    rs = load_ruleset(MINI)
    rule = rs.rule("JP-consent")
    p = run("rules", "show", "JP-consent")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "JP-consent"
    flat = " ".join(p.stdout.split())
    assert rule.citation.article in flat and "when:" in p.stdout and "{" not in p.stdout.splitlines()[0]


def test_keys_list_creates_no_database(tmp_path):
    data = tmp_path / "data"
    p = run("keys", "list", "--data-dir", str(data))
    assert p.returncode == 0 and p.stdout == "" and "no service database" in p.stderr, p.stderr
    assert not data.exists()
    p = run("keys", "revoke", "0123456789ab", "--data-dir", str(data))
    assert p.returncode == 3 and not data.exists()
    created = run("keys", "create", "--scope", "check", "--data-dir", str(data))
    assert created.returncode == 0, created.stderr
    listed = [json.loads(line) for line in run("keys", "list", "--data-dir", str(data)).stdout.splitlines()]
    assert [k["scope"] for k in listed] == ["check"]


HIDE_SERVER = "import sys\nfor m in ('fastapi', 'uvicorn'): sys.modules[m] = None"


@pytest.mark.parametrize("args", [["serve"], ["keys", "list"]])
def test_server_commands_name_the_extra_they_need(args):
    p = run(*args, pre=HIDE_SERVER)
    assert p.returncode == 3, p.stdout + p.stderr
    assert "pip install 'dfft[server]'" in p.stderr and "fastapi" in p.stderr and "Traceback" not in p.stderr
