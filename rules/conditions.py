"""Helpers over condition trees (the `when` / `unless` of a rule): walking, flags, stratification."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .schema import LIST_VALUED_OPS


def walk(cond: dict[str, Any], positive: bool = True) -> Iterator[tuple[dict[str, Any], bool]]:
    """Yield every leaf test (`field` or `flag` node) with its polarity (False under an odd number of `not`)."""
    if "all" in cond or "any" in cond:
        for item in cond.get("all") or cond["any"]:
            yield from walk(item, positive)
    elif "not" in cond:
        yield from walk(cond["not"], not positive)
    else:
        yield cond, positive


def leaf_op(leaf: dict[str, Any]) -> tuple[str, Any]:
    (op,) = [k for k in leaf if k != "field"]
    return op, leaf[op]


def leaf_values(leaf: dict[str, Any]) -> list[Any]:
    op, val = leaf_op(leaf)
    return list(val) if op in LIST_VALUED_OPS else [val]


def flags_in(*conds: dict[str, Any] | None) -> set[str]:
    return {leaf["flag"] for c in conds if c for leaf, _ in walk(c) if "flag" in leaf}


def stratify(rules: list[Any]) -> dict[str, int]:
    """Level of each rule: 0 when it tests no flag, else one more than the highest level of any rule deriving a flag
    it tests. Evaluating level by level makes `not` and `unless` over flags sound (stratified negation).
    Raises ValueError naming the cycle when flags depend on themselves."""
    derivers: dict[str, list[Any]] = {}
    for r in rules:
        for f in r.derive:
            derivers.setdefault(f, []).append(r)
    level: dict[str, int] = {}
    visiting: list[str] = []

    def visit(r: Any) -> int:
        if r.id in level:
            return level[r.id]
        if r.id in visiting:
            cycle = visiting[visiting.index(r.id) :] + [r.id]
            raise ValueError("flags depend on themselves: " + " -> ".join(cycle))
        visiting.append(r.id)
        lv = 0
        for f in sorted(flags_in(r.when, r.unless)):
            for d in derivers.get(f, []):
                lv = max(lv, visit(d) + 1)
        visiting.pop()
        level[r.id] = lv
        return lv

    for r in rules:
        visit(r)
    return level
