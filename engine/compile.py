"""Compile a rule set into durable-rules rulesets (one per jurisdiction) and match facts with them.

What we learnt about durable-rules 2.0.28 (see ../shared/DESIGN.md) shapes this module:
- facts, not events (events are consumed by one rule); each asserted fact carries a unique sid per check, and the
  state is deleted after the check (otherwise memory grows per sid);
- the Host's background dispatcher threads are disabled (they can run an action outside assert_fact);
- a fact that no rule matches raises MessageNotHandledException *and still allocates a state*, whose deletion then
  segfaults the C engine (seen here: 2.0.28, first state of a ruleset); so every ruleset has a catch-all rule that
  matches every fact and does nothing, and every fact is handled;
- actions: the Host runs each fired action through Python (Closure, JSON state round trip, ~12-18 us each); we call
  the C extension (`durable_rules_engine`) directly instead: assert the fact, then drain the action queue of its
  state with start_action_for_state / complete_and_start_action, reading only the rule name of each action. No
  Python code runs inside durable-rules, so nothing can be swallowed into state['exception']; instead every
  assertion must report the catch-all rule exactly once and only known rule names, or the check fails closed;
- one node with ~512 tests under it hangs the process (the C engine loops forever, holding the GIL: no thread, no
  signal handler runs). `$or` (and every `in`, `not_in`, `contains_any` value, and every `any`) is expanded by
  durable-rules into alternatives, each a separate path of tests from the root; equal tests at the same place are
  shared, so the children of a node are the distinct next tests of the paths through it. `check_budget` builds that
  tree for each jurisdiction's ruleset before anything reaches durable-rules and refuses (CompileError naming the
  jurisdiction, the rules contributing most, the fields and the counts) a ruleset where
    * one node would have more than MAX_NODE_TESTS (256) distinct tests or rules under it,
    * one rule (unit) expands into more than MAX_RULE_ALTERNATIVES (256) alternatives,
    * the whole ruleset has more than MAX_RULESET_ALTERNATIVES (8192) alternatives or MAX_RULESET_UNITS (400) units.
  Measured (durable-rules 2.0.28, Python 3.11, subprocess with a timeout, one JP rule set of the mini fixture plus
  the rules below): one `to in [N codes]` rule compiles and checks at N = 505, never returns from the first check at
  N = 511 and never returns from compiling at N = 512; three rules of 170 distinct codes each (510 siblings) work,
  three of 200 (600) hang, whether the 200 values test one field or three different fields; one rule
  `to in [30] and origin in [30]` (900 alternatives, at most 30 siblings) works; 500 rules with the same condition
  make create_ruleset fail with error 108. So the limit is on siblings, not on alternatives or on one field; 256 is
  half of it. Headroom (max siblings / alternatives per ruleset / units): embedded corpus 12 / 60 / 18, the
  benchmark's 16x synthetic corpus (bench/synth.py, 224 rules per jurisdiction) 36 / 1,593 / 337.
  As a second line of defence, every new ruleset definition is compiled and first-asserted in a child process with a
  timeout (engine/probe.py) before it is created in this process.
  Table lookups (lists, groups) are done in Python and arrive as boolean fields of the fact;
- `$or` is expanded into alternatives, each firing the action: matches are de-duplicated per fact;
- a fact's field that a condition tests must be present ($neq on a missing field does not match), so every fact
  carries every field its jurisdiction's rules test.
"""

from __future__ import annotations

import itertools
import json
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any, Optional

import durable_rules_engine as _dre

from ..rules.conditions import leaf_op
from ..rules.model import RuleSet
from . import probe as _probe
from .errors import CompileError, EvaluationError
from .plan import Fact, Prepared, Unit, list_member, only_holds, prepare

# limits of what one durable-rules ruleset may hold (see the module doc for the measured thresholds)
MAX_NODE_TESTS = 256
MAX_RULE_ALTERNATIVES = 256
MAX_RULESET_ALTERNATIVES = 8192
MAX_RULESET_UNITS = 400
MAX_TESTS_PER_FIELD = MAX_NODE_TESTS  # the former name
_names = itertools.count()


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
        self.getters: dict[str, Callable[..., Any]] = {}  # (env, flags, on) -> value
        self.specs: dict[str, tuple[str, ...]] = {}
        self.tests: Counter[str] = Counter()
        self.used: set[str] = set()
        # constants each numeric field is compared with (for the fact memo's canonical values, see _bucket)
        self.points: dict[str, set[int]] = {}

    def key(self, kind: str, *parts: str) -> str:
        k = "_".join([kind, *map(_safe, parts)])
        if k not in self.getters:
            self.specs[k] = parts
            if kind == "v":
                (fld,) = parts
                self.getters[k] = lambda env, flags, on, f=fld: env[f]
            elif kind in ("c", "s"):
                fld, val = parts
                self.getters[k] = lambda env, flags, on, f=fld, v=val: v in env[f]
            elif kind == "l":
                fld, ref = parts
                self.getters[k] = lambda env, flags, on, f=fld, r=ref: list_member(self.rs, self.code, r, env[f], on)
            elif kind == "o":
                fld, *vals = parts
                self.getters[k] = lambda env, flags, on, f=fld, v=tuple(vals): only_holds(f, v, env, self.rs)
            elif kind == "f":
                (flag,) = parts
                self.getters[k] = lambda env, flags, on, g=flag: g in flags
        self.tests[k] += 1
        self.used.add(k)
        return k

    def expr(self, cond: dict[str, Any], neg: bool = False) -> dict:
        if "all" in cond or "any" in cond:
            items = [self.expr(c, neg) for c in (cond.get("all") or cond["any"])]
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
        if op == "only":
            return {self.key("o", fld, *sorted(val)): not neg}
        k = self.key("v", fld)
        for v in val if op in ("in", "not_in") else [val]:
            self._point(k, v)
        if op in ("eq", "ne"):
            equal = (op == "eq") != neg
            return {k: val} if equal else {"$neq": {k: val}}
        if op in ("in", "not_in"):
            member = (op == "in") != neg
            return _join("$or", [{k: v} for v in val]) if member else _join("$and", [{"$neq": {k: v}} for v in val])
        self._point(k, val)
        return {(_NEGATE if neg else _POS)[op]: {k: val}}

    def _point(self, k: str, v: Any) -> None:
        if type(v) is int:
            self.points.setdefault(k, set()).add(v)
        else:  # a non-integer constant: values of this field are passed through unchanged
            self.points.setdefault(k, set()).add(None)  # type: ignore[arg-type]

    def unit_expr(self, u: Unit) -> dict:
        self.used = set()
        parts: list[dict] = [{"lvl": u.level}, {"r_" + u.rule.scope: True}]
        if u.rule.effective_from:
            parts.append({"$gte": {"as_of": _as_int(u.rule.effective_from)}})
            self._point("as_of", _as_int(u.rule.effective_from))
        if u.rule.effective_until:
            parts.append({"$lt": {"as_of": _as_int(u.rule.effective_until)}})
            self._point("as_of", _as_int(u.rule.effective_until))
        parts.append(self.expr(u.cond))
        return {"$and": parts}


def _leaf_test(e: dict) -> tuple:
    """A hashable identity of one durable-rules test: (operator, field, value)."""
    ((k, v),) = e.items()
    if k.startswith("$"):
        ((f, x),) = v.items()
        return (k, f, json.dumps(x))
    return ("$eq", k, json.dumps(v))


def _shape(e: dict) -> int:
    """How many alternatives durable-rules expands expression `e` into (and: product, or: sum, test: 1)."""
    if "$and" in e:
        n = 1
        for c in e["$and"]:
            n *= _shape(c)
        return n
    if "$or" in e:
        return sum(_shape(c) for c in e["$or"])
    return 1


def _paths(e: dict) -> list[tuple[tuple, ...]]:
    """The alternatives of `e`, each the sequence of tests along its path (only call after _shape bounded it)."""
    if "$and" in e:
        out: list[tuple[tuple, ...]] = [()]
        for c in e["$and"]:
            out = [a + b for a in out for b in _paths(c)]
        return out
    if "$or" in e:
        return [p for c in e["$or"] for p in _paths(c)]
    return [(_leaf_test(e),)]


def _field(test: tuple) -> str:
    return test[1] if test[0] != "rule" else "(rule)"


def check_budget(code: str, units: list[tuple[str, dict]]) -> dict[str, int]:
    """Refuse (CompileError) a ruleset that durable-rules could hang on; `units` are (rule id, expression) in the
    order they are defined. Returns the measured counts: siblings (most tests under one node), alternatives, units.

    The model: each alternative is the path of its tests from the root, then its rule; a node's children are the
    distinct next tests (and rules) of the paths through it. See the module doc for the measured limits."""
    if len(units) > MAX_RULESET_UNITS:
        raise CompileError(
            f"{code}: {len(units)} rule variants in one rule set exceed the limit of {MAX_RULESET_UNITS} "
            "(durable-rules fails near 500); split the jurisdiction's rules"
        )
    total = 0
    counts: list[int] = []
    for rid, e in units:
        n = _shape(e)
        if n > MAX_RULE_ALTERNATIVES:
            raise CompileError(
                f"{code}: rule {rid} expands into {n} alternatives (every `in`/`not_in`/`contains_any` "
                f"value and every `any` branch multiplies them), over the limit of "
                f"{MAX_RULE_ALTERNATIVES} per rule; use a list (in_list) or split the rule"
            )
        counts.append(n)
        total += n
        if total > MAX_RULESET_ALTERNATIVES:
            raise CompileError(
                f"{code}: the rules expand into more than {MAX_RULESET_ALTERNATIVES} alternatives in "
                "one rule set; use lists (in_list) or fewer alternatives"
            )
    root: dict = {}
    through: dict[int, Counter] = {}  # id(node) -> rule ids of the paths through it
    for i, (rid, e) in enumerate(units):
        for path in _paths(e):
            node = root
            for t in (*path, ("rule", str(i), "")):
                through.setdefault(id(node), Counter())[rid] += 1
                node = node.setdefault(t, {})
    worst, worst_node = 0, root
    worst_path: tuple[tuple[Any, ...], ...] = ()
    stack: list[tuple[dict, tuple]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if len(node) > worst:
            worst, worst_node, worst_path = len(node), node, path
        stack += [(child, path + (t,)) for t, child in node.items()]
    if worst > MAX_NODE_TESTS:
        fields = Counter(_field(t) for t in worst_node)
        by_rule: Counter = Counter()
        for t, child in worst_node.items():
            for rid in through.get(id(child)) or Counter({units[int(t[1])][0]: 1}):
                by_rule[rid] += 1
        top = ", ".join(f"{r} ({n})" for r, n in by_rule.most_common(3))
        ops = {"$eq": "=", "$neq": "!=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
        after = " and ".join(f"{f} {ops.get(op, op)} {v}" for op, f, v in worst_path) or "the root"
        raise CompileError(
            f"{code}: {worst} tests under one durable-rules node (after {after}) exceed the limit of {MAX_NODE_TESTS} "
            f"(durable-rules hangs at about 512): {', '.join(f'{n} on {f}' for f, n in fields.most_common())}; "
            f"rules contributing most: {top}. Every `in`/`not_in`/`contains_any` value and `any` branch is one "
            "alternative: move the values into a list (in_list) or split the rules"
        )
    return {"siblings": worst, "alternatives": total, "units": len(units)}


def _probe_values(key: str, spec: tuple[str, ...]) -> tuple[Any, Any]:
    """(a value no rule tests for, another) for one fact field, with the type real facts give it."""
    if key.startswith("v_"):
        return (1_000_000_007, 0) if spec[0] in ("hop", "hops", "subjects") else ("~probe~", "ZZ")
    return (False, True)


def check_jurisdiction(rs: RuleSet, code: str) -> dict[str, int]:
    """check_budget for one jurisdiction of `rs`, without touching durable-rules (scenario validation, lint)."""
    prep = prepare(rs.jurisdictions[code])
    comp = _Compiler(rs, prep)
    return check_budget(
        code, [(u.rule.id, comp.unit_expr(u)) for u in prep.units] + [("catch_all", {"$gte": {"lvl": 0}})]
    )


class _Level:
    """What one (level, roles) assertion needs: the fact projection and a cheap test that some unit may match."""

    __slots__ = ("project", "roles", "always", "cats", "sgs", "flags", "eqs", "empty")

    def __init__(self, project: Callable[..., str], units: list[Unit], roles: frozenset[str]):
        self.project = project
        # the role fields of the fact (r_exporter, r_importer, r_origin), the same for every fact of these roles
        self.roles = ("exporter" in roles, "importer" in roles, "origin" in roles)
        self.empty = not units
        self.always = False
        self.cats: set[str] = set()
        self.sgs: set[str] = set()
        self.flags: set[str] = set()
        self.eqs: dict[str, set] = {}
        for u in units:
            g = _guard(u.cond)
            if g is None:
                self.always = True
            elif g[0] == "c":
                self.cats |= g[1]
            elif g[0] == "s":
                self.sgs |= g[1]
            elif g[0] == "f":
                self.flags |= g[1]
            else:
                self.eqs.setdefault(g[1], set()).update(g[2])

    def may_match(self, env: dict, flags: frozenset[str]) -> bool:
        if self.always:
            return True
        if self.empty:
            return False
        if self.cats and not self.cats.isdisjoint(env["data_categories"]):
            return True
        if self.sgs and not self.sgs.isdisjoint(env["safeguards"]):
            return True
        if self.flags and not self.flags.isdisjoint(flags):
            return True
        return any(env[f] in vals for f, vals in self.eqs.items())


def _guard(cond: dict[str, Any]) -> Optional[tuple]:
    """A necessary condition of `cond` that is cheap to test in Python, or None when there is none.

    Only positive tests reached through `all` count (never under `not` or `any`), so the guard is implied by the
    condition: when a level's guards all fail, no unit of the level can match and the assertion is skipped.
    Preference: a flag (rarest), then a category, a scalar equality, a safeguard."""
    found: list[tuple] = []

    def visit(c: dict[str, Any]) -> None:
        if "all" in c:
            for x in c["all"]:
                visit(x)
        elif "flag" in c:
            found.append((0, "f", {c["flag"]}))
        elif "field" in c:
            op, val = leaf_op(c)
            fld = c["field"]
            if fld in ("data_categories", "safeguards") and op in ("contains", "contains_any", "contains_all"):
                vals = {val} if op == "contains" else set(val)
                if op == "contains_all":
                    vals = {sorted(vals)[0]}
                found.append((1 if fld == "data_categories" else 3, "c" if fld == "data_categories" else "s", vals))
            elif op in ("eq", "in") and fld in ("exporter", "sector", "purpose", "from", "to", "origin", "destination"):
                found.append((2, "e", fld, {val} if op == "eq" else set(val)))

    visit(cond)
    if not found:
        return None
    best = min(found, key=lambda g: (g[0], len(g[-1])))
    return best[1:]


# the roles a fact can carry (plan.facts_for): the origin's exporter, another exporter, the importer
_ROLE_SETS = (frozenset({"exporter", "origin"}), frozenset({"exporter"}), frozenset({"importer"}))


class DurableBackend:
    """Matches facts with durable-rules. Not thread-safe: the Engine serialises calls.

    One durable ruleset per jurisdiction, one long-lived durable state (sid) per ruleset. Every fact of a check
    carries the check's number (`chk`), so no two facts are equal, and every fact asserted during a check is
    retracted when the check ends: a new sid per check plus delete_state costs ~4x more (the C engine allocates
    per-rule node memory for each new state), and the state stays empty between checks (memory flat)."""

    name = "durable"

    def __init__(self, rs: RuleSet, fact_memo: int = 0, fact_memo_bytes: int = 16 * 1024 * 1024):
        """fact_memo: how many (jurisdiction, fact) -> matched units answers to keep (0: none), and fact_memo_bytes
        how many bytes they may take (estimated: the fact's JSON plus a fixed overhead per entry and unit). What
        durable-rules answers for a fact is a pure function of the fact, so a fact seen before (canonical values,
        see _bucket) is answered from the memo; the memo belongs to this backend, so a reload (a new backend)
        starts empty."""
        self.rs = rs
        self.fact_memo = fact_memo
        self.fact_memo_bytes = fact_memo_bytes
        self._memo_size = 0
        self._memo: dict[tuple[str, str], list[Unit]] = {}
        self.memo_hits = 0
        self.prepared: dict[str, Prepared] = {}
        self.ruleset_names: dict[str, str] = {}
        self.getters: dict[str, dict[str, Callable]] = {}
        self._handles: dict[str, int] = {}
        self._rule_of: dict[str, dict[str, int]] = {}
        self._levels: dict[tuple[str, int, frozenset[str]], _Level] = {}
        self._projectors: dict[tuple[str, tuple[str, ...]], Callable[..., str]] = {}
        self._level_src: dict[str, tuple[_Compiler, dict[int, set[str]]]] = {}
        self._sid = f"p{next(_names)}"
        self._live: set[int] = set()  # rulesets with a state under self._sid (deleted on close)
        self._chk = itertools.count()
        self._check = 0
        self._asserted: list[tuple[int, str]] = []
        self._closed = False
        self.skipped = 0
        self.asserted = 0
        definitions: dict[str, tuple[str, dict]] = {}
        texts: dict[str, str] = {}
        for code, j in sorted(rs.jurisdictions.items()):
            prep = prepare(j)
            self.prepared[code] = prep
            if not prep.units:
                continue
            comp = _Compiler(rs, prep)
            definition = {}
            keys_of: dict[int, set[str]] = {}
            for u in prep.units:
                definition[f"u{u.index}"] = {"all": [{"m": comp.unit_expr(u)}]}
                keys_of[u.index] = comp.used
            definition["catch_all"] = {"all": [{"m": {"$gte": {"lvl": 0}}}]}
            texts[code] = json.dumps(definition, ensure_ascii=False)
            if not _probe.known(texts[code]):  # a definition that passed its trial passed this check before it
                check_budget(
                    code,
                    [(u.rule.id, definition[f"u{u.index}"]["all"][0]["m"]) for u in prep.units]
                    + [("catch_all", definition["catch_all"]["all"][0]["m"])],
                )
            name = f"{code}_{rs.hash[:12]}_{next(_names)}"
            definitions[code] = (name, definition)
            self.ruleset_names[code] = name
            self.getters[code] = comp.getters
            self._level_src[code] = (comp, keys_of)
            self._rule_of[code] = {**{f"u{u.index}": u.index for u in prep.units}, "catch_all": -1}
        # a definition this process has not seen pass is first tried in a child process with a timeout, so that a
        # durable-rules failure mode that check_budget does not know can never hang this process
        _probe.probe(
            {
                code: (
                    texts[code],
                    _probe.probe_facts(
                        sorted({u.level for u in self.prepared[code].units}),
                        {k: _probe_values(k, comp.specs[k]) for k in comp.getters},
                    ),
                )
                for code, (comp, _) in self._level_src.items()
            }
        )
        for code, (name, _definition) in definitions.items():
            try:
                self._handles[code] = _dre.create_ruleset(name, texts[code])
            except Exception as e:  # the C engine rejects the definition
                self.close()
                raise CompileError(f"durable-rules refused the compiled rule set of {code}: {e}") from e
        # the fact projection of every (level, roles) a fact can meet, built now rather than on the first check
        for code in self._handles:
            for roles in _ROLE_SETS:
                for level in self.prepared[code].levels_for(roles):
                    self._level(code, level, roles)

    def _level(self, code: str, level: int, roles: frozenset[str]) -> _Level:
        key = (code, level, roles)
        lv = self._levels.get(key)
        if lv is None:
            comp, keys_of = self._level_src[code]
            units = [u for u in self.prepared[code].units if u.level == level and u.rule.scope in roles]
            # the fields the units of this level and roles test. Units of other roles are in the same ruleset, but
            # each tests its role field (r_<scope>) right after the level, so it cannot match a fact of other roles
            # whatever that fact leaves out (a missing field only makes a test fail). Shared by equal key sets.
            keys = tuple(sorted(set().union(*(keys_of[u.index] for u in units))))
            project = self._projectors.get((code, keys))
            if project is None:
                project = self._projectors[(code, keys)] = _projector(comp, list(keys))
            lv = self._levels[key] = _Level(project, units, roles)
        return lv

    def close(self) -> None:
        """Free the C rulesets (after a reload). Only call when no check is running: the Engine holds its lock."""
        if self._closed:
            return
        self._closed = True
        # the long-lived state of each ruleset first: delete_ruleset alone leaves it allocated in the C engine
        # (measured: ~0.3 MiB per ruleset with one state, never freed; with delete_state first, RSS stays flat over
        # 2,000 create/assert/delete cycles). Only states durable-rules handled are deleted (see the module doc).
        for h in self._live:
            try:  # noqa: SIM105 - best effort on teardown, as below
                _dre.delete_state(h, self._sid)
            except Exception:  # pragma: no cover - best effort on teardown
                pass
        self._live = set()
        for h in self._handles.values():
            try:  # noqa: SIM105 - best effort on teardown, as below
                _dre.delete_ruleset(h)
            except Exception:  # pragma: no cover - best effort on teardown
                pass
        self._handles = {}

    def begin(self) -> None:
        if self._closed:
            raise EvaluationError("this rule set was unloaded (reloaded); use the engine's current backend")
        self._check = next(self._chk)
        self._asserted = []

    def end(self) -> None:
        asserted, self._asserted = self._asserted, []
        try:
            # one retract_facts call per ruleset for all the facts this check asserted there
            by_handle: dict[int, list[str]] = {}
            for h, fact in asserted:
                by_handle.setdefault(h, []).append(fact)
            for h, facts in by_handle.items():
                res = (
                    _dre.retract_fact(h, facts[0]) if len(facts) == 1 else _dre.retract_facts(h, f"[{','.join(facts)}]")
                )
                if res[0] != 0:
                    raise EvaluationError(f"durable-rules returned status {res[0]} retracting facts")
                _drain(h, res[1])
        except Exception:
            # leave the state behind rather than risk stale facts in the next check: move to a fresh sid
            old, self._sid = self._sid, f"p{next(_names)}"
            self._live = set()
            for h in {h for h, _ in asserted}:
                try:  # noqa: SIM105
                    _dre.delete_state(h, old)
                except Exception:  # pragma: no cover
                    pass
            raise

    def match(self, fact: Fact, level: int, flags: frozenset[str]) -> list[Unit]:
        code = fact.jurisdiction
        h = self._handles.get(code)
        if h is None:
            return []
        lv = self._level(code, level, fact.roles)
        if not lv.may_match(fact.env, flags):
            self.skipped += 1
            return []
        on = fact.as_of
        body = lv.project(fact.env, flags, on, level, fact.hop, _as_int(on), *lv.roles)
        if self.fact_memo:
            known = self._memo.get((code, body))
            if known is not None:
                self.memo_hits += 1
                return known
        self.asserted += 1
        msg = f'{{"sid":"{self._sid}","chk":{self._check},{body[1:]}'
        res = _dre.assert_fact(h, msg)
        if res[0] != 0:
            # never touch a state durable-rules did not handle (deleting one segfaults, see the module doc): leave it
            # behind, leaked, and continue on a fresh sid so no later check sees what it may hold
            self._sid = f"p{next(_names)}"
            self._live = set()
            what = {
                1: "did not handle a fact despite the catch-all rule",
                2: "saw the same fact asserted twice in one check",
            }.get(res[0], f"returned status {res[0]}")
            raise EvaluationError(f"{code}: durable-rules {what}")
        self._asserted.append((h, msg))
        self._live.add(h)  # a state that durable-rules handled exists for this ruleset under the current sid
        state = res[1]
        rule_of = self._rule_of[code]
        hits: set[int] = set()
        caught = 0
        unknown: list[str] = []
        action = _dre.start_action_for_state(h, state)
        message = action[1] if action else None
        while message:  # drain every pending action, even after an anomaly: a state with pending actions must not
            rule = message[2 : message.index('"', 2)]  # be deleted.  message: {"<rule name>": {...}}
            i = rule_of.get(rule)
            if i is None:
                unknown.append(rule)
            elif i < 0:
                caught += 1
            else:
                hits.add(i)
            message = _dre.complete_and_start_action(h, state)
        if unknown:
            raise EvaluationError(f"{code}: durable-rules reported unknown rules {unknown!r}")
        if caught != 1:
            # the catch-all matches every fact exactly once: anything else means the fact was not (fully) processed
            raise EvaluationError(f"{code}: durable-rules ran the catch-all rule {caught} times for one fact")
        units = self.prepared[code].units
        # durable-rules expands `$or` into alternatives and runs the action once per alternative that matches:
        # a rule is a predicate, so it counts once per fact
        matched = [units[i] for i in sorted(hits)]
        if self.fact_memo:
            size = 200 + 2 * len(body) + 8 * len(matched)  # key tuple, the str (UCS-1/2), the list
            if len(self._memo) >= self.fact_memo or self._memo_size + size > self.fact_memo_bytes:
                self._memo.clear()
                self._memo_size = 0
            if size <= self.fact_memo_bytes:
                self._memo[(code, body)] = matched
                self._memo_size += size
        return matched


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _drain(h: int, state: int) -> None:
    action = _dre.start_action_for_state(h, state)
    message = action[1] if action else None
    while message:
        message = _dre.complete_and_start_action(h, state)


def _bucket(points: set) -> Optional[Callable[[Any], Any]]:
    """A canonical value for an integer field: the representative of its region between the constants the rules
    compare it with (equal to a constant: itself; between two: the lower one + 1; below all: the lowest - 1; above
    all: the highest + 1). Every comparison with those constants gives the same answer for the value and its
    representative, so the fact durable-rules sees, and the memo key, are the same for, say, 1,234 and 4,321 subjects
    when no rule separates them. None: pass values through (a non-integer constant is involved)."""
    if None in points:
        return None
    if not points:
        return lambda x: 0
    ts = sorted(points)
    n = len(ts)

    def canon(x: Any) -> Any:
        if type(x) is not int:
            return x
        i = bisect_left(ts, x)
        if i < n and ts[i] == x:
            return x
        return ts[0] - 1 if i == 0 else ts[i - 1] + 1

    return canon


_STR_JSON: dict[str, str] = {}


def _json_value(x: Any) -> str:
    """The JSON text of one fact value, exactly as _encode writes it (strings are memoised: they are codes and
    vocabulary values)."""
    t = type(x)
    if t is str:
        hit = _STR_JSON.get(x)
        if hit is None:
            if len(_STR_JSON) > 65536:
                _STR_JSON.clear()
            hit = _STR_JSON[x] = _encode(x)
        return hit
    if x is True:
        return "true"
    if x is False:
        return "false"
    if x is None:
        return "null"
    if t is int:
        return int.__repr__(x)
    return _encode(x)  # anything else as the encoder writes it (or refuses it)


def _projector(comp: _Compiler, keys: list[str]) -> Callable[..., str]:
    """Generate one function writing the fact for one level as JSON text (what _encode would write for the dict of
    the same keys, in the same order): only the fields that level's rules test, instead of one getter call per field
    of the jurisdiction, and no dict or per-fact encoder. Integer fields take their canonical value (_bucket). List
    membership is memoised (lists are immutable). The check's sid and number are added by the caller."""
    ns: dict[str, Any] = {"_T": "true", "_F": "false", "_j": _json_value}
    asof = _bucket(comp.points.get("as_of", set()))
    ns["_b_as_of"] = asof
    # an f-string whose expressions name only bound constants (no quotes inside them); the JSON keys are _safe()
    # names ([A-Za-z0-9_]), so they need no escaping
    parts = [
        '{{"lvl":{_j(lvl)},"hop":{_j(hop)},"as_of":{_j(_b_as_of(as_of))},"r_exporter":{_T if r_exporter else _F},'
        '"r_importer":{_T if r_importer else _F},"r_origin":{_T if r_origin else _F}'
    ]
    memo: dict[tuple, bool] = {}
    rs, code = comp.rs, comp.code

    def member(ref: str, value: str, on: date) -> bool:
        k = (ref, value, on)
        hit = memo.get(k)
        if hit is None:
            if len(memo) > 65536:
                memo.clear()
            hit = memo[k] = list_member(rs, code, ref, value, on)
        return hit

    fields: dict[str, str] = {}  # field -> the local holding env[field] (read once per fact)

    def local(fld: str) -> str:
        name = fields.get(fld)
        if name is None:
            name = fields[fld] = f"_x{len(fields)}"
            ns[f"_f{name}"] = fld
        return name

    for i, k in enumerate(keys):
        if not re.fullmatch(r"[A-Za-z0-9_]+", k):  # pragma: no cover - key() builds them from _safe() parts
            raise CompileError(f"internal error: fact key {k!r} is not a plain name")
        kind = k.partition("_")[0]
        spec = comp.specs[k]
        if kind == "v":
            (fld,) = spec
            expr = local(fld)
            canon = _bucket(comp.points.get(k, {None}))
            if canon is not None:
                ns[f"_b{i}"] = canon
                expr = f"_b{i}({expr})"
            expr = f"_j({expr})"
        elif kind in ("c", "s"):
            fld, val = spec
            ns[f"_v{i}"] = val
            expr = f"_T if _v{i} in {local(fld)} else _F"
        elif kind == "l":
            fld, ref = spec
            ns[f"_v{i}"] = ref
            expr = f"_j(_member(_v{i}, {local(fld)}, on))"
        elif kind == "o":
            fld, *vals = spec
            ns[f"_f{i}"], ns[f"_v{i}"] = fld, tuple(vals)
            expr = f"_j(_only(_f{i}, _v{i}, env, _rs))"
        else:
            (flag,) = spec
            ns[f"_v{i}"] = flag
            expr = f"_T if _v{i} in flags else _F"
        parts.append(f',"{k}":{{{expr}}}')
    parts.append("}}")
    ns["_member"] = member
    ns["_only"] = only_holds
    ns["_rs"] = rs
    src = "def project(env, flags, on, lvl, hop, as_of, r_exporter, r_importer, r_origin):\n"
    # the fields in the order the keys first need them: a missing one raises KeyError as the dict projection did
    src += "".join(f"    {name} = env[_f{name}]\n" for name in fields.values())
    src += "    return f'" + "".join(parts) + "'\n"
    exec(src, ns)  # noqa: S102 - source built from validated rule data; constants are bound by name, never inlined
    return ns["project"]
