"""Effective-date edges of every rule, checked at +/-1 day through the golden cases.

Issue 13 asks that `as_of` be right for the last ten years and that every effective date be tested at its edges. A
rule's dates are data taken from the law (each cited in the rule); what can go wrong between the data and a verdict is
tested here, for every rule with an effect whose `effective_from` or `effective_until` falls in the last ten years:

- at least one golden case expects the rule among its findings (otherwise nobody has shown when it fires);
- for such a case, the same request on the rule's first day still yields the rule's finding, and on the day before
  it does not (for `effective_until`, which is exclusive: on the last day it does, on the end date it does not).

The cases are the golden cases themselves with only `as_of` moved, so no expectation here is computed by the engine.
A rule whose finding depends on a dated list (an adequacy decision, a designation) may not fire on its own first day
for every case; the test then needs just one case that does.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import yaml

from .conftest import GOLDEN

TODAY = date(2026, 11, 28)  # the review date of the corpus: the window is the ten years before it
WINDOW_START = TODAY.replace(year=TODAY.year - 10)


def _cases() -> list[dict]:
    out = []
    for path in sorted(GOLDEN.glob("*.yaml")):
        out += (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("cases", [])
    return out


def _edges(rs) -> list[tuple[str, str, date]]:
    out = []
    for j in rs.jurisdictions.values():
        for r in j.rules:
            if r.effect is None:
                continue  # a rule that only derives flags has no finding of its own; the rules using the flag show it
            for kind, d in (("from", r.effective_from), ("until", r.effective_until)):
                if d is not None and WINDOW_START <= d <= TODAY:
                    out.append((r.id, kind, d))
    return sorted(out)


def _fires(engine, request: dict, on: date, rule_id: str) -> bool:
    d = engine.check({**request, "as_of": on.isoformat()})
    return rule_id in {f.rule_id for f in d.findings}


@pytest.fixture(scope="module")
def golden_firing() -> dict[str, list[dict]]:
    by_rule: dict[str, list[dict]] = {}
    for case in _cases():
        for rid in case["expect"].get("findings") or []:
            by_rule.setdefault(rid, []).append(case["request"])
    return by_rule


def test_every_dated_rule_has_a_golden_case(corpus_rs, golden_firing):
    missing = sorted({rid for rid, _, _ in _edges(corpus_rs)} - set(golden_firing))
    assert not missing, (
        f"rules with an effective date in the last ten years but no golden case that fires them: {missing}"
    )


def test_effective_date_edges(corpus_rs, corpus_engine, golden_firing):
    problems = []
    for rid, kind, d in _edges(corpus_rs):
        on, off = (d, d - timedelta(days=1)) if kind == "from" else (d - timedelta(days=1), d)
        requests = golden_firing.get(rid, [])
        if not requests:
            continue  # reported by test_every_dated_rule_has_a_golden_case
        if any(_fires(corpus_engine, rq, off, rid) for rq in requests):
            problems.append(
                f"{rid} fires on {off} ({'before effective_from' if kind == 'from' else 'effective_until'})"
            )
        if not any(_fires(corpus_engine, rq, on, rid) for rq in requests):
            problems.append(
                f"{rid}: no golden case fires it on {on} ({'effective_from' if kind == 'from' else 'its last day'})"
            )
    assert not problems, "\n".join(problems)


# -- thresholds -------------------------------------------------------------------------------------------------------
# Every count threshold of a rule (`subjects` or `subjects.<category>` compared with gte/gt/lte/lt) is tested at its
# edge: some golden case that fires the rule, with only its count moved to the two sides of the threshold, must change
# whether the rule fires exactly there (gte N: between N-1 and N; gt N: between N and N+1; likewise lte/lt).

_SIDES = {"gte": (-1, 0), "gt": (0, 1), "lte": (0, 1), "lt": (-1, 0)}


def _thresholds(cond, out: set) -> set:
    if isinstance(cond, dict):
        field = cond.get("field")
        if isinstance(field, str) and field.split(".")[0] == "subjects":
            for op, (lo, hi) in _SIDES.items():
                if isinstance(cond.get(op), int):
                    out.add((field, cond[op] + lo, cond[op] + hi))
        for v in cond.values():
            _thresholds(v, out)
    elif isinstance(cond, (list, tuple)):
        for v in cond:
            _thresholds(v, out)
    return out


def _with_count(request: dict, field: str, n: int) -> dict:
    if field == "subjects":
        return {**request, "subjects": n}
    cat = field.split(".", 1)[1]
    return {**request, "counts": {**(request.get("counts") or {}), cat: n}}


def _can_count(request: dict, field: str, n: int) -> bool:
    if field == "subjects":
        return True
    cat = field.split(".", 1)[1]
    return cat in (request.get("data_categories") or []) and n <= request.get("subjects", n)


def test_threshold_edges(corpus_rs, corpus_engine, golden_firing):
    problems = []
    for j in corpus_rs.jurisdictions.values():
        for r in j.rules:
            if r.effect is None:
                continue
            for field, below, above in sorted(_thresholds([r.when, r.unless], set())):
                requests = golden_firing.get(r.id, [])
                flips = False
                for rq in requests:
                    if not _can_count(rq, field, above):
                        continue  # a count for a category the case does not send (or above its total) is invalid
                    on = rq.get("as_of") or TODAY.isoformat()
                    a = _fires(corpus_engine, _with_count(rq, field, below), date.fromisoformat(str(on)), r.id)
                    b = _fires(corpus_engine, _with_count(rq, field, above), date.fromisoformat(str(on)), r.id)
                    if a != b:
                        flips = True
                        break
                if not flips:
                    problems.append(
                        f"{r.id}: no golden case changes at {field} {below} -> {above} ({len(requests)} firing cases)"
                    )
    assert not problems, "\n".join(problems)
