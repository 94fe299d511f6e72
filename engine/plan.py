"""From a normalised request to the facts each jurisdiction judges, and the rule variants each backend matches.

Both backends (durable-rules and the reference interpreter) share this module, so they differ only in how a
condition is matched against a fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from ..rules.conditions import leaf_op, stratify
from ..rules.model import Jurisdiction, Rule, RuleSet
from .request import Normalised

Kind = Literal["derive", "finding", "exempt"]


@dataclass(frozen=True)
class Fact:
    """One jurisdiction's view of one leg: which roles it plays and the field values its rules may test."""

    jurisdiction: str
    hop: int
    roles: frozenset[str]
    env: dict[str, Any]
    as_of: date


@dataclass(frozen=True)
class Unit:
    """A rule variant the engine matches: `derive` (when and not unless), `finding` (when and not unless) or
    `exempt` (when and unless: the rule applied but its exception held)."""

    index: int
    rule: Rule
    kind: Kind
    level: int
    cond: dict[str, Any]


@dataclass
class Prepared:
    """A jurisdiction's rules expanded into units and stratified."""

    jurisdiction: Jurisdiction
    units: list[Unit]
    levels_by_role: dict[str, list[int]] = field(default_factory=dict)
    _levels_memo: dict[frozenset[str], list[int]] = field(default_factory=dict, repr=False, compare=False)

    def levels_for(self, roles: frozenset[str]) -> list[int]:
        hit = self._levels_memo.get(roles)
        if hit is None:
            hit = self._levels_memo[roles] = sorted({lv for r in roles for lv in self.levels_by_role.get(r, [])})
        return hit


def prepare(j: Jurisdiction) -> Prepared:
    levels = stratify(list(j.rules))
    units: list[Unit] = []
    for rule in sorted(j.rules, key=lambda r: r.id):
        lv = levels[rule.id]
        neg = [{"not": rule.unless}] if rule.unless else []
        if rule.derive:
            units.append(Unit(len(units), rule, "derive", lv, {"all": [rule.when, *neg]}))
            continue
        units.append(Unit(len(units), rule, "finding", lv, {"all": [rule.when, *neg]}))
        if rule.unless:
            units.append(Unit(len(units), rule, "exempt", lv, {"all": [rule.when, rule.unless]}))
    by_role: dict[str, set[int]] = {}
    for u in units:
        by_role.setdefault(u.rule.scope, set()).add(u.level)
    return Prepared(j, units, {k: sorted(v) for k, v in by_role.items()})


def facts_for(n: Normalised, rs: RuleSet) -> list[Fact]:
    """Facts in evaluation order: for each leg, the exporting jurisdiction (with `origin` on the first leg),
    then the importing jurisdiction when dfft has its rules."""
    req = n.request
    base = {
        "origin": req.origin,
        "destination": req.destination,
        "hops": len(n.legs),
        "subjects": n.subjects,
        "exporter": req.exporter,
        "sector": req.sector,
        "purpose": req.purpose,
        "data_categories": n.categories,
        "safeguards": n.safeguards,
    }
    assert req.as_of is not None  # normalise fills it
    out: list[Fact] = []
    for leg in n.legs:
        env = {**base, "from": leg.src, "to": leg.dst, "hop": leg.hop}
        roles = {"exporter"} | ({"origin"} if leg.hop == 0 else set())
        out.append(Fact(leg.src, leg.hop, frozenset(roles), env, req.as_of))
        if leg.dst in rs.jurisdictions:
            out.append(Fact(leg.dst, leg.hop, frozenset({"importer"}), env, req.as_of))
    return out


def list_member(rs: RuleSet, owner: str, ref: str, code: str, on: date) -> bool:
    return rs.code_list(owner, ref).contains(code, on)


def leaf_holds(
    leaf: dict[str, Any], env: dict[str, Any], flags: set[str] | frozenset[str], rs: RuleSet, owner: str, on: date
) -> bool:
    """The reference meaning of one leaf test."""
    if "flag" in leaf:
        return leaf["flag"] in flags
    fld = leaf["field"]
    op, val = leaf_op(leaf)
    x = env[fld]
    if op == "eq":
        return x == val
    if op == "ne":
        return x != val
    if op == "in":
        return x in val
    if op == "not_in":
        return x not in val
    if op == "gte":
        return x >= val
    if op == "gt":
        return x > val
    if op == "lte":
        return x <= val
    if op == "lt":
        return x < val
    if op == "contains":
        return val in x
    if op == "contains_any":
        return any(v in x for v in val)
    if op == "contains_all":
        return all(v in x for v in val)
    if op == "in_list":
        return list_member(rs, owner, val, x, on)
    raise ValueError(f"unknown operator {op!r}")


def holds(
    cond: dict[str, Any], env: dict[str, Any], flags: set[str] | frozenset[str], rs: RuleSet, owner: str, on: date
) -> bool:
    if "all" in cond:
        return all(holds(c, env, flags, rs, owner, on) for c in cond["all"])
    if "any" in cond:
        return any(holds(c, env, flags, rs, owner, on) for c in cond["any"])
    if "not" in cond:
        return not holds(cond["not"], env, flags, rs, owner, on)
    return leaf_holds(cond, env, flags, rs, owner, on)
