"""`dfft check`'s fast front (dfft/cli/fast.py) against the typer command: the same keyword arguments, the same
output byte for byte and the same exit code for every command line, typer and click never imported on the fast
path, and every command line the front does not take handed to typer untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dfft.cli.fast as F
from dfft.cli import main

from .conftest import MINI

ROOT = Path(__file__).resolve().parents[1]
CHECK = ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--as-of", "2026-06-01"]

# command lines the front takes (after `--rules MINI`): it must answer them exactly as the typer command does
TAKEN = [
    CHECK,
    [*CHECK, "--json"],
    ["check", "--from=JP", "--to=VN", "--data=personal,health", "--subjects=50000", "--as-of=2026-06-01"],
    ["check", "--from", "JP", "--via", "SG", "--to", "VN", "--data", "personal", "--as-of", "2026-06-01"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--safeguard", "consent", "--as-of", "2025-01-01"],
    ["check", "--from", "VN", "--to", "SG", "--data", "core_data", "--as-of", "2026-06-01", "--json"],
    ["check", "--json", "--to", "VN", "--data", "personal", "--from", "JP", "--subjects", "0", "--engine", "reference"],
    # request model v2 options
    ["check", "--from", "SG", "--to", "US", "--transit", "JP", "--data", "health", "--subjects", "5000", "--count",
     "health=2000", "--nationality", "VN", "--safeguard", "tia_filed=done", "--as-of", "2026-06-01", "--json"],
    ["check", "--from", "JP", "--to", "US", "--data", "personal", "--access", "none", "--as-of", "2026-06-01"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--data", "health", "--purpose", "analytics",
     "--purpose", "marketing", "--role", "processor", "--size", "small", "--relation", "group_company",
     "--recipient-role", "processor", "--recipient-kind", "public_authority", "--established", "JP", "--established",
     "SG", "--subjects-in", "JP", "--collected-in", "JP", "--publicly-available", "--exporter", "public_body",
     "--sector", "finance", "--as-of", "2026-06-01"],
    ["check", "--from", "JP", "--to", "XX", "--data", "personal"],  # a RequestError: exit 3 from main's handler
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--json", "--json"],  # a flag twice
    ["check", "--from", "SG", "--to", "VN", "--data", "health", "--count=health=20", "--safeguard=tia_filed=done"],
    ["check", "--from", "JP", "--to", "VN", "--data=", "--data", "personal"],
]  # fmt: skip

# command lines the front hands to typer (refused values, usage errors, help, other commands, odd spellings)
HANDED_ON = [
    ["check", "--from", "JP", "--to", "VN", "--data", "personnel"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--as-of", "soon"],
    ["check", "--from", "JP", "--data", "personal"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--role", "boss"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--count", "personal"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--subjects", "-1"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--subjects", "many"],
    ["check", "--from", "JP", "--from", "SG", "--to", "VN", "--data", "personal"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--frm", "SG"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "extra"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--json=yes"],
    ["check", "--from", "--to", "VN", "--data", "personal"],
    ["check", "--from", "JP", "--to", "VN", "--data"],
    ["check", "--from=", "--to", "VN", "--data", "personal"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--subj", "5"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--json", "yes"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--", "--json"],
    ["check", "--from", "JP", "--to", "VN", "--data", "personal", "-j"],
    ["check", "--request", "missing.json"],
    ["check", "--help"],
    ["check"],
    ["vocab"],
    ["--version"],
]


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `dfft --rules MINI ...` in this process, through the front or (fast=False) through typer alone; returns
    (exit code, stdout, stderr, what the front's run() returned)."""
    from dfft.cli.options import state

    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("DFFT_RULES", raising=False)
    real = F.run
    answered: list = []

    def spy(argv):
        try:
            answered.append(real(argv))
        except Exception as e:  # taken, and failed as the typer command does (main maps it to an exit code)
            answered.append(e)
            raise
        return answered[-1]

    monkeypatch.setattr(F, "run", spy)

    seen_rules: list = []
    rules = ["--rules", str(MINI)]

    def run(args: list[str], fast: bool = True, rules: list[str] = rules) -> tuple[int, str, str, object]:
        monkeypatch.setenv("DFFT_FAST_CLI", "1" if fast else "0")
        monkeypatch.setattr(state, "_ruleset", None)
        monkeypatch.setattr(state, "rules_dir", None)
        answered.clear()
        with pytest.raises(SystemExit) as e:
            main([*rules, *args])
        got = capsys.readouterr()
        if not fast:
            assert answered == [None]  # the typer command answered alone
        seen_rules.append(state.rules_dir)
        return int(e.value.code or 0), got.out, got.err, answered[0] if answered else None

    run.seen_rules = seen_rules
    return run


@pytest.mark.parametrize("args", TAKEN, ids=[" ".join(a[1:6]) for a in TAKEN])
def test_the_front_answers_as_the_typer_command_does(cli, args):
    code, out, err, answered = cli(args)
    assert answered is not None, "the front should have taken this command line"
    assert (code, out, err) == cli(args, fast=False)[:3]
    assert code in (0, 1, 2, 3) and (out or err)


@pytest.mark.parametrize("args", HANDED_ON, ids=[" ".join(a[:6]) for a in HANDED_ON])
def test_what_the_front_does_not_take_typer_answers_unchanged(cli, args):
    code, out, err, answered = cli(args)
    assert answered is None, "the front must hand this command line on"
    assert (code, out, err) == cli(args, fast=False)[:3]


def test_the_front_passes_the_typer_commands_keyword_arguments(cli, monkeypatch):
    """The front's parse gives request_of exactly the keyword arguments the typer command gets from click."""
    seen: list[dict] = []
    real = F.request_of

    def spy(**kw):
        seen.append(kw)
        return real(**kw)

    monkeypatch.setattr(F, "request_of", spy)
    for args in TAKEN:
        cli(args)
        cli(args, fast=False)
        fast, slow = seen[-2:]
        assert fast == slow, args


def test_the_rule_folder_from_the_command_line_or_the_environment(cli, monkeypatch):
    """--rules DIR, --rules=DIR and DFFT_RULES set the same rule folder on both paths."""
    for rules in (["--rules", str(MINI)], [f"--rules={MINI}"], []):
        if not rules:
            monkeypatch.setenv("DFFT_RULES", str(MINI))
        fast = cli(CHECK, rules=rules)
        assert fast[3] is not None and fast[:3] == cli(CHECK, fast=False, rules=rules)[:3]
        assert cli.seen_rules[-2:] == [MINI, MINI]
    assert cli(["--rules", str(MINI), "--rules", str(MINI), *CHECK], rules=[])[3] is None


def test_the_fronts_options_are_the_typer_commands():
    """OPTIONS (the front's table) lists every option of `dfft check` with its parameter, kind and default."""
    import typer.main

    from dfft.cli import app

    group = typer.main.get_command(app)
    cmd = group.commands["check"]
    declared = {}
    for p in cmd.params:
        (opt,) = p.opts
        assert not p.secondary_opts, opt
        kind = "flag" if p.is_flag else "many" if p.multiple else "int" if _is_int(p) else "one"
        declared[opt] = (p.name, kind, p.default, p.envvar)
    assert declared == {o: (n, k, d, None) for o, (n, k, d, _) in F.OPTIONS.items()}
    callbacks = {p.name for p in cmd.params if p.callback is not None}
    assert callbacks == {n for n, _, _, cb in F.OPTIONS.values() if cb is not None}
    (subjects,) = [p for p in cmd.params if p.name == "subjects"]
    bounds = getattr(subjects, "type", subjects)  # click's IntRange, or typer's own option (typer >= 0.2x)
    assert (bounds.min, bounds.max) == (0, None)


def _is_int(p) -> bool:
    td = getattr(p, "type_descriptor", None)  # typer with its own parser
    return td.annotation is int if td is not None else p.type.name.startswith("integer")


def test_request_from_stdin_is_read_once_for_both_paths(tmp_path):
    """`--request -` read by the front, then refused (a bad --as-of): typer gets the same text and says why."""
    body = json.dumps({"origin": "JP", "destination": "VN", "data_categories": ["personal"]})
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    env.pop("DFFT_FAST_CLI", None)
    got = []
    for fast in ("1", "0"):
        for extra in ([], ["--as-of", "soon"]):
            p = subprocess.run(
                [sys.executable, "-m", "dfft.cli", "--rules", str(MINI), "check", "--request", "-", *extra],
                input=body,
                capture_output=True,
                text=True,
                timeout=120,
                env={**env, "DFFT_FAST_CLI": fast},
                cwd=ROOT,
            )
            got.append((p.returncode, p.stdout, p.stderr))
    assert got[0] == got[2] and got[1] == got[3]
    assert got[0][0] == 1 and "Verdict" in got[0][1]
    assert got[1][0] == 3 and "--as-of" in got[1][2]


def _run_child(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: print('MODULES', *sorted(m for m in ('typer', 'click', 'fastapi', 'sqlalchemy') "
        "if m in sys.modules), file=sys.stderr))\n"
        "from dfft.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
    )


def test_the_front_imports_neither_typer_nor_click_and_a_corrupt_cache_is_rebuilt(tmp_path):
    """A real `dfft check` on the embedded corpus: no typer, no click; output identical to typer's; a corrupted
    validated-bundle cache entry is refused (the output does not change) and written again."""
    cache = tmp_path / "cache"
    env = {**os.environ, "DFFT_CACHE_DIR": str(cache), "COLUMNS": "80", "NO_COLOR": "1"}
    env.pop("DFFT_RULES", None)
    args = ["check", "--from", "JP", "--to", "VN", "--data", "personal", "--as-of", "2026-06-01"]
    first = _run_child(args, {**env, "DFFT_FAST_CLI": "1"})
    assert first.returncode == 1 and "MODULES\n" in first.stderr, first.stderr
    (entry,) = cache.glob("rules-*.pickle")
    slow = _run_child(args, {**env, "DFFT_FAST_CLI": "0"})
    assert "typer" in slow.stderr  # the typer path: the comparison below compares two different paths
    assert (slow.returncode, slow.stdout) == (first.returncode, first.stdout)
    data = bytearray(entry.read_bytes())
    data[-10] ^= 0xFF
    entry.write_bytes(bytes(data))
    corrupt = entry.read_bytes()
    again = _run_child(args, {**env, "DFFT_FAST_CLI": "1"})
    assert (again.returncode, again.stdout, again.stderr) == (first.returncode, first.stdout, first.stderr)
    assert entry.read_bytes() != corrupt  # rebuilt
