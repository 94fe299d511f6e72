"""python -m bench [--quick] [--json FILE] [--only full,1x,4x,16x,cedar] [--baseline REV]

Prints one table: per corpus (the embedded corpus, and a synthetic one at 1x, 4x and 16x the rules) the compile
time, single cold-check latency, throughput for never-seen and repeated requests, batch throughput and peak memory;
then dfft, Cedar and a precomputed dict side by side on the shared subset (answers checked to agree first); then
(--baseline, on by default) the same v1-shaped workload on the full corpus measured with a pinned earlier commit, checked
out into a temporary git worktree, side by side with this tree: the ratio is what the regression target reads.
Each measurement runs in its own process, so peak memory and caches do not leak between rows. Wall-clock and CPU
(process) time are both shown: on a shared machine the CPU figures are the steadier ones."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYNTH_BASE = 14  # rules per jurisdiction at 1x: one copy of every template in bench/synth.py
SYNTH_JURISDICTIONS = 19
SPECS = {
    "full": "full",
    "1x": f"synth:{SYNTH_BASE}",
    "4x": f"synth:{4 * SYNTH_BASE}",
    "16x": f"synth:{16 * SYNTH_BASE}",
}


# The commit v1-shaped throughput is compared with: main just before request model v2 (issue 12), whose target is
# "v1-shaped checks within 20% of today's throughput".
BASELINE = "6428bb3"
# main before the in-process work of issue 14 ("never-seen in-process checks >= 2x today's main")
BASELINE_ISSUE14 = "5689721"


def _child(args: list[str], root: Path = ROOT) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(
        [sys.executable, "-m", "bench.measure", *args], capture_output=True, text=True, env=env, cwd=root
    )
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _f(x: float, unit: str = "") -> str:
    if x >= 100:
        return f"{x:,.0f}{unit}"
    return f"{x:.1f}{unit}" if x >= 10 else f"{x:.2f}{unit}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--quick", action="store_true", help="fewer requests (a smoke run, ~1 minute)")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--only", default="full,1x,4x,16x,cedar")
    ap.add_argument(
        "--baseline",
        default=f"{BASELINE},{BASELINE_ISSUE14}",
        help=f"git revisions (comma-separated) to compare throughput with, each side by side in this run (default "
        f"{BASELINE} for issue 12's v1-shaped target and {BASELINE_ISSUE14} for issue 14's 2x; 'none' to skip)",
    )
    a = ap.parse_args(argv)
    n = 400 if a.quick else 2000
    rows = [r for r in a.only.split(",") if r]
    started = time.time()
    print(
        f"dfft benchmark - {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    results: dict[str, dict] = {}
    for row in rows:
        if row == "cedar":
            results[row] = _child(["cedar", str(n)])
        else:
            results[row] = _child(["corpus", SPECS[row], str(n)])

    head = (
        "corpus",
        "juris",
        "rules",
        "compile s",
        "p50 us",
        "p99 us",
        "never-seen/s",
        "(CPU)",
        "repeated/s",
        "(CPU)",
        "batch/s",
        "(CPU)",
        "findings",
        "peak MB",
    )
    table = []
    for row in rows:
        r = results[row]
        if row == "cedar":
            continue
        label = "full corpus" if row == "full" else f"synthetic {row}"
        if "error" in r or r.get("empty"):
            table.append(
                (
                    label,
                    "-",
                    "-",
                    r.get("error", "empty: no jurisdictions in the embedded corpus"),
                    *[""] * (len(head) - 4),
                )
            )
            continue
        table.append(
            (
                label,
                str(r["jurisdictions"]),
                str(r["rules"]),
                f"{r['compile_s']:.2f}",
                f"{r['p50_us']:.0f} ({r['p50_cpu_us']:.0f})",
                f"{r['p99_us']:.0f} ({r['p99_cpu_us']:.0f})",
                f"{r['never_seen_per_s']:,.0f}",
                f"{r['never_seen_cpu_per_s']:,.0f}",
                f"{r['repeated_per_s']:,.0f}",
                f"{r['repeated_cpu_per_s']:,.0f}",
                f"{r['batch_per_s']:,.0f}",
                f"{r['batch_cpu_per_s']:,.0f}",
                f"{r['findings_per_decision']:.1f}",
                f"{r['peak_rss_mb']:.0f}",
            )
        )
    if table:
        widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(head)]
        print()
        print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for t in table:
            print("| " + " | ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)) + " |")
        print(
            "latency: wall (CPU) per single cold check; never-seen: unique requests, cache misses; repeated: a pool "
            "of 256 shapes, cache hits; batch: check_many over requests drawn from 500 shapes, cache emptied first; "
            "findings: per decision; peak MB: max RSS of the measuring process"
        )
        synth = {k: results[k] for k in ("1x", "4x", "16x") if k in results and "never_seen_cpu_per_s" in results[k]}
        if "1x" in synth and len(synth) > 1:
            base = synth["1x"]
            print(
                "scaling vs 1x (CPU throughput, never-seen): "
                + ", ".join(
                    f"{k}: {v['rules'] / base['rules']:.0f}x rules -> {base['never_seen_cpu_per_s'] / v['never_seen_cpu_per_s']:.2f}x "
                    "slower"
                    for k, v in synth.items()
                    if k != "1x"
                )
            )
    if "cedar" in results:
        c = results["cedar"]
        print()
        if "error" in c:
            print(f"side by side: {c['error']}")
        else:
            print(
                f"side by side on the shared subset (APPI Art. 28 + PDPA s.26; {c['n']} unique single-leg requests; "
                f"verdicts {c['verdicts']}): answers agree on {c['n'] - c['disagreements']}/{c['n']}"
            )
            print(
                "| engine | us/check wall | us/check CPU | checks/s (CPU) | dfft never-seen / it (CPU) | dfft repeated / it (CPU) |"
            )
            print("|---|---|---|---|---|---|")
            ns, rp = c["dfft_never_seen"][1], c["dfft_repeated"][1]
            for key, label in (
                ("dfft_never_seen", "dfft, never-seen (durable-rules, memos off)"),
                ("dfft_repeated", "dfft, repeated (memo)"),
                ("cedar", "Cedar (cedarpy, parsed PolicySet, one call per request)"),
                ("cedar_batch", "Cedar (is_authorized_batch)"),
                ("floor", "floor: precomputed dict lookup"),
            ):
                w, cpu = c[key]
                print(f"| {label} | {_f(w)} | {_f(cpu)} | {1e6 / cpu:,.0f} | {ns / cpu:.2f} | {rp / cpu:.2f} |")
            if c.get("method"):
                print(f"method: {c['method']}")
            if c["disagreements"]:
                print("DISAGREEMENTS:", *c["examples_of_disagreement"], sep="\n  ")
    if a.baseline != "none":
        for rev in [r for r in a.baseline.split(",") if r]:
            results[f"baseline {rev}"] = _baseline(rev, n, results.get("full"))
    _targets(results)
    print(f"\n(total {time.time() - started:.0f} s)")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    bad = any("error" in r for r in results.values()) or results.get("cedar", {}).get("disagreements")
    return 1 if bad else 0


def _targets(results: dict[str, dict]) -> None:
    """The issue 14 in-process targets, each figure beside its floor or peer from this run, the ratio and the target."""
    rows = []
    b = results.get(f"baseline {BASELINE_ISSUE14}", {})
    if "now" in b:
        old, new = b["baseline"]["never_seen_cpu_per_s"], b["now"]["never_seen_cpu_per_s"]
        rows.append(
            (
                "never-seen checks/s, full corpus (CPU)",
                f"{new:,.0f}",
                f"{BASELINE_ISSUE14}: {old:,.0f}",
                new / old,
                ">=",
                2.0,
            )
        )
    one, sixteen = results.get("1x", {}), results.get("16x", {})
    if "never_seen_cpu_per_s" in one and "never_seen_cpu_per_s" in sixteen:
        a, z = one["never_seen_cpu_per_s"], sixteen["never_seen_cpu_per_s"]
        rows.append(("never-seen checks/s, synthetic 16x (CPU)", f"{z:,.0f}", f"1x: {a:,.0f}", a / z, "<=", 2.0))
    c = results.get("cedar", {})
    if "cedar" in c:
        d, e = c["dfft_never_seen"][1], c["cedar"][1]
        rows.append(("us per never-seen check, memos off (CPU)", _f(d), f"cedarpy per call: {_f(e)}", d / e, "<=", 1.0))
    if not rows:
        return
    print()
    print("issue 14 targets in this run (ratio: this / the floor or peer, slowdown for 16x):")
    print("| figure | dfft | floor or peer | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    for label, mine, peer, ratio, op, bound in rows:
        ok = ratio >= bound if op == ">=" else ratio <= bound
        print(f"| {label} | {mine} | {peer} | {ratio:.2f} | {op} {bound:.1f} | {'yes' if ok else 'no'} |")


def _baseline(rev: str, n: int, now: dict | None) -> dict:
    """Measure the full corpus with `rev` checked out in a temporary worktree, then with this tree again (so both
    ran under the same load), and print the ratios."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dfft-baseline-") as tmp:
        wt = Path(tmp) / "tree"
        add = subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), rev], capture_output=True, text=True
        )
        if add.returncode != 0:
            print(f"\nbaseline {rev}: cannot check it out ({add.stderr.strip()})")
            return {"error": add.stderr.strip()}
        try:
            old = _child(["corpus", "full", str(n)], root=wt)
            new = _child(["corpus", "full", str(n)])
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)], capture_output=True)
    print()
    if "error" in old or "error" in new:
        print(f"baseline {rev}: {old.get('error') or new.get('error')}")
        return {"error": old.get("error") or new.get("error")}
    target = {BASELINE: "issue 12 target >= 0.80", BASELINE_ISSUE14: "issue 14 target: never-seen >= 2.0"}.get(rev, "")
    print(f"v1-shaped checks on the full corpus, this tree vs {rev} (same run; CPU throughput; {target}):")
    print("| measure | baseline | this tree | ratio |")
    print("|---|---|---|---|")
    for key, label in (
        ("never_seen_cpu_per_s", "never-seen checks/s (CPU)"),
        ("repeated_cpu_per_s", "repeated checks/s (CPU)"),
        ("batch_cpu_per_s", "batch checks/s (CPU)"),
    ):
        print(f"| {label} | {old[key]:,.0f} | {new[key]:,.0f} | {new[key] / old[key]:.2f} |")
    print(
        f"| compile s | {old['compile_s']:.2f} | {new['compile_s']:.2f} | {new['compile_s'] / old['compile_s']:.2f} |"
    )
    return {"rev": rev, "baseline": old, "now": new}


if __name__ == "__main__":
    # optional row group --startup: cold start of `dfft check` and `dfft serve` beside their floors (bench/startup.py)
    if "--startup" in sys.argv[1:]:
        from .startup import main as startup

        rc = main([x for x in sys.argv[1:] if x != "--startup"])
        sys.exit(startup([]) or rc)
    sys.exit(main())
