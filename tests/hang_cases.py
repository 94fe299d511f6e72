"""Rule sets that hang durable-rules 2.0.28 when they reach it (tests run them in a child process with a timeout).

python -m tests.hang_cases CASE      exit 0: compiled and checked; 4: refused (CompileError on stderr)
"""

from __future__ import annotations

import itertools
import string
import sys

CODES = ["".join(p) for p in itertools.product(string.ascii_uppercase, repeat=2)]


def crowded(rs, per_rule: list[list[str]], code: str = "JP"):
    """`rs` with one rule per entry of `per_rule`: `to in <those codes>`."""
    from dfft.rules.model import Rule

    j = rs.jurisdictions[code]
    extra = tuple(
        Rule(
            id=f"{code}-wide{i}",
            jurisdiction=code,
            domain="ip",
            title="many alternatives",
            scope="exporter",
            citation=j.rules[0].citation,
            confidence="high",
            when={"field": "to", "in": vals},
            effect="condition",
        )
        for i, vals in enumerate(per_rule)
    )
    return rs.model_copy(
        update={"jurisdictions": {**rs.jurisdictions, code: j.model_copy(update={"rules": j.rules + extra})}}
    )


CASES = {
    "in511": [CODES[:511]],
    "in512": [CODES[:512]],
    "three200": [CODES[:200], CODES[200:400], CODES[400:600]],
}


def main(case: str) -> int:
    from dfft.engine import CompileError, Engine
    from dfft.rules import load_ruleset
    from tests.conftest import MINI

    rs = crowded(load_ruleset(MINI), CASES[case])
    try:
        e = Engine(rs, cache_size=0)
        e.check(dict(origin="JP", destination="VN", data_categories=["personal"], subjects=10, as_of="2026-06-01"))
    except CompileError as err:
        print(err, file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
