"""Memory of 100k distinct checks through the engine, in process (issue 14: "100k distinct checks stay under 300 MB").

    python -m bench.memory [--checks 100000] [--every 10000] [--bound 300]

Builds the default engine on the embedded corpus (its memos at their defaults: DFFT_MEMO_BYTES, 64 MiB) and judges
N distinct requests (bench/soak.py's generator: every request differs in subjects, route, safeguards or data),
printing the resident set size (VmRSS) and the peak (VmHWM) every `--every` checks, beside the floor: the same
process after importing dfft and loading the bundle, before the engine. Exits non-zero when the final RSS is above
--bound MiB. The API side is bench/soak.py (--scenarios 0 --checks 100000 --bound 300).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

from .soak import check_request


def rss() -> tuple[float, float]:
    vals = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                vals[k] = int(v.split()[0]) / 1024
    return vals["VmRSS"], vals["VmHWM"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.memory")
    ap.add_argument("--checks", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=10_000)
    ap.add_argument("--bound", type=float, default=300.0)
    a = ap.parse_args(argv)
    from dfft.engine import Engine
    from dfft.rules import load_ruleset

    rs = load_ruleset()
    floor = rss()
    eng = Engine(rs)
    print("| checks | RSS MiB | peak MiB | engine memo entries | s |\n| --- | --- | --- | --- | --- |")
    print(f"| floor (dfft imported, bundle loaded) | {floor[0]:.0f} | {floor[1]:.0f} | - | - |")
    r = rss()
    print(f"| 0 (engine compiled) | {r[0]:.0f} | {r[1]:.0f} | 0 | 0 |")
    t0 = time.perf_counter()
    for i in range(a.checks):
        eng.check(check_request(i))
        if (i + 1) % a.every == 0:
            r = rss()
            memo = len(getattr(eng, "_cache", ()))
            print(f"| {i + 1:,} | {r[0]:.0f} | {r[1]:.0f} | {memo:,} | {time.perf_counter() - t0:.0f} |", flush=True)
    gc.collect()
    final = rss()[0]
    print(
        f"final RSS {final:.0f} MiB ({final - floor[0]:+.0f} MiB over the floor of {floor[0]:.0f}) against the bound "
        f"of {a.bound:.0f} MiB: {'ok' if final <= a.bound else 'OVER'}"
    )
    return 0 if final <= a.bound else 1


if __name__ == "__main__":
    sys.exit(main())
