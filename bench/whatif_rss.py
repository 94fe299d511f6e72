"""RSS of the service while a check-scope caller sends distinct what-if scenarios (issue 10, item 2).

    python -m bench.whatif_rss [--scenarios 200] [--every 25]

Runs the real app in process (FastAPI test client, embedded corpus, SQLite audit log in a temporary directory) and
posts POST /v1/whatif/diff with N distinct scenarios, each disabling a different set of rules (so each compiles its
own durable-rules rulesets). Prints the resident set size every `--every` scenarios. The per-key scenario limit is
switched off (DFFT_WHATIF_SCENARIOS_PER_MINUTE=0) to measure the engine pool alone."""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", type=int, default=200)
    ap.add_argument("--every", type=int, default=25)
    args = ap.parse_args()
    os.environ["DFFT_WHATIF_SCENARIOS_PER_MINUTE"] = "0"
    from fastapi.testclient import TestClient

    from dfft.api.app import create_app
    from dfft.api.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="dfft-rss-"))
    app = create_app(Settings(data_dir=tmp))
    key, _ = app.state.keys.create("check", "bench")
    rs = app.state.rules.engine.ruleset
    leaves = sorted(r.id for r in rs.all_rules() if not r.derive)
    combos = itertools.chain.from_iterable(itertools.combinations(leaves, k) for k in (1, 2))
    reqs = [
        {"origin": "VN", "destination": "JP", "data_categories": ["personal"], "subjects": 1000},
        {"origin": "JP", "destination": "SG", "data_categories": ["personal", "health"]},
    ]
    with TestClient(app, headers={"X-API-Key": key}) as c:
        c.post("/v1/whatif/diff", json={"scenario": {"name": "warm-up"}, "requests": reqs})
        print(f"{'scenarios':>9} {'RSS MiB':>8} {'s':>6}")
        print(f"{0:>9} {rss_mib():>8.0f} {0:>6.1f}")
        t0 = time.perf_counter()
        for i, combo in zip(range(args.scenarios), combos, strict=False):
            r = c.post(
                "/v1/whatif/diff",
                json={"scenario": {"name": f"s{i}", "law": {"disable_rules": list(combo)}}, "requests": reqs},
            )
            if r.status_code != 200:
                raise SystemExit(f"scenario {i}: {r.status_code} {r.text[:300]}")
            if (i + 1) % args.every == 0:
                print(f"{i + 1:>9} {rss_mib():>8.0f} {time.perf_counter() - t0:>6.1f}")


if __name__ == "__main__":
    main()
