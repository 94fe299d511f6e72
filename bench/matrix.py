"""python -m bench.matrix [--origins N] [--scenario FILE] [--width COLUMNS] [--repeat N]

`dfft matrix` over every origin x destination x the five data profiles: is its time the checks'? Prints, measured in
one process, side by side and interleaved (best of --repeat):

  checks   the cells' requests judged one by one on a freshly compiled engine (the floor: nothing but the checks)
  matrix   whatif.matrix.matrix() on another freshly compiled engine: the checks plus building the cells
  render   the text `dfft matrix` prints (dfft.cli.text.render_matrix) at --width columns, and the JSON
  total    matrix + render, and checks / total (1.0 would be all checks)
  before   the text as main printed it at 5689721: a Rich table per origin, destinations as columns,
           each cell found by a linear scan of all cells (--before-origins of them only: it is quadratic)

The rule bundle is loaded and the engines compiled before the clock starts (both are the same for any command)."""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

from rich.console import Console

from dfft.cli.text import render_matrix
from dfft.rules import load_ruleset
from dfft.whatif.context import Engines
from dfft.whatif.matrix import all_destinations, load_profiles, matrix
from dfft.whatif.scenario import load_scenario


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--origins", type=int, default=0, help="only the first N origins (default: all)")
    ap.add_argument("--scenario", type=Path, default=None, help="also judge every cell under this scenario")
    ap.add_argument("--width", type=int, default=160, help="terminal width the text is rendered at")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--before-origins", type=int, default=4, help="origins rendered the old way (0: skip)")
    a = ap.parse_args(argv)

    rs = load_ruleset()
    sc = load_scenario(a.scenario, rs) if a.scenario else None
    origins = sorted(rs.jurisdictions)[: a.origins or None]
    dests = all_destinations(rs)
    profiles = load_profiles()
    best = {"checks": float("inf"), "matrix": float("inf"), "render": float("inf"), "json": float("inf")}
    cells = 0
    for _ in range(a.repeat):
        e = Engines(rs)
        eng = e.engine()  # compiled before the clock starts
        day = e.today
        reqs = [
            {**p.request, "origin": o, "destination": d, "as_of": p.request.get("as_of", day)}
            for o in origins
            for p in profiles
            for d in dests
            if d != o
        ]
        if sc is not None:
            srs, seng = e.for_scenario(sc)
        t0 = time.perf_counter()
        for r in reqs:
            eng.check(r)
        if sc is not None:
            for r in reqs:
                seng.check(sc.apply_request(r, srs, day))
        best["checks"] = min(best["checks"], time.perf_counter() - t0)
        e.close()

        e = Engines(rs)
        e.engine()
        if sc is not None:
            e.for_scenario(sc)
        t0 = time.perf_counter()
        m = matrix(e, origins, profiles, dests, sc)
        t1 = time.perf_counter()
        render_matrix(m, Console(file=io.StringIO(), width=a.width, force_terminal=True, color_system="truecolor"))
        t2 = time.perf_counter()
        m.model_dump_json()
        t3 = time.perf_counter()
        best["matrix"] = min(best["matrix"], t1 - t0)
        best["render"] = min(best["render"], t2 - t1)
        best["json"] = min(best["json"], t3 - t2)
        cells = len(m.cells)
        e.close()
    before = None
    if a.before_origins:
        t0 = time.perf_counter()
        _render_before(m, Console(file=io.StringIO(), width=a.width, force_terminal=True), a.before_origins)
        before = (time.perf_counter() - t0) * len(m.origins) / min(a.before_origins, len(m.origins))
    total = best["matrix"] + best["render"]
    print(
        f"dfft matrix: {len(origins)} origins x {len(dests)} destinations x {len(profiles)} profiles = {cells} cells"
        + (f", baseline and scenario {sc.name!r}" if sc else "")
        + f"; best of {a.repeat}, Python {sys.version.split()[0]}"
    )
    print(f"{'':<28}{'seconds':>10}{'of total':>10}")
    rows = [
        ("checks alone (the floor)", best["checks"]),
        ("matrix() (checks + cells)", best["matrix"]),
        (f"text at {a.width} columns", best["render"]),
        ("total (matrix + text)", total),
        ("JSON (--json instead)", best["json"]),
    ]
    for name, v in rows:
        print(f"{name:<28}{v:>10.3f}{v / total:>10.0%}")
    print(f"checks / total = {best['checks'] / total:.2f} (1.00: nothing but the checks)")
    if before is not None:
        print(
            f"before: the old text took {before:.1f} s for all {len(m.origins)} origins (extrapolated from "
            f"{min(a.before_origins, len(m.origins))}); checks / (matrix + old text) = "
            f"{best['checks'] / (best['matrix'] + before):.2f}"
        )


def _render_before(m, console: Console, n: int) -> None:
    """The old `dfft matrix` text: a Rich table per origin, destinations as columns, a linear scan per cell."""
    from rich.table import Table

    def cell(o: str, p: str, d: str):
        for c in m.cells:
            if (c.origin, c.profile, c.destination) == (o, p, d):
                return c
        return None

    style = {"allowed": "green", "conditional": "yellow", "blocked": "red"}
    for o in m.origins[:n]:
        t = Table(title=f"From {o}")
        t.add_column("profile")
        for d in m.destinations:
            t.add_column(d, justify="center")
        for p in m.profiles:
            row = []
            for d in m.destinations:
                c = cell(o, p.name, d)
                row.append("·" if c is None else f"[{style[c.verdict]}]{c.verdict[0].upper()}[/]")
            t.add_row(p.name, *row)
        console.print(t)


if __name__ == "__main__":
    main()
