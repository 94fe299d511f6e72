"""The compile probe's known-good definitions persist across processes (cold start), and only in a private file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import MINI

ROOT = Path(__file__).resolve().parents[1]
CODE = (
    "import sys\nfrom dfft.engine import Engine, probe\nfrom dfft.rules import load_ruleset\n"
    "Engine(load_ruleset(sys.argv[1]), cache_size=0)\nprint(probe.stats['probes'])\n"
)


def probes_in_a_new_process(cache: Path) -> int:
    env = {**os.environ, "DFFT_CACHE_DIR": str(cache)}
    p = subprocess.run(
        [sys.executable, "-c", CODE, str(MINI)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert p.returncode == 0, p.stderr
    return int(p.stdout.strip().splitlines()[-1])


def test_a_second_process_does_not_probe_again(tmp_path):
    cache = tmp_path / "cache"
    assert probes_in_a_new_process(cache) == 1
    assert probes_in_a_new_process(cache) == 0
    (known,) = cache.glob("probe-known-*.txt")
    os.chmod(known, 0o666)  # writable by others: not trusted
    assert probes_in_a_new_process(cache) == 1


def test_no_persistence_with_the_cache_off():
    env = {**os.environ, "DFFT_CACHE_DIR": "off"}
    for _ in range(2):
        p = subprocess.run(
            [sys.executable, "-c", CODE, str(MINI)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
        )
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip().splitlines()[-1] == "1"  # probed in each process


def test_a_known_definition_is_not_budget_checked_again(mini_rs, monkeypatch):
    """check_budget runs on a definition until it has passed its trial; after that (same compiler source) the trial's
    memory stands for it, and an engine over the same rules is compiled without it."""
    from dfft.engine import Engine, compile as comp, probe

    calls: list[str] = []
    real = comp.check_budget

    def counted(code, units):
        calls.append(code)
        return real(code, units)

    monkeypatch.setattr(comp, "check_budget", counted)
    probe.forget()
    Engine(mini_rs, cache_size=0).close()
    first = sorted(calls)
    assert first and first == sorted(set(first))  # every jurisdiction with rules, once
    calls.clear()
    Engine(mini_rs, cache_size=0).close()
    assert calls == []
    probe.forget()
    Engine(mini_rs, cache_size=0).close()
    assert sorted(calls) == first
    assert not probe.known('{"u0": {"all": [{"m": {"$gte": {"lvl": 0}}}]}}')
