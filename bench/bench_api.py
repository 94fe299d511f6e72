"""Load benchmark of the HTTP API against its floor, side by side in one run (not part of the tests).

    .venv/bin/python bench/bench_api.py [--seconds 5] [--connections 8,32] [--workers 1,2] [--rounds 3] [--rules DIR]

Starts, on loopback ports, `dfft serve --workers W` (a fresh data directory: SQLite audit log, WAL, synchronous=FULL
unless --sqlite-synchronous says otherwise; every decision is committed before its response) and the floor: a bare
FastAPI app whose POST /v1/check returns a constant JSON object, served by the same code (`dfft.cli.service.serve_app`:
same uvicorn settings, event loop, HTTP parser, worker processes and GC policy), one of each per worker count, all at
once. Then, --rounds times, for each number of connections, drives each server in turn for --seconds with wrk (the C
load generator, Debian package `wrk`; one thread, keep-alive connections), so that every variant sees the same
machine (it may be shared): ratios are taken within a round and reported as median [min-max] over the rounds.
Tables:

  - repeated: 64 distinct request bodies, cycled (the service's memo answers; every one is still audited);
  - never-seen: every body distinct (bench/workload.py: realistic requests over the bundle's jurisdictions, judged as
    of today), so the service's memos miss; the engine's per-fact memo may still hit, as it would in service;
  - the floor: the same load on the bare app (its figure is the same for both kinds);
  - ratio: dfft / floor (requests per second); p50 / p99 latency as wrk reports them; p99/p50;
  - 2 workers / 1 worker, for dfft and for the floor.

No decision is acknowledged without its audit row: the bench counts the audit rows at the end and compares them with
the 200 responses wrk saw (wrk does not report per-status counts, so it is "rows >= responses - non-2xx").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LUA = r"""
local bodies, n, i = {}, 0, 0
local headers = {}
function init(args)
  local file, first, count = args[1], tonumber(args[2]), tonumber(args[3])
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. args[4]
  local k = 0
  for line in io.lines(file) do
    if k >= first and k < first + count then n = n + 1; bodies[n] = line end
    k = k + 1
  end
end
function request()
  i = i + 1
  return wrk.format("POST", "/v1/check", headers, bodies[((i - 1) % n) + 1])
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, seconds: float = 90, path: str = "/readyz") -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"server {url} did not start")
        time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def stop_server(proc: subprocess.Popen, tmp: Path) -> None:
    """Stop a `dfft serve` process (bench/soak.py) and remove its data directory."""
    stop(proc)
    shutil.rmtree(tmp, ignore_errors=True)


# -- the floor: a bare FastAPI app, served by the same serving code ---------------------------------------------------
def floor_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/check")
    async def check() -> dict[str, str]:
        return {"verdict": "allowed", "decision_id": "0"}

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def serve_floor(port: int, workers: int) -> None:
    from dfft.cli.service import serve_app

    serve_app(floor_app, (), {"host": "127.0.0.1", "port": port, "log_level": "warning"}, workers)


# -- load -------------------------------------------------------------------------------------------------------------
def ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def wrk(url: str, script: Path, bodies: Path, first: int, count: int, key: str, c: int, seconds: float) -> dict:
    cmd = ["wrk", "-t1", f"-c{c}", f"-d{seconds:g}s", "--latency", "--timeout", "10s", "-s", str(script), url]
    cmd += ["--", str(bodies), str(first), str(count), key]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, flags=re.M))
    return dict(
        rps=rps,
        requests=total,
        non2xx=int(bad.group(1)) if bad else 0,
        socket_errors=errors.group(1) if errors else "",
        p50=ms(lat.get("50", "")),
        p99=ms(lat.get("99", "")),
        wrapped=total > count,
    )


def fsync_ms(where: Path, n: int = 50) -> float:
    f = os.open(where / "fsync-probe", os.O_CREAT | os.O_WRONLY)
    try:
        t = time.perf_counter()
        for _ in range(n):
            os.write(f, b"x" * 4096)
            os.fsync(f)
        return (time.perf_counter() - t) / n * 1e3
    finally:
        os.close(f)
        os.unlink(where / "fsync-probe")


def median(xs: list[float]) -> float:
    ys = sorted(xs)
    n = len(ys)
    return ys[n // 2] if n % 2 else (ys[n // 2 - 1] + ys[n // 2]) / 2


def spread(xs: list[float], fmt: str = "{:.2f}") -> str:
    """median [min-max] of per-round values."""
    if len(xs) == 1:
        return fmt.format(xs[0])
    return f"{fmt.format(median(xs))} [{fmt.format(min(xs))}-{fmt.format(max(xs))}]"


def commit_delay(mode: str) -> dict[str, str]:
    """The environment of a --audit-writer variant: process@MS sets DFFT_AUDIT_COMMIT_DELAY_MS."""
    return {"DFFT_AUDIT_COMMIT_DELAY_MS": mode.split("@", 1)[1]} if "@" in mode else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", default=None, help="rule bundle directory (default: the embedded corpus)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", default="8,32")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each server, each load, in turn)")
    ap.add_argument("--sqlite-synchronous", default="FULL", choices=("FULL", "NORMAL"))
    ap.add_argument("--never-seen", type=int, default=8_000, help="distinct bodies per never-seen run")
    ap.add_argument(
        "--audit-writer",
        default="auto",
        help="DFFT_AUDIT_WRITER of this tree's servers: auto (the default: a writer process with several workers, "
        "a writer thread with one), process (one writer process for all workers), thread (each worker writes its "
        "own rows), or several, comma-separated (measured side by side); "
        "process@MS runs the writer with DFFT_AUDIT_COMMIT_DELAY_MS=MS",
    )
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument(
        "--baseline",
        default=None,
        metavar="PYTHON",
        help="also measure one `dfft serve` (one worker) run by this interpreter (e.g. the .venv of a worktree of "
        "main): the before of a before/after, interleaved with the others",
    )
    ap.add_argument("--floor-server", nargs=2, type=int, metavar=("PORT", "WORKERS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.floor_server:
        return serve_floor(*a.floor_server)
    if shutil.which("wrk") is None:
        raise SystemExit("bench_api needs wrk (Debian: apt-get install -y wrk)")
    conns = [int(c) for c in a.connections.split(",")]
    modes = [m.strip() for m in a.audit_writer.split(",") if m.strip()]
    if not modes or {m.split("@")[0] for m in modes} - {"auto", "process", "thread"}:
        raise SystemExit("--audit-writer: auto, process, thread (process@MS: with DFFT_AUDIT_COMMIT_DELAY_MS=MS)")
    worker_counts = [int(w) for w in a.workers.split(",")]

    sys.path.insert(0, str(ROOT))  # bench.workload, when run as bench/bench_api.py
    from bench.workload import requests
    from dfft.rules import load_ruleset

    rs = load_ruleset(a.rules) if a.rules else load_ruleset()
    tmp = Path(tempfile.mkdtemp(prefix="dfft-bench-api-"))
    # every server runs for the whole bench; the loads take turns on them, round by round, so that a change in the
    # machine's load (it is shared) hits every variant alike; ratios are taken within a round
    mine = ["this"] if len(modes) == 1 else [f"this-{m}" for m in modes]  # this tree's variants
    configs: list[tuple[str, str, int, dict[str, str]]] = [
        (v, sys.executable, w, {"DFFT_AUDIT_WRITER": m.split("@")[0]} | commit_delay(m))
        for v, m in zip(mine, modes, strict=True)
        for w in worker_counts
    ]
    if a.baseline:
        configs.insert(0, ("baseline", a.baseline, 1, {}))
    floor_workers = sorted({w for _, _, w, _ in configs})
    never_runs = a.rounds * len(conns) * len(configs)
    bodies = tmp / "bodies.jsonl"
    reqs = requests(rs, 64 + a.never_seen * never_runs, seed=14)
    with bodies.open("w") as f:
        for r in reqs:
            r.pop("as_of", None)  # judged as of today: /v1/check is the gate for a transfer about to happen
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    script = tmp / "check.lua"
    script.write_text(LUA)
    env = {**os.environ, "DFFT_SQLITE_SYNCHRONOUS": a.sqlite_synchronous}
    rules_arg = ["--rules", a.rules] if a.rules else []
    print(
        f"# bench_api: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, fsync {fsync_ms(tmp):.1f} ms, "
        f"SQLite synchronous={a.sqlite_synchronous}, {len(rs.jurisdictions)} jurisdictions, "
        f"{len(rs.all_rules())} rules, wrk -t1, {a.seconds:g} s per run, {a.rounds} interleaved rounds, audit "
        f"writer {a.audit_writer}",
        flush=True,
    )
    procs: list[subprocess.Popen] = []
    dfft: dict[tuple[str, int], tuple[str, str, Path]] = {}  # (version, workers) -> (url, key, data dir)
    floors: dict[int, str] = {}
    results: dict[tuple, list[dict]] = {}  # (server, connections, kind) -> one wrk result per round
    acknowledged = 0
    try:
        for n, (version, python, w, extra) in enumerate(configs):
            data = tmp / f"data-{n}"
            key = subprocess.run(
                [python, "-m", "dfft.cli", "keys", "create", "--scope", "check", "--data-dir", str(data)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
                cwd=tmp,  # not a checkout: `dfft` is the interpreter's own install (a baseline's or this one's)
            ).stdout.strip()
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [python, "-m", "dfft.cli", *rules_arg, "serve", "--port", str(port), "--data-dir", str(data)]
                    + ["--log-level", "warning", "--no-web"]
                    + (["--workers", str(w)] if version != "baseline" else []),
                    env={**env, **extra},
                    cwd=tmp,
                )
            )
            dfft[(version, w)] = (f"http://127.0.0.1:{port}", key, data)
            wait_ready(dfft[(version, w)][0], procs[-1])
        for w in floor_workers:
            fport = free_port()
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve()), "--floor-server", str(fport), str(w)], env=env
                )
            )
            floors[w] = f"http://127.0.0.1:{fport}"
            wait_ready(floors[w], procs[-1])
        time.sleep(1.0)  # every worker up (each answers /readyz on its own)
        any_key = next(iter(dfft.values()))[1]
        for url, key, _ in dfft.values():
            # warm-up: every worker compiles its per-fact memo a little, the repeated bodies are judged once
            wrk(url, script, bodies, 0, 64, key, 8, 2)
        first = 64
        for rnd in range(a.rounds):
            for c in conns:
                runs: list[tuple[Any, str, str, str, int]] = []
                for (version, w), (url, key, _) in dfft.items():
                    runs.append(((version, w), "repeated", url, key, 64))
                    runs.append(((version, w), "never-seen", url, key, a.never_seen))
                for w, furl in floors.items():
                    runs.append((("floor", w), "floor", furl, any_key, 64))
                shift = (rnd * 3 + conns.index(c)) % len(runs)  # each round starts elsewhere in the list
                for server, kind, url, key, count in runs[shift:] + runs[:shift]:
                    start = 0
                    if kind == "never-seen":
                        start, first = first, first + a.never_seen
                    r = wrk(url, script, bodies, start, count, key, c, a.seconds)
                    results.setdefault((server, c, kind), []).append(r)
                    if server[0] != "floor":
                        acknowledged += r["requests"] - r["non2xx"]
                    print(
                        f"  round {rnd + 1} {server[0]} {server[1]} worker(s) c={c:<3} {kind:<10} "
                        f"{r['rps']:>8,.0f} req/s  p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms"
                        + (f"  !! {r['non2xx']} non-2xx" if r["non2xx"] else "")
                        + (f"  !! socket errors {r['socket_errors']}" if r["socket_errors"] else "")
                        + ("  !! bodies wrapped" if kind == "never-seen" and r["wrapped"] else ""),
                        flush=True,
                    )
    finally:
        for proc in procs:
            stop(proc)
    audited = 0
    for _, _, data in dfft.values():
        con = sqlite3.connect(data / "dfft.db")
        audited += con.execute("SELECT count(*) FROM decisions").fetchone()[0]
        con.close()

    # -- the tables: medians over the rounds, [min-max] of the per-round values -------------------------------------
    def row(*cells: Any) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    def per_round(server: tuple, c: int, kind: str, field: str = "rps") -> list[float]:
        return [r[field] for r in results[(server, c, kind)]]

    def ratio(num: list[float], den: list[float]) -> list[float]:
        return [x / y for x, y in zip(num, den, strict=True) if y]

    print()
    print(row("dfft", "workers", "conns", "requests", "dfft req/s", "floor req/s", "dfft / floor", "p50 ms", "p99 ms",
              "p99 / p50", "floor p50 / p99 ms"))  # fmt: skip
    print(row(*["---"] * 11))
    for version, w in dfft:
        for c in conns:
            flo = per_round(("floor", w), c, "floor")
            for kind in ("repeated", "never-seen"):
                d = per_round((version, w), c, kind)
                p50, p99 = per_round((version, w), c, kind, "p50"), per_round((version, w), c, kind, "p99")
                print(
                    row(
                        version,
                        w,
                        c,
                        kind,
                        f"{median(d):,.0f}",
                        f"{median(flo):,.0f}",
                        f"**{spread(ratio(d, flo))}**",
                        f"{median(p50):.2f}",
                        f"{median(p99):.2f}",
                        spread(ratio(p99, p50), "{:.1f}"),
                        f"{median(per_round(('floor', w), c, 'floor', 'p50')):.2f} / "
                        f"{median(per_round(('floor', w), c, 'floor', 'p99')):.2f}",
                    )
                )
    if a.baseline and 1 in worker_counts:
        print()
        print(row("before / after", "this", "conns", "requests", "baseline / floor", "this / floor", "this / baseline"))
        print(row(*["---"] * 7))
        for v in mine:
            for c in conns:
                flo = per_round(("floor", 1), c, "floor")
                for kind in ("repeated", "never-seen"):
                    b, t = per_round(("baseline", 1), c, kind), per_round((v, 1), c, kind)
                    print(
                        row(
                            "1 worker",
                            v,
                            c,
                            kind,
                            spread(ratio(b, flo)),
                            spread(ratio(t, flo)),
                            f"**{spread(ratio(t, b))}x**",
                        )
                    )
    if len(worker_counts) > 1:
        # how far each variant scales with workers, and that as a share of how far the floor scaled in the same
        # rounds (on a machine whose load generator shares the cores, the floor's own scaling is the ceiling)
        print()
        print(row("scaling", "dfft", "conns", "requests", "dfft", "floor", "dfft scaling / floor scaling"))
        print(row(*["---"] * 7))
        base = worker_counts[0]
        for v in mine:
            for w in worker_counts[1:]:
                for c in conns:
                    flo = ratio(per_round(("floor", w), c, "floor"), per_round(("floor", base), c, "floor"))
                    for kind in ("repeated", "never-seen"):
                        d = ratio(per_round((v, w), c, kind), per_round((v, base), c, kind))
                        print(
                            row(
                                f"{w} / {base} workers",
                                v,
                                c,
                                kind,
                                f"**{spread(d)}x**",
                                f"{spread(flo)}x",
                                spread(ratio(d, flo)),
                            )
                        )
    print()
    print(f"audit rows {audited:,} for {acknowledged:,} acknowledged decisions (the warm-ups' included in the rows)")
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                [{"server": list(k[0]), "connections": k[1], "kind": k[2], "runs": v} for k, v in results.items()],
                indent=2,
            )  # fmt: skip
        )
    shutil.rmtree(tmp, ignore_errors=True)
    if audited < acknowledged:
        raise SystemExit("fewer audit rows than acknowledged decisions")


if __name__ == "__main__":
    main()
