"""One measurement in its own process (called by `python -m bench`); prints one JSON line."""

from __future__ import annotations

import json
import random
import resource
import sys
import time

from dfft.engine import Engine
from dfft.rules import load_ruleset

from .workload import requests


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def corpus(spec: str, n: int) -> dict:
    t0 = time.perf_counter()
    if spec == "full":
        rs = load_ruleset()
    else:
        from .synth import synthetic_ruleset

        rs = synthetic_ruleset(19, int(spec.split(":")[1]))
    load_s = time.perf_counter() - t0
    if not rs.jurisdictions:
        return {"empty": True}
    out: dict = {
        "jurisdictions": len(rs.jurisdictions),
        "rules": sum(len(j.rules) for j in rs.jurisdictions.values()),
        "load_s": load_s,
    }
    t0 = time.perf_counter()
    eng = Engine(rs)
    out["compile_s"] = time.perf_counter() - t0
    unique = requests(rs, n + 200, seed=1)
    for r in unique[:200]:  # warm-up (imports, first states); not measured
        eng.check(r)
    # single cold checks: every request never seen before (a cache miss)
    wall, cpu = [], []
    pc, tt = time.perf_counter_ns, time.thread_time_ns
    findings = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for r in unique[200:]:
        a, b = pc(), tt()
        d = eng.check(r)
        cpu.append((tt() - b) / 1e3)
        wall.append((pc() - a) / 1e3)
        findings += len(d.findings)
    out.update(
        never_seen_per_s=n / (time.perf_counter() - w0),
        never_seen_cpu_per_s=n / (time.process_time() - c0),
        p50_us=_pct(wall, 50),
        p99_us=_pct(wall, 99),
        p50_cpu_us=_pct(cpu, 50),
        p99_cpu_us=_pct(cpu, 99),
        findings_per_decision=findings / n,
        misses=eng.misses,
    )
    # repeated request shapes: a pool of 256 requests, already judged once
    pool = unique[:256]
    stream = [pool[i % len(pool)] for i in range(20 * n)]
    c0, w0 = time.process_time(), time.perf_counter()
    for r in stream:
        eng.check(r)
    out.update(
        repeated_per_s=len(stream) / (time.perf_counter() - w0),
        repeated_cpu_per_s=len(stream) / (time.process_time() - c0),
    )
    # batch: check_many over requests drawn from 500 shapes, memo emptied first
    rnd = random.Random(2)
    shapes = requests(rs, 500, seed=3)
    batch = [rnd.choice(shapes) for _ in range(n)]
    eng.clear_cache()
    c0, w0 = time.process_time(), time.perf_counter()
    eng.check_many(batch)
    out.update(
        batch_per_s=len(batch) / (time.perf_counter() - w0), batch_cpu_per_s=len(batch) / (time.process_time() - c0)
    )
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "corpus":
        res = corpus(sys.argv[2], int(sys.argv[3]))
    else:
        from .cedar_subset import run

        res = run(int(sys.argv[2]))
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))
