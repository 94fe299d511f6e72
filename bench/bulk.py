"""python -m bench.bulk [--rows 1000000] [--workers 1,2] [--shapes 2000] [--no-inprocess] [--json FILE]

`dfft bulk` on a synthetic inventory (bench/bulk_inventory.py: `--rows` flows drawn from `--shapes` distinct shapes,
Zipf-skewed, 1 in 1,000 invalid): in-process (`--backend local`, the floor and peer), then Ray with each worker count
in `--workers`. Each configuration runs in its own process (peak memory does not leak between rows); Ray is started
fresh for each (its start-up is reported apart, not counted in the throughput). Prints a markdown table for
docs/scale.md: rows/s, dfft/ideal (throughput over N x the 1-worker Ray throughput), peak memory of the driver and of
the workers (summed; Ray's own daemons not included), and the dedup ratio (rows per normalised shape judged).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 6, 1)


def one(mode: str, workers: int, src: Path) -> dict[str, Any]:
    """Run one configuration in this process; returns its measurements."""
    from dfft.plugins.bulk import JsonlWriter, make_backend, read_rows, run
    from dfft.rules import load_ruleset

    rs = load_ruleset()
    t0 = time.perf_counter()
    backend = make_backend(mode, None, rs.hash, TODAY, False, workers, None, 256 * 1024 * 1024)
    startup = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out.jsonl"
        w = JsonlWriter(out.open("w", encoding="utf-8"), owns=True)
        _, rows = read_rows(src)
        s = run(rows, w.write, backend)
        w.close()
        out_bytes = out.stat().st_size
    workers_rss = 0
    if mode == "ray":  # each worker's own peak (the driver's is measured below)
        workers_rss = sum(x["peak_rss"] for x in backend.ray.get([a.stats.remote() for a in backend.actors]))
    backend.close()
    return {
        "mode": mode,
        "workers": workers,
        "rows": s.rows,
        "errors": s.errors,
        "raw_shapes": s.raw_shapes,
        "shapes": s.shapes,
        "dedup_ratio": s.dedup_ratio,
        "seconds": s.seconds,
        "rows_per_s": s.rows / s.seconds,
        "startup_s": startup,
        "driver_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "workers_peak_rss": workers_rss,
        "output_bytes": out_bytes,
        "verdicts": dict(s.verdicts),
    }


def _mib(b: float) -> str:
    return f"{b / 2**20:,.0f}"


def table(results: list[dict[str, Any]], cpus: int) -> str:
    base = next((r["rows_per_s"] for r in results if r["mode"] == "ray" and r["workers"] == 1), None)
    local = next((r["rows_per_s"] for r in results if r["mode"] == "local"), None)
    lines = [
        "| backend | workers | rows | rows/s | dfft/ideal | vs in-process | judging s | Ray start s "
        "| driver peak MiB | workers peak MiB | dedup (rows / shape) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        ideal = f"{r['rows_per_s'] / (r['workers'] * base):.2f}" if base and r["mode"] == "ray" else "-"
        vs = f"{r['rows_per_s'] / local:.2f}" if local else "-"
        lines.append(
            f"| {'in-process' if r['mode'] == 'local' else 'ray'} | {r['workers']} | {r['rows']:,} "
            f"| {r['rows_per_s']:,.0f} | {ideal} | {vs} | {r['seconds']:.1f} "
            f"| {r['startup_s']:.1f} | {_mib(r['driver_peak_rss'])} "
            f"| {_mib(r['workers_peak_rss']) if r['mode'] == 'ray' else '-'} | {r['dedup_ratio']:.0f} |"
        )
    lines.append(f"\n{platform.processor() or platform.machine()}, {cpus} CPU(s), Python {platform.python_version()}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--shapes", type=int, default=2000)
    ap.add_argument("--workers", default="1,2", help="Ray worker counts, comma-separated (e.g. 1,2,4,8,16)")
    ap.add_argument("--no-inprocess", action="store_true", help="skip the in-process row")
    ap.add_argument("--input", type=Path, help="an existing inventory instead of the synthetic one")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--one", nargs=3, metavar=("MODE", "WORKERS", "INPUT"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(one(a.one[0], int(a.one[1]), Path(a.one[2]))))
        return
    from .bulk_inventory import write_jsonl

    with tempfile.TemporaryDirectory() as d:
        src = a.input
        if src is None:
            t = time.perf_counter()
            src = write_jsonl(Path(d) / "inventory.jsonl", a.rows, shapes=a.shapes)
            print(
                f"generated {a.rows:,} flows ({a.shapes:,} shapes) in {time.perf_counter() - t:.1f} s", file=sys.stderr
            )
        configs = ([] if a.no_inprocess else [("local", 1)]) + [("ray", int(w)) for w in a.workers.split(",") if w]
        results = []
        for mode, w in configs:
            p = subprocess.run(
                [sys.executable, "-m", "bench.bulk", "--one", mode, str(w), str(src)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=3600,
                env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
            )
            if p.returncode != 0:
                print(p.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{mode} with {w} worker(s) failed")
            r = json.loads(p.stdout.strip().splitlines()[-1])
            results.append(r)
            print(f"{mode} x{w}: {r['rows_per_s']:,.0f} rows/s", file=sys.stderr)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results, os.cpu_count() or 1))


if __name__ == "__main__":
    main()
