"""From a normalised request to the facts each jurisdiction judges, and the rule variants each backend matches.

Both backends (durable-rules and the reference interpreter) share this module, so they differ only in how a
condition is matched against a fact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Optional

from ..rules.conditions import leaf_op, stratify
from ..rules.model import Jurisdiction, Rule, RuleSet, ScopeEntry
from .request import Leg, Normalised

Kind = Literal["derive", "finding", "exempt"]


@dataclass(slots=True)
class Fact:
    """One jurisdiction's view of one leg: which roles it plays, why its regime governs the leg (`basis`: origin,
    exporter, established, reach, importer; `ground`: the reach entry), the field values its rules may test, and
    the domains its rules do not judge here (`skip`: outside the reach, or not a transfer under `not_transfer`)."""

    jurisdiction: str
    hop: int
    roles: frozenset[str]
    env: dict[str, Any]
    as_of: date
    basis: str = "exporter"
    ground: Optional[ScopeEntry] = None
    skip: frozenset[str] = frozenset()
    not_transfer: tuple[ScopeEntry, ...] = ()


DOMAINS = frozenset({"data_protection", "localisation", "ip"})
_NONE: frozenset[str] = frozenset()


class Env(dict[str, Any]):
    """A fact's field values. `subjects.<category>` is computed on first use (per-category counts)."""

    __slots__ = ("_n",)
    _n: Normalised

    def __missing__(self, key: str) -> Any:
        if key.startswith("subjects."):
            v = self[key] = self._n.subjects_of(key[9:])
            return v
        raise KeyError(key)


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


def _env(n: Normalised, leg: Leg, base: dict[str, Any]) -> Env:
    """The field values of one leg. The exporter of leg 0 is the request's; a later leg's exporter is the previous
    leg's recipient (established where it is, in the role it had)."""
    env = Env(base)
    env._n = n
    r = leg.recipient
    env.update(
        {
            "from": leg.src,
            "to": leg.dst,
            "hop": leg.hop,
            "relation": r.relation,
            "recipient_role": r.role,
            "access": r.access,
            "recipient_kind": r.kind,
            "through": frozenset(leg.through) if leg.through else _NONE,
        }
    )
    if leg.hop > 0:
        env["exporter_role"] = n.legs[leg.hop - 1].recipient.role
        env["exporter_size"] = "unknown"
        env["established"] = frozenset({leg.src})
    return env


_REACHING: dict[int, tuple[RuleSet, list[str]]] = {}


def _reaching(rs: RuleSet) -> list[str]:
    """The jurisdictions that declare an extraterritorial reach, sorted; once per (immutable) rule set."""
    hit = _REACHING.get(id(rs))
    if hit is None or hit[0] is not rs:
        if len(_REACHING) > 64:
            _REACHING.clear()
        hit = _REACHING[id(rs)] = (rs, sorted(c for c, j in rs.jurisdictions.items() if j.reach))
    return hit[1]


Test = Callable[[dict[str, Any], frozenset[str], date], bool]


class ScopePlan:
    """The applicable-law conditions of a rule set (`reach` and `not_transfer` of each jurisdiction) compiled once
    into Python functions (compile_condition), so facts_for does not interpret condition trees per request. The
    reference backend does without it (facts_for then reads the trees with `holds`), so the compiler-fidelity
    property checks these functions too."""

    def __init__(self, rs: RuleSet):
        self.rs = rs
        self.reaching = [
            (code, [(e, compile_condition(e.when, rs, code)) for e in j.reach])
            for code, j in sorted(rs.jurisdictions.items())
            if j.reach
        ]
        self.not_transfer = {
            code: [(e, compile_condition(e.when, rs, code)) for e in j.not_transfer]
            for code, j in rs.jurisdictions.items()
            if j.not_transfer
        }


def _excluded(j: Jurisdiction, env: dict[str, Any], role: str, rs: RuleSet, on: date) -> tuple[ScopeEntry, ...]:
    return tuple(e for e in j.not_transfer if role in e.roles and holds(e.when, env, frozenset(), rs, j.code, on))


def facts_for(n: Normalised, rs: RuleSet, plan: Optional[ScopePlan] = None) -> list[Fact]:
    """Facts in evaluation order. Applicable law first: for each leg, the regimes that govern it as exporter -- the
    leg's source (with `origin` on leg 0), on leg 0 every other jurisdiction where the exporter is established, and
    every regime whose `reach` holds (extraterritorial scope) -- then the importing jurisdiction. Each regime's
    `not_transfer` entries that hold take the domains they name off that fact. With `plan` (the durable backend)
    the scope conditions are the compiled functions of the plan; without (the reference), the trees are read."""
    if plan is not None:
        return _facts_planned(n, rs, plan)
    req = n.request
    base = _base(n)
    assert req.as_of is not None  # normalise fills it
    on = req.as_of
    out: list[Fact] = []

    def add(
        code: str, hop: int, roles: set[str], env: dict[str, Any], basis: str, ground: Optional[ScopeEntry]
    ) -> None:
        j = rs.jurisdictions[code]
        skip: set[str] = set()
        if ground is not None:
            skip |= DOMAINS - set(ground.domains)
        gone: list[ScopeEntry] = []
        if j.not_transfer:
            for role in sorted(roles):
                for e in _excluded(j, env, role, rs, on):
                    gone.append(e)
                    skip |= set(e.domains)
        out.append(
            Fact(
                code,
                hop,
                frozenset(roles),
                env,
                on,
                basis,
                ground,
                frozenset(skip),
                tuple({e.id: e for e in gone}.values()),
            )
        )

    for leg in n.legs:
        env = _env(n, leg, base)
        add(
            leg.src,
            leg.hop,
            {"exporter"} | ({"origin"} if leg.hop == 0 else set()),
            env,
            "origin" if leg.hop == 0 else "exporter",
            None,
        )
        also = sorted(env["established"] - {leg.src}) if leg.hop == 0 else []
        for code in also:
            if code in rs.jurisdictions:
                add(code, leg.hop, {"exporter"}, env, "established", None)
        for code in _reaching(rs):
            j = rs.jurisdictions[code]
            if code in (leg.src, leg.dst) or code in also:
                continue
            for e in j.reach:
                if holds(e.when, env, frozenset(), rs, code, on):
                    add(code, leg.hop, {"exporter"}, env, "reach", e)
                    break
        if leg.dst in rs.jurisdictions:
            add(leg.dst, leg.hop, {"importer"}, env, "importer", None)
    return out


def _base(n: Normalised) -> dict[str, Any]:
    """The field values every leg of the request shares."""
    req = n.request
    purposes = n.purposes
    return {
        "origin": req.origin,
        "destination": req.destination,
        "hops": len(n.legs),
        "subjects": n.subjects,
        "exporter": req.exporter,
        "sector": req.sector,
        # a rule testing the single `purpose` sees it when there is one; with several, none of its values
        "purpose": next(iter(purposes)) if len(purposes) == 1 else "(several)",
        "purposes": purposes,
        "data_categories": n.categories,
        "safeguards": n.safeguards,
        "outcomes": n.outcomes,
        "exporter_role": req.exporter_role,
        "exporter_size": req.exporter_size,
        "established": n.established,
        "subjects_in": n.subjects_in,
        "nationality": n.nationality,
        "collected_in": n.collected_in,
        "publicly_available": req.publicly_available,
        "_given": n.given,
    }


_EXPORTER_ORIGIN = frozenset({"exporter", "origin"})
_EXPORTER = frozenset({"exporter"})
_IMPORTER = frozenset({"importer"})
_NO_FLAGS: frozenset[str] = frozenset()
_SKIP_OUTSIDE: dict[tuple[str, ...], frozenset[str]] = {}


def _facts_planned(n: Normalised, rs: RuleSet, plan: ScopePlan) -> list[Fact]:
    """facts_for with the compiled scope conditions of `plan`: the same facts, in the same order."""
    req = n.request
    base = _base(n)
    on = req.as_of
    assert on is not None  # normalise fills it
    out: list[Fact] = []
    excluders = plan.not_transfer

    def add(code: str, hop: int, roles: frozenset[str], env: Env, basis: str, ground: Optional[ScopeEntry]) -> None:
        skip = _NONE
        if ground is not None:
            skip = _SKIP_OUTSIDE.get(ground.domains)  # type: ignore[assignment]
            if skip is None:
                skip = _SKIP_OUTSIDE[ground.domains] = DOMAINS - set(ground.domains)
        gone: tuple[ScopeEntry, ...] = ()
        tests = excluders.get(code)
        if tests:
            found: dict[str, ScopeEntry] = {}
            extra: set[str] = set()
            for role in sorted(roles):
                for e, test in tests:
                    if role in e.roles and test(env, _NO_FLAGS, on):
                        found.setdefault(e.id, e)
                        extra.update(e.domains)
            if found:
                gone = tuple(found.values())
                skip = skip | extra
        out.append(Fact(code, hop, roles, env, on, basis, ground, skip, gone))

    juris = rs.jurisdictions
    for leg in n.legs:
        env = _env(n, leg, base)
        hop = leg.hop
        src, dst = leg.src, leg.dst
        if hop == 0:
            add(src, 0, _EXPORTER_ORIGIN, env, "origin", None)
            established = env["established"]
            also = sorted(established - {src}) if len(established) > 1 or src not in established else []
            for code in also:
                if code in juris:
                    add(code, 0, _EXPORTER, env, "established", None)
        else:
            add(src, hop, _EXPORTER, env, "exporter", None)
            also = []
        for code, entries in plan.reaching:
            if code in (src, dst) or code in also:
                continue
            for e, test in entries:
                if test(env, _NO_FLAGS, on):
                    add(code, hop, _EXPORTER, env, "reach", e)
                    break
        if dst in juris:
            add(dst, hop, _IMPORTER, env, "importer", None)
    return out


def compile_condition(cond: dict[str, Any], rs: RuleSet, owner: str) -> Test:
    """A Python function (env, flags, on) -> bool with exactly the meaning of holds(cond, env, flags, rs, owner, on):
    the same tests in the same order (`all` / `any` short-circuit as Python's all / any do), generated once."""
    ns: dict[str, Any] = {"_only": only_holds, "_rs": rs, "_owner": owner, "_list_member": list_member}
    consts: list[Any] = []

    def const(v: Any) -> str:
        consts.append(v)
        name = f"_k{len(consts) - 1}"
        ns[name] = v
        return name

    def expr(c: dict[str, Any]) -> str:
        if "all" in c:
            items = [expr(x) for x in c["all"]]
            return "(" + " and ".join(items) + ")" if items else "True"
        if "any" in c:
            items = [expr(x) for x in c["any"]]
            return "(" + " or ".join(items) + ")" if items else "False"
        if "not" in c:
            return f"(not {expr(c['not'])})"
        if "flag" in c:
            return f"({const(c['flag'])} in flags)"
        fld = c["field"]
        op, val = leaf_op(c)
        x = f"env[{const(fld)}]"
        v = const(val)
        simple = {
            "eq": "==",
            "ne": "!=",
            "in": "in",
            "not_in": "not in",
            "gte": ">=",
            "gt": ">",
            "lte": "<=",
            "lt": "<",
        }
        if op in simple:
            return f"({x} {simple[op]} {v})"
        if op == "contains":
            return f"({v} in {x})"
        if op == "contains_any":
            return f"_any_in({v}, {x})"
        if op == "contains_all":
            return f"_all_in({v}, {x})"
        if op == "only":
            return f"_only({const(fld)}, {v}, env, _rs)"
        if op == "in_list":
            return f"_list_member(_rs, _owner, {v}, {x}, on)"
        raise ValueError(f"unknown operator {op!r}")

    ns["_any_in"] = lambda vals, x: any(v in x for v in vals)
    ns["_all_in"] = lambda vals, x: all(v in x for v in vals)
    # bool(): holds returns a bool; `and` / `or` chains return an operand
    src = f"def test(env, flags, on):\n    return bool({expr(cond)})\n"
    exec(src, ns)  # noqa: S102 - source built from validated rule data; constants are passed by name, never inlined
    fn: Test = ns["test"]
    return fn


def list_member(rs: RuleSet, owner: str, ref: str, code: str, on: date) -> bool:
    return rs.code_list(owner, ref).contains(code, on)


def only_holds(fld: str, vals: Any, env: dict[str, Any], rs: RuleSet) -> bool:
    """`only`: every value of the set is one of `vals`; a data category also when it falls under one of them
    (checked on the categories as given, before the taxonomy adds their parents)."""
    allowed = set(vals)
    if fld == "data_categories":
        closure = rs.vocabulary.closure
        return all(not allowed.isdisjoint(closure({c})) for c in env["_given"])
    return set(env[fld]) <= allowed


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
    if op == "only":
        return only_holds(fld, val, env, rs)
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
