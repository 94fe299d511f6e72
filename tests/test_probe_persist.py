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
