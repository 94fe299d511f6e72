"""Load benchmark of the HTTP API with the audit log on (not part of the tests).

Starts a real `dfft serve` on a loopback port (fresh data directory, SQLite audit log, WAL + synchronous=FULL),
creates a key, then drives, for a bounded time each:
  - POST /v1/check with C concurrent keep-alive clients (threads) — requests per second, p50/p99 latency;
  - POST /v1/check/batch with batches of B requests — requests judged per second, p50/p99 per batch.
Requests cycle through N distinct transfers (varied subjects and safeguards) so the engine's memo sees a realistic
mix; every decision is committed to the audit log before its response.

    .venv/bin/python bench/bench_api.py [--rules tests/fixtures/mini] [--seconds 10] [--clients 8] [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, seconds: float) -> None:
    """Wait until the `dfft serve` process answers /readyz, or exit when it died or did not start in time."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("server did not start")
        time.sleep(0.1)


def stop_server(proc: subprocess.Popen, tmp: Path) -> None:
    """Stop the `dfft serve` process (killed if it does not exit within 15 s) and remove its data directory."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(tmp, ignore_errors=True)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def requests(n: int) -> list[dict]:
    sg = [[], ["consent"], ["tia_filed"], ["consent", "tia_filed"]]
    routes = [("JP", "VN"), ("JP", "SG"), ("SG", "JP"), ("VN", "SG"), ("SG", "VN")]
    return [
        {
            "origin": routes[i % 5][0],
            "destination": routes[i % 5][1],
            "data_categories": ["personal"],
            "subjects": (i * 7919) % 2_000_000,
            "safeguards": sg[i % 4],
        }
        for i in range(n)
    ]


def drive(seconds: float, clients: int, fn) -> tuple[int, list[float], float]:
    lat: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    errors = [0]

    def worker(w: int) -> None:
        mine, i = [], w
        with httpx.Client(base_url=URL, headers=HEADERS, timeout=60) as c:
            while time.monotonic() < stop:
                t = time.perf_counter()
                if not fn(c, i):
                    errors[0] += 1
                mine.append(time.perf_counter() - t)
                i += clients
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors[0]:
        print(f"  !! {errors[0]} non-200 responses", file=sys.stderr)
    return len(lat), lat, time.perf_counter() - t0


def main() -> None:
    global URL, HEADERS
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", default=str(ROOT / "tests" / "fixtures" / "mini"))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--distinct", type=int, default=5000)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dfft-bench-"))
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "131072", "MALLOC_TOP_PAD_": "131072"}
    key = subprocess.run(
        [sys.executable, "-m", "dfft.cli", "keys", "create", "--scope", "check", "--data-dir", str(tmp)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    URL, HEADERS = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dfft.cli",
            "--rules",
            a.rules,
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    try:
        wait_ready(URL, proc, 60)
        reqs = requests(a.distinct)
        body = [json.dumps(r) for r in reqs]
        results = {}

        def one(c: httpx.Client, i: int) -> bool:
            return (
                c.post(
                    "/v1/check", content=body[i % len(body)], headers={"Content-Type": "application/json"}
                ).status_code
                == 200
            )

        for label, clients in (("check, 1 client", 1), (f"check, {a.clients} clients", a.clients)):
            n, lat, el = drive(a.seconds, clients, one)
            results[label] = dict(
                requests=n, rps=round(n / el), p50_ms=round(pct(lat, 50) * 1e3, 2), p99_ms=round(pct(lat, 99) * 1e3, 2)
            )
            print(label, results[label], flush=True)

        batches = [
            json.dumps({"requests": [reqs[(k * a.batch + j) % len(reqs)] for j in range(a.batch)]}) for k in range(8)
        ]

        def batch(c: httpx.Client, i: int) -> bool:
            return (
                c.post(
                    "/v1/check/batch", content=batches[i % len(batches)], headers={"Content-Type": "application/json"}
                ).status_code
                == 200
            )

        for clients in (1, 2):
            n, lat, el = drive(a.seconds, clients, batch)
            label = f"batch of {a.batch}, {clients} client(s)"
            results[label] = dict(
                batches=n,
                requests_per_s=round(n * a.batch / el),
                p50_ms=round(pct(lat, 50) * 1e3, 1),
                p99_ms=round(pct(lat, 99) * 1e3, 1),
            )
            print(label, results[label], flush=True)
        db = tmp / "dfft.db"
        import sqlite3

        con = sqlite3.connect(db)
        results["audit rows"] = con.execute("SELECT count(*) FROM decisions").fetchone()[0]
        con.close()
        print(json.dumps(results, indent=2))
    finally:
        stop_server(proc, tmp)


URL, HEADERS = "", dict[str, str]()

if __name__ == "__main__":
    main()
