"""Soak of one `dfft serve` process (not part of the tests): does its memory stay bounded under hostile load?

Starts a real server on a loopback port with the embedded corpus (fresh data directory, SQLite audit log), then, as
check-scope callers would:
  1. POST /v1/whatif/diff with N distinct scenarios (each moves one rule's start date by a different number of days,
     so every scenario is a new rule set that compiles its own durable-rules rulesets), spread over several keys;
  2. M distinct checks (every request differs in subjects, route, safeguards or data), through /v1/check/batch in
     batches and a share through /v1/check;
and samples the server's resident set size (VmRSS, and VmHWM, the peak) from /proc after start-up and after every
phase. It prints a table and exits non-zero when the final RSS exceeds --bound MiB (docs/security.md states the
bound). Nothing here is timed against a target: it measures memory.

    .venv/bin/python -m bench.soak [--scenarios 500] [--checks 100000] [--bound 400]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from .bench_api import free_port, stop_server, wait_ready

ROOT = Path(__file__).resolve().parent.parent


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MiB."""
    vals = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            vals[k] = int(v.split()[0]) / 1024
    return vals["VmRSS"], vals["VmHWM"]


ROUTES = [
    ("JP", "VN"),
    ("JP", "SG"),
    ("SG", "JP"),
    ("VN", "SG"),
    ("SG", "VN"),
    ("EU", "JP"),
    ("EU", "ID"),
    ("CN", "US"),
    ("US", "CN"),
    ("KR", "JP"),
    ("IN", "SG"),
    ("AU", "NZ"),
    ("GB", "US"),
    ("TH", "MY"),
    ("MY", "TH"),
    ("ID", "SG"),
    ("PH", "JP"),
    ("RU", "DE"),
]
DATA = [["personal"], ["personal", "health"], ["sensitive_personal"], ["personal", "financial"], ["biometric"]]
SAFEGUARDS = [[], ["consent"], ["tia_filed"], ["consent", "tia_filed"], ["eu_scc"], ["asean_mcc"]]


def check_request(i: int) -> dict[str, Any]:
    o, d = ROUTES[i % len(ROUTES)]
    return {
        "origin": o,
        "destination": d,
        "data_categories": DATA[(i // 7) % len(DATA)],
        "subjects": 1 + (i * 7919) % 5_000_000,
        "safeguards": SAFEGUARDS[(i // 3) % len(SAFEGUARDS)],
    }


def scenario(i: int, rule_id: str) -> dict[str, Any]:
    # a distinct rule set each time (so a new compiled engine): the rule starts on a different day
    start = (date(2027, 1, 1) + timedelta(days=i)).isoformat()
    return {
        "name": f"soak {i}",
        "law": {"rule_dates": [{"rule": rule_id, "effective_from": start}]},
        "facts": [{"subjects": 1000 + i}],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", type=int, default=500)
    ap.add_argument("--checks", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--single", type=int, default=2000, help="how many of the checks go through /v1/check")
    ap.add_argument("--keys", type=int, default=10, help="check-scope keys the scenarios are spread over")
    ap.add_argument("--bound", type=float, default=400.0, help="MiB: fail when the final RSS is above it")
    ap.add_argument("--rules", default=None, help="bundle directory (default: the embedded corpus)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dfft-soak-"))
    env = {**os.environ}
    base = [sys.executable, "-m", "dfft.cli"] + (["--rules", a.rules] if a.rules else [])
    keys = [
        subprocess.run(
            base + ["keys", "create", "--scope", "check", "--data-dir", str(tmp), "--name", f"soak{k}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.strip()
        for k in range(a.keys)
    ]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        base + ["serve", "--port", str(port), "--data-dir", str(tmp), "--log-level", "warning"], env=env
    )
    rows: list[tuple[str, float, float, str]] = []
    try:
        wait_ready(url, proc, 120)
        rows.append(("after start-up", *rss_mib(proc.pid), ""))
        clients = [httpx.Client(base_url=url, headers={"Authorization": f"Bearer {k}"}, timeout=120) for k in keys]
        rules = clients[0].get("/v1/jurisdictions/VN/rules").json()["rules"]
        rule_id = rules[0]["id"]

        # 1. distinct what-if scenarios
        t0 = time.perf_counter()
        status: dict[int, int] = {}
        for i in range(a.scenarios):
            body = {"scenario": scenario(i, rule_id), "requests": [check_request(i)]}
            c = clients[i % len(clients)]
            while True:
                r = c.post("/v1/whatif/diff", json=body)
                if r.status_code != 429:
                    break
                time.sleep(min(float(r.headers.get("Retry-After", "1")), 5.0))  # rate limited: wait as told
                status[429] = status.get(429, 0) + 1
            status[r.status_code] = status.get(r.status_code, 0) + 1
        rows.append(
            (
                f"after {a.scenarios} distinct scenarios",
                *rss_mib(proc.pid),
                f"{time.perf_counter() - t0:.0f} s, statuses {dict(sorted(status.items()))}",
            )
        )

        # 2. distinct checks
        t0 = time.perf_counter()
        status = {}
        c = clients[0]
        n_batch = a.checks - a.single
        for start in range(0, n_batch, a.batch):
            reqs = [check_request(j) for j in range(start, min(n_batch, start + a.batch))]
            r = c.post(
                "/v1/check/batch", content=json.dumps({"requests": reqs}), headers={"Content-Type": "application/json"}
            )
            status[r.status_code] = status.get(r.status_code, 0) + 1
        for j in range(n_batch, a.checks):
            r = c.post("/v1/check", json=check_request(j))
            status[r.status_code] = status.get(r.status_code, 0) + 1
        rows.append(
            (
                f"after {a.checks:,} distinct checks",
                *rss_mib(proc.pid),
                f"{time.perf_counter() - t0:.0f} s, statuses {dict(sorted(status.items()))}",
            )
        )
        for cl in clients:
            cl.close()
    finally:
        stop_server(proc, tmp)
    print("| phase | RSS MiB | peak (VmHWM) MiB | notes |\n| --- | --- | --- | --- |")
    for name, rss, hwm, note in rows:
        print(f"| {name} | {rss:.0f} | {hwm:.0f} | {note} |")
    final = rows[-1][1]
    print(f"final RSS {final:.0f} MiB against the bound of {a.bound:.0f} MiB: {'ok' if final <= a.bound else 'OVER'}")
    sys.exit(0 if final <= a.bound else 1)


if __name__ == "__main__":
    main()
