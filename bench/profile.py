"""python -m bench.profile [RULES_PER_JURISDICTION] [--repeated]: where a check's time goes (pyinstrument).

Profiles never-seen checks (cache misses) on the synthetic corpus (19 jurisdictions x RULES rules, default 14 = 1x),
or repeated ones with --repeated."""

from __future__ import annotations

import sys

from pyinstrument import Profiler

from dfft.engine import Engine

from .synth import synthetic_ruleset
from .workload import requests


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rules = int(args[0]) if args else 14
    rs = synthetic_ruleset(19, rules)
    eng = Engine(rs)
    reqs = requests(rs, 3200)
    for r in reqs[:200]:
        eng.check(r)
    stream = [reqs[i % 256] for i in range(50_000)] if "--repeated" in sys.argv else reqs[200:]
    p = Profiler(interval=0.0005)
    p.start()
    for r in stream:
        eng.check(r)
    p.stop()
    print(p.output_text(unicode=False, show_all=False))
    b = eng.backend
    print(
        f"durable-rules assertions: {b.asserted}, skipped (no rule of the level can match): {b.skipped}, "
        f"answered by the fact memo: {b.memo_hits}"
    )


if __name__ == "__main__":
    main()
