"""Compile a rule set into durable-rules rulesets (one per jurisdiction) and match facts with them.

What we learnt about durable-rules 2.0.28 (see ../shared/DESIGN.md) shapes this module:
- facts, not events (events are consumed by one rule); each asserted fact carries a unique sid per check, and the
  state is deleted after the check (otherwise memory grows per sid);
- the Host's background dispatcher threads are disabled (they can run an action outside assert_fact);
- a fact that no rule matches raises MessageNotHandledException *and still allocates a state*, whose deletion then
  segfaults the C engine (seen here: 2.0.28, first state of a ruleset); so every ruleset has a catch-all rule that
  matches every fact and does nothing, and every fact is handled;
- an exception inside an action is swallowed into state['exception']: we check it after every assertion and fail;
- one node with ~512 tests hangs the process: the compiler refuses rulesets with more than MAX_TESTS_PER_FIELD tests
  on one field. Table lookups (lists, groups) are done in Python and arrive as boolean fields of the fact;
- `$or` is expanded into alternatives, each firing the action: matches are de-duplicated per fact;
- a fact's field that a condition tests must be present ($neq on a missing field does not match), so every fact
  carries every field its jurisdiction's rules test.
"""
from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import date
from typing import Any, Callable

from durable import engine as durable_engine

from ..rules.conditions import leaf_op
from ..rules.model import RuleSet
from .plan import Fact, Prepared, Unit, list_member, prepare

MAX_TESTS_PER_FIELD = 480
_names = itertools.count()


class CompileError(Exception):
    pass


class EvaluationError(Exception):
    """durable-rules reported a failure during a check. Callers must fail closed."""


def _ignore(c: Any) -> None:
    pass


class _Host(durable_engine.Host):
    def _run(self) -> None:  # no background dispatcher threads
        pass


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", s)


def _as_int(d: date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def _join(op: str, items: list[dict]) -> dict:
    return items[0] if len(items) == 1 else {op: items}


_NEGATE = {"gte": "$lt", "gt": "$lte", "lte": "$gt", "lt": "$gte"}
_POS = {"gte": "$gte", "gt": "$gt", "lte": "$lte", "lt": "$lt"}


class _Compiler:
    """Turns one jurisdiction's units into a durable-rules definition and the fact projection it needs."""

    def __init__(self, rs: RuleSet, prep: Prepared):
        self.rs = rs
        self.code = prep.jurisdiction.code
        self.getters: dict[str, Callable[[dict, frozenset, date], Any]] = {}
        self.tests: Counter[str] = Counter()

    def key(self, kind: str, *parts: str) -> str:
        k = "_".join([kind, *map(_safe, parts)])
        if k not in self.getters:
            if kind == "v":
                (fld,) = parts
                self.getters[k] = lambda env, flags, on, f=fld: env[f]
            elif kind in ("c", "s"):
                fld, val = parts
                self.getters[k] = lambda env, flags, on, f=fld, v=val: v in env[f]
            elif kind == "l":
                fld, ref = parts
                self.getters[k] = lambda env, flags, on, f=fld, r=ref: list_member(self.rs, self.code, r, env[f], on)
            elif kind == "f":
                (flag,) = parts
                self.getters[k] = lambda env, flags, on, g=flag: g in flags
        self.tests[k] += 1
        return k

    def expr(self, cond: dict[str, Any], neg: bool = False) -> dict:
        if "all" in cond or "any" in cond:
            items = [self.expr(c, neg) for c in (cond.get("all") or cond.get("any"))]
            conj = ("all" in cond) != neg
            return _join("$and" if conj else "$or", items)
        if "not" in cond:
            return self.expr(cond["not"], not neg)
        if "flag" in cond:
            return {self.key("f", cond["flag"]): not neg}
        fld = cond["field"]
        op, val = leaf_op(cond)
        if op in ("contains", "contains_any", "contains_all"):
            prefix = "c" if fld == "data_categories" else "s"
            vals = [val] if op == "contains" else list(val)
            items = [{self.key(prefix, fld, v): not neg} for v in vals]
            conj = (op != "contains_any") != neg
            return _join("$and" if conj else "$or", items)
        if op == "in_list":
            return {self.key("l", fld, val): not neg}
        k = self.key("v", fld)
        if op in ("eq", "ne"):
            equal = (op == "eq") != neg
            return {k: val} if equal else {"$neq": {k: val}}
        if op in ("in", "not_in"):
            member = (op == "in") != neg
            return _join("$or", [{k: v} for v in val]) if member else _join("$and", [{"$neq": {k: v}} for v in val])
        return {(_NEGATE if neg else _POS)[op]: {k: val}}

    def unit_expr(self, u: Unit) -> dict:
        parts: list[dict] = [{"lvl": u.level}, {"r_" + u.rule.scope: True}]
        if u.rule.effective_from:
            parts.append({"$gte": {"as_of": _as_int(u.rule.effective_from)}})
        if u.rule.effective_until:
            parts.append({"$lt": {"as_of": _as_int(u.rule.effective_until)}})
        parts.append(self.expr(u.cond))
        return {"$and": parts}


class DurableBackend:
    """Matches facts with durable-rules. Not thread-safe: the Engine serialises calls."""

    name = "durable"

    def __init__(self, rs: RuleSet):
        self.rs = rs
        self.host = _Host()
        self.prepared: dict[str, Prepared] = {}
        self.ruleset_names: dict[str, str] = {}
        self.getters: dict[str, dict[str, Callable]] = {}
        self._sink: list[int] = []
        self._sids = itertools.count()
        self._sid = ""
        self._touched: set[str] = set()
        definitions: dict[str, dict] = {}
        for code, j in sorted(rs.jurisdictions.items()):
            prep = prepare(j)
            self.prepared[code] = prep
            if not prep.units:
                continue
            comp = _Compiler(rs, prep)
            definition = {f"u{u.index}": {"all": [{"m": comp.unit_expr(u)}], "run": self._action(u.index)}
                          for u in prep.units}
            definition["catch_all"] = {"all": [{"m": {"$gte": {"lvl": 0}}}], "run": _ignore}
            crowded = {k: n for k, n in comp.tests.items() if n > MAX_TESTS_PER_FIELD}
            if crowded:
                raise CompileError(
                    f"{code}: {', '.join(f'{n} tests on {k}' for k, n in crowded.items())} exceed the limit of "
                    f"{MAX_TESTS_PER_FIELD} tests on one field (durable-rules hangs near 512); split the rules or "
                    "move the lookup into a list (in_list)")
            name = f"{code}_{rs.hash[:12]}_{next(_names)}"
            definitions[name] = definition
            self.ruleset_names[code] = name
            self.getters[code] = comp.getters
        try:
            self.host.register_rulesets(definitions)
        except Exception as e:  # the C engine rejects the definition
            raise CompileError(f"durable-rules refused the compiled rule set: {e}") from e

    def _action(self, index: int) -> Callable:
        sink = self._sink

        def run(c: Any) -> None:
            sink.append(index)
        return run

    def begin(self) -> None:
        self._sid = str(next(self._sids))
        self._touched = set()

    def end(self) -> None:
        for name in self._touched:
            self.host.delete_state(name, self._sid)
        self._touched = set()

    def match(self, fact: Fact, level: int, flags: frozenset[str]) -> list[Unit]:
        code = fact.jurisdiction
        name = self.ruleset_names.get(code)
        if name is None:
            return []
        msg: dict[str, Any] = {"sid": self._sid, "lvl": level, "hop": fact.hop, "as_of": _as_int(fact.as_of)}
        for scope in ("exporter", "importer", "origin"):
            msg["r_" + scope] = scope in fact.roles
        for k, get in self.getters[code].items():
            msg[k] = get(fact.env, flags, fact.as_of)
        self._sink.clear()
        self._touched.add(name)
        try:
            state = self.host.assert_fact(name, msg)
        except durable_engine.MessageNotHandledException as e:  # impossible with the catch-all rule
            raise EvaluationError(f"{code}: durable-rules did not handle a fact despite the catch-all rule") from e
        except durable_engine.MessageObservedException as e:
            raise EvaluationError(f"{code}: the same fact was asserted twice in one check: {e}") from e
        if isinstance(state, dict) and state.get("exception"):
            raise EvaluationError(f"{code}: an action failed inside durable-rules: {state['exception']}")
        units = self.prepared[code].units
        # durable-rules expands `$or` into alternatives and runs the action once per alternative that matches:
        # a rule is a predicate, so it counts once per fact
        return [units[i] for i in sorted(set(self._sink))]
