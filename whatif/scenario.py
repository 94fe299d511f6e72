"""What-if scenarios: a YAML/JSON file that overlays the baseline rule set and the request facts.

```yaml
name: EU adequacy for Indonesia
as_of: 2026-06-01                      # optional: judge every request as of this date
facts:                                 # changes to request facts, in order; `where` narrows which requests
  - where: {destination: ASEAN}        # a string is a list/group reference (ASEAN, EU.adequacy), a list is codes
    add_safeguards: [asean_mcc]
    remove_safeguards: []
    add_data_categories: []
    remove_data_categories: []
    subjects: 500000                   # set a scalar fact: subjects, exporter, sector, purpose
law:                                   # changes to the law, applied in this order:
  lists:                               # 1. list membership (remove first, then add; add replaces a code's entries)
    - {list: EU.adequacy, add: [{code: ID, from: 2026-01-01}], remove: []}
  disable_rules: [VN-PDPL-20-impact-assessment]   # 2. rules removed
  add_rules:                           # 3. new rules, in the rule-file language plus `jurisdiction` and `domain`
    - {jurisdiction: VN, domain: data_protection, id: VN-new, ...}
  law_dates:                           # 4. move a law's dates; rules citing it that took its dates move with it
    - {law: VN.PDPL, effective_from: 2027-01-01}
  rule_dates:                          # 5. move one rule's window (null clears a bound)
    - {rule: VN-tia, effective_from: 2027-01-01}
```

A scenario is validated like a rule file (cerberus schema, then every reference resolved against the baseline),
and every problem is reported at once, naming the file and the field.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ..rules import schema as S
from ..rules.dump import rule_doc
from ..rules.loader import Problem, _flatten_errors, _UniqueKeyLoader, check_meaning
from ..rules.model import DEFAULT_SCOPE, Citation, CodeList, Member, Obligation, Rule, RuleSet

# -- schema -------------------------------------------------------------------------------------------------------
_CODES = {"type": "list", "schema": {"type": "string", "regex": S.CODE_RE}}
_WHERE_VALUE = {"anyof": [{"type": "string", "regex": r"^([A-Z]{2}\.)?[A-Za-z][A-Za-z0-9_]*$"}, _CODES]}
_NAMES = {"type": "list", "schema": {"type": "string"}}
FACT_CHANGE = {
    "type": "dict",
    "schema": {
        "where": {"type": "dict", "schema": {"origin": _WHERE_VALUE, "destination": _WHERE_VALUE}},
        "add_safeguards": _NAMES,
        "remove_safeguards": _NAMES,
        "add_data_categories": _NAMES,
        "remove_data_categories": _NAMES,
        "subjects": {"type": "integer", "min": 0, "nullable": True},
        "exporter": {"type": "string"},
        "sector": {"type": "string"},
        "purpose": {"type": "string"},
    },
}
_MEMBER_OR_CODE = {"anyof": [{"type": "string", "regex": S.CODE_RE}, S.MEMBER]}
LIST_CHANGE = {
    "type": "dict",
    "schema": {
        "list": {"type": "string", "required": True, "regex": r"^([A-Z]{2}\.)?[A-Za-z][A-Za-z0-9_]*$"},
        "add": {"type": "list", "schema": _MEMBER_OR_CODE},
        "remove": _CODES,
        "from": S.DATE,
        "until": S.DATE,
    },
}
_ADDED_RULE = {
    "type": "dict",
    "schema": {
        **S.RULE["schema"],
        "jurisdiction": {"type": "string", "required": True, "regex": S.CODE_RE},
        "domain": {"type": "string", "required": True, "allowed": S.DOMAINS},
    },
}
SCENARIO_FILE = {
    "name": {"type": "string", "required": True, "empty": False},
    "description": {"type": "string"},
    "as_of": {"type": "date", "nullable": True},
    "facts": {"type": "list", "schema": FACT_CHANGE},
    "law": {
        "type": "dict",
        "schema": {
            "lists": {"type": "list", "schema": LIST_CHANGE},
            "disable_rules": {"type": "list", "schema": {"type": "string"}},
            "add_rules": {"type": "list", "schema": _ADDED_RULE},
            "law_dates": {
                "type": "list",
                "schema": {
                    "type": "dict",
                    "schema": {
                        "law": {
                            "type": "string",
                            "required": True,
                            "regex": r"^[A-Z]{2}\.[A-Za-z0-9][A-Za-z0-9_.\-]*$",
                        },
                        "effective_from": S.DATE,
                        "effective_until": S.DATE,
                    },
                },
            },
            "rule_dates": {
                "type": "list",
                "schema": {
                    "type": "dict",
                    "schema": {
                        "rule": {"type": "string", "required": True},
                        "effective_from": S.DATE,
                        "effective_until": S.DATE,
                    },
                },
            },
        },
    },
}


# -- bounds: scenarios arrive over HTTP (check scope), so every size is bounded before anything is built ----------
LIMITS = {
    "add_rules": 32,  # rules added by one scenario
    "disable_rules": 256,  # rules disabled
    "lists": 64,  # list changes
    "list_members": 256,  # codes added or removed by one list change
    "facts": 64,  # fact changes
    "fact_values": 64,  # values added or removed by one fact change (per field)
    "law_dates": 64,
    "rule_dates": 256,
    "condition_values": 64,  # values of one in / not_in / contains_any / contains_all test
    "condition_depth": 8,  # nesting of all / any / not
    "condition_nodes": 128,  # tests and all / any / not nodes in one rule's when + unless
    "obligations": 16,  # obligations of one added rule
    "string": 2000,  # characters of any string
    "keys": 64,  # keys of any mapping
}


def _bound_problems(doc: Any, source: str) -> list[Problem]:
    """Problems with the sizes of a scenario document (before schema checks), each naming the field."""
    out: list[Problem] = []

    def bad(fld: str, msg: str) -> None:
        if len(out) < 20:
            out.append(Problem(source, None, fld, msg))

    def walk(x: Any, fld: str, depth: int = 0) -> None:
        if depth > 40:
            bad(fld, "nested too deeply")
        elif isinstance(x, str):
            if len(x) > LIMITS["string"]:
                bad(fld, f"a string of {len(x)} characters; at most {LIMITS['string']}")
        elif isinstance(x, dict):
            if len(x) > LIMITS["keys"]:
                bad(fld, f"{len(x)} keys; at most {LIMITS['keys']}")
                return
            for k, v in x.items():
                walk(k, fld, depth + 1)
                walk(v, f"{fld}.{k}" if fld else str(k), depth + 1)
        elif isinstance(x, list):
            if len(x) > 1024:
                bad(fld, f"a list of {len(x)} items; at most 1024")
                return
            for i, v in enumerate(x):
                walk(v, f"{fld}[{i}]", depth + 1)

    def count(fld: str, items: Any, limit: str) -> bool:
        if isinstance(items, list) and len(items) > LIMITS[limit]:
            bad(fld, f"{len(items)} items; at most {LIMITS[limit]}")
            return False
        return isinstance(items, list)

    def cond(c: Any, fld: str, depth: int, nodes: list[int]) -> None:
        nodes[0] += 1
        if not isinstance(c, dict):
            return
        if depth > LIMITS["condition_depth"]:
            bad(fld, f"conditions nested {depth} deep; at most {LIMITS['condition_depth']}")
            return
        for key in ("all", "any"):
            if isinstance(c.get(key), list):
                for i, x in enumerate(c[key]):
                    cond(x, f"{fld}.{key}[{i}]", depth + 1, nodes)
        if "not" in c:
            cond(c["not"], f"{fld}.not", depth + 1, nodes)
        for op in S.LIST_VALUED_OPS:
            if isinstance(c.get(op), list) and len(c[op]) > LIMITS["condition_values"]:
                bad(
                    f"{fld}.{op}",
                    f"{len(c[op])} values; at most {LIMITS['condition_values']} (each value is one "
                    "alternative the engine must match; use a list reference with in_list)",
                )

    walk(doc, "")
    if out:
        return out
    for i, fc in enumerate(doc.get("facts") or [] if count("facts", doc.get("facts"), "facts") else []):
        if isinstance(fc, dict):
            for k in ("add_safeguards", "remove_safeguards", "add_data_categories", "remove_data_categories"):
                count(f"facts[{i}].{k}", fc.get(k), "fact_values")
            for k in ("origin", "destination"):
                where = fc.get("where")
                if isinstance(where, dict):
                    count(f"facts[{i}].where.{k}", where.get(k), "list_members")
    law = doc.get("law")
    if isinstance(law, dict):
        for k in ("add_rules", "disable_rules", "lists", "law_dates", "rule_dates"):
            count(f"law.{k}", law.get(k), k)
        for i, lc in enumerate(law.get("lists") or [] if isinstance(law.get("lists"), list) else []):
            if isinstance(lc, dict):
                count(f"law.lists[{i}].add", lc.get("add"), "list_members")
                count(f"law.lists[{i}].remove", lc.get("remove"), "list_members")
        rules = law.get("add_rules")
        for i, r in enumerate(rules if isinstance(rules, list) and len(rules) <= LIMITS["add_rules"] else []):
            if not isinstance(r, dict):
                continue
            nodes = [0]
            for part in ("when", "unless"):
                if part in r:
                    cond(r[part], f"law.add_rules[{i}].{part}", 1, nodes)
            if nodes[0] > LIMITS["condition_nodes"]:
                bad(f"law.add_rules[{i}].when", f"{nodes[0]} condition nodes; at most {LIMITS['condition_nodes']}")
            then = r.get("then")
            if isinstance(then, dict):
                count(f"law.add_rules[{i}].then.obligations", then.get("obligations"), "obligations")
    return out


class ScenarioError(ValueError):
    """A scenario that failed validation; `problems` lists every problem (file, field, message)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the scenario:\n" + "\n".join(f"  - {p}" for p in problems))


# -- model --------------------------------------------------------------------------------------------------------
class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FactChange(Frozen):
    where: dict[str, Any] = {}
    add_safeguards: tuple[str, ...] = ()
    remove_safeguards: tuple[str, ...] = ()
    add_data_categories: tuple[str, ...] = ()
    remove_data_categories: tuple[str, ...] = ()
    subjects: Optional[int] = Field(None, description="set the number of subjects (null in the file: leave as is)")
    exporter: Optional[str] = None
    sector: Optional[str] = None
    purpose: Optional[str] = None


class ListChange(Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    list: str
    add: tuple[Any, ...] = ()
    remove: tuple[str, ...] = ()
    from_: Optional[date] = Field(None, alias="from")
    until: Optional[date] = None


class LawChanges(Frozen):
    lists: tuple[ListChange, ...] = ()
    disable_rules: tuple[str, ...] = ()
    add_rules: tuple[dict[str, Any], ...] = ()
    law_dates: tuple[dict[str, Any], ...] = ()
    rule_dates: tuple[dict[str, Any], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.lists or self.disable_rules or self.add_rules or self.law_dates or self.rule_dates)


class Scenario(Frozen):
    name: str = "baseline"
    description: Optional[str] = None
    as_of: Optional[date] = None
    facts: tuple[FactChange, ...] = ()
    law: LawChanges = LawChanges()
    source: Optional[str] = Field(None, exclude=True)

    # -- what it changes -----------------------------------------------------------------------------------------
    def summary(self) -> list[str]:
        """One line per change, in plain words (for reports)."""
        out: list[str] = []
        if self.as_of:
            out.append(f"judge every transfer as of {self.as_of}")
        for fc in self.facts:
            where = " and ".join(f"{k} in {v if isinstance(v, str) else ', '.join(v)}" for k, v in fc.where.items())
            parts = [
                f"add safeguards {', '.join(fc.add_safeguards)}" if fc.add_safeguards else "",
                f"remove safeguards {', '.join(fc.remove_safeguards)}" if fc.remove_safeguards else "",
                f"add data {', '.join(fc.add_data_categories)}" if fc.add_data_categories else "",
                f"remove data {', '.join(fc.remove_data_categories)}" if fc.remove_data_categories else "",
            ]
            parts += [
                f"set {k} = {getattr(fc, k)}"
                for k in ("subjects", "exporter", "sector", "purpose")
                if getattr(fc, k) is not None
            ]
            out.append("; ".join(p for p in parts if p) + (f" (where {where})" if where else " (every transfer)"))
        for lc in self.law.lists:
            codes = [a if isinstance(a, str) else a.get("code") for a in lc.add]
            if lc.add:
                out.append(f"add {', '.join(codes)} to list {lc.list}" + (f" from {lc.from_}" if lc.from_ else ""))
            if lc.remove:
                out.append(f"remove {', '.join(lc.remove)} from list {lc.list}")
        out += [f"disable rule {r}" for r in self.law.disable_rules]
        out += [
            f"add rule {r['id']} ({r['jurisdiction']}, {r['then'].get('effect') or 'derive'})"
            for r in self.law.add_rules
        ]
        for d in self.law.law_dates:
            out.append(
                f"move law {d['law']}: "
                + ", ".join(f"{k} = {d[k]}" for k in ("effective_from", "effective_until") if k in d)
            )
        for d in self.law.rule_dates:
            out.append(
                f"move rule {d['rule']}: "
                + ", ".join(f"{k} = {d[k]}" for k in ("effective_from", "effective_until") if k in d)
            )
        return out

    @property
    def empty(self) -> bool:
        return self.as_of is None and not self.facts and self.law.empty

    # -- applying ------------------------------------------------------------------------------------------------
    def apply_law(self, rs: RuleSet) -> RuleSet:
        """The baseline rule set with this scenario's law changes. Returns `rs` itself when there are none."""
        if self.law.empty:
            return rs
        return _apply_law(self.law, rs)

    def apply_request(self, request: dict[str, Any], rs: RuleSet, today: Optional[date] = None) -> dict[str, Any]:
        """A request (dict form) with this scenario's fact changes and as_of. `rs` resolves `where` lists."""
        r = dict(request)
        if self.as_of:
            r["as_of"] = self.as_of
        on = _as_date(r.get("as_of")) or today or date.today()
        alias_of = {m: bloc for bloc, members in rs.aliases.items() for m in members}
        for fc in self.facts:
            if not all(_matches(rs, alias_of, str(r.get(k, "")).upper(), v, on) for k, v in fc.where.items()):
                continue
            for fld, add, rem in (
                ("safeguards", fc.add_safeguards, fc.remove_safeguards),
                ("data_categories", fc.add_data_categories, fc.remove_data_categories),
            ):
                if add or rem:
                    cur = [x for x in (r.get(fld) or ()) if x not in rem]
                    r[fld] = cur + [x for x in add if x not in cur]
            for k in ("subjects", "exporter", "sector", "purpose"):
                if getattr(fc, k) is not None:
                    r[k] = getattr(fc, k)
        return r

    def inverse(self, baseline: RuleSet) -> Scenario:
        """The scenario that undoes this one: law changes exactly (relative to `baseline`); fact changes by swapping
        adds and removes (exact for requests that did not hold what is added and did hold what is removed).
        Setting a scalar fact or `as_of` cannot be undone without the original value: ScenarioError."""
        bad = [
            k for fc in self.facts for k in ("subjects", "exporter", "sector", "purpose") if getattr(fc, k) is not None
        ]
        if self.as_of or bad:
            raise ScenarioError(
                [
                    Problem(
                        self.source or "<scenario>",
                        None,
                        "as_of" if self.as_of else f"facts.{bad[0]}",
                        "setting a value cannot be inverted without the original value",
                    )
                ]
            )
        facts = tuple(
            FactChange(
                where=fc.where,
                add_safeguards=fc.remove_safeguards,
                remove_safeguards=fc.add_safeguards,
                add_data_categories=fc.remove_data_categories,
                remove_data_categories=fc.add_data_categories,
            )
            for fc in reversed(self.facts)
        )
        return Scenario(name=f"inverse of {self.name}", facts=facts, law=law_delta(self.apply_law(baseline), baseline))


def _as_date(v: Any) -> Optional[date]:
    if v is None or isinstance(v, date):
        return v
    return date.fromisoformat(str(v))


def _matches(rs: RuleSet, alias_of: dict[str, str], code: str, where: Any, on: date) -> bool:
    code = alias_of.get(code, code)
    if isinstance(where, str):
        return resolve_list(rs, where).contains(code, on)
    return code in {alias_of.get(c, c) for c in where}


def resolve_list(rs: RuleSet, ref: str) -> CodeList:
    """A list reference without an owner: `ASEAN` (a group) or `EU.adequacy` (a jurisdiction's list)."""
    if "." in ref:
        code, name = ref.split(".", 1)
        return rs.jurisdictions[code].lists[name]
    return rs.groups[ref]


def _list_refs(rs: RuleSet) -> list[str]:
    return sorted(rs.groups) + sorted(f"{c}.{n}" for c, j in rs.jurisdictions.items() for n in j.lists)


def _replace_list(rs: RuleSet, ref: str, lst: CodeList) -> RuleSet:
    if "." in ref:
        code, name = ref.split(".", 1)
        j = rs.jurisdictions[code]
        return rs.model_copy(
            update={"jurisdictions": {**rs.jurisdictions, code: j.model_copy(update={"lists": {**j.lists, name: lst}})}}
        )
    return rs.model_copy(update={"groups": {**rs.groups, ref: lst}})


def _member(item: Any, lc: ListChange) -> Member:
    if isinstance(item, str):
        return Member(code=item, from_=lc.from_, until=lc.until)
    return Member(**item)


def added_rule(doc: dict[str, Any], rs: RuleSet) -> Rule:
    """A rule from the scenario's `add_rules`, built as the loader builds one (window defaults to its law's)."""
    j = rs.jurisdictions[doc["jurisdiction"]]
    law = j.laws.get(doc["citation"]["law"])
    then = doc["then"]
    return Rule(
        id=doc["id"],
        jurisdiction=doc["jurisdiction"],
        domain=doc["domain"],
        title=doc["title"],
        scope=doc.get("scope") or DEFAULT_SCOPE[doc["domain"]],
        citation=Citation(**doc["citation"]),
        effective_from=doc.get("effective_from") or (law.effective_from if law else None),
        effective_until=doc.get("effective_until") or (law.effective_until if law else None),
        confidence=doc["confidence"],
        note=doc.get("note"),
        when=doc["when"],
        unless=doc.get("unless"),
        effect=then.get("effect"),
        obligations=tuple(Obligation(**o) for o in then.get("obligations", [])),
        derive=tuple(then.get("derive", [])),
    )


def _set_rules(rs: RuleSet, code: str, rules: tuple[Rule, ...]) -> RuleSet:
    j = rs.jurisdictions[code]
    return rs.model_copy(update={"jurisdictions": {**rs.jurisdictions, code: j.model_copy(update={"rules": rules})}})


def _apply_law(law: LawChanges, rs: RuleSet) -> RuleSet:
    for lc in law.lists:
        lst = resolve_list(rs, lc.list)
        new = tuple(_member(a, lc) for a in lc.add)
        drop = set(lc.remove) | {m.code for m in new}
        rs = _replace_list(
            rs, lc.list, lst.model_copy(update={"members": tuple(m for m in lst.members if m.code not in drop) + new})
        )
    disabled = set(law.disable_rules)
    for code, j in rs.jurisdictions.items():
        if any(r.id in disabled for r in j.rules):
            rs = _set_rules(rs, code, tuple(r for r in j.rules if r.id not in disabled))
    for doc in law.add_rules:
        r = added_rule(doc, rs)
        rs = _set_rules(rs, r.jurisdiction, rs.jurisdictions[r.jurisdiction].rules + (r,))
    for d in law.law_dates:
        code, key = d["law"].split(".", 1)
        j = rs.jurisdictions[code]
        old = j.laws[key]
        upd: dict[str, Any] = {k: d[k] for k in ("effective_from", "effective_until") if k in d}
        rules = []
        for r in j.rules:
            if r.citation.law == key:
                ru = {k: v for k, v in upd.items() if getattr(r, k) == getattr(old, k)}
                r = r.model_copy(update=ru) if ru else r
            rules.append(r)
        j = j.model_copy(update={"laws": {**j.laws, key: old.model_copy(update=upd)}, "rules": tuple(rules)})
        rs = rs.model_copy(update={"jurisdictions": {**rs.jurisdictions, code: j}})
    for d in law.rule_dates:
        r = rs.rule(d["rule"])
        upd = {k: d[k] for k in ("effective_from", "effective_until") if k in d}
        rs = _set_rules(
            rs,
            r.jurisdiction,
            tuple(x.model_copy(update=upd) if x.id == r.id else x for x in rs.jurisdictions[r.jurisdiction].rules),
        )
    return rs


def law_delta(a: RuleSet, b: RuleSet) -> LawChanges:
    """Law changes that turn rule set `a` into `b` (same jurisdictions and groups; lists, rules, dates may differ)."""
    lists = []
    for ref in _list_refs(b):
        la, lb = resolve_list(a, ref), resolve_list(b, ref)
        if la == lb:
            continue
        codes = {m.code for m in la.members} | {m.code for m in lb.members}
        changed = sorted(
            c for c in codes if [m for m in la.members if m.code == c] != [m for m in lb.members if m.code == c]
        )
        add = [m.model_dump(mode="python", by_alias=True, exclude_none=True) for m in lb.members if m.code in changed]
        remove = [c for c in changed if not any(m.code == c for m in lb.members)]
        lists.append(ListChange(list=ref, add=tuple(add), remove=tuple(remove)))
    ra = {r.id: r for r in a.all_rules()}
    rb = {r.id: r for r in b.all_rules()}
    dates = ("effective_from", "effective_until")
    disable, add, rule_dates = [], [], []
    for rid in sorted(ra.keys() | rb.keys()):
        x, y = ra.get(rid), rb.get(rid)
        if x == y:
            continue
        if x is not None and y is not None and x.model_copy(update={k: getattr(y, k) for k in dates}) == y:
            rule_dates.append({"rule": rid, **{k: getattr(y, k) for k in dates if getattr(x, k) != getattr(y, k)}})
            continue
        if x is not None:
            disable.append(rid)
        if y is not None:
            add.append(
                {"jurisdiction": y.jurisdiction, "domain": y.domain, **rule_doc(y), **{k: getattr(y, k) for k in dates}}
            )
    law_dates = []
    for code, jb in b.jurisdictions.items():
        for key, lb in jb.laws.items():  # type: ignore[assignment]  # la, lb name lists above
            la = a.jurisdictions[code].laws[key]  # type: ignore[assignment]
            if la != lb:
                law_dates.append({"law": f"{code}.{key}", **{k: getattr(lb, k) for k in dates}})
    # law_dates move rules that shared the law's dates; rule_dates (applied after) pin every rule to b's window
    if law_dates:
        moved = _apply_law(
            LawChanges(
                lists=tuple(lists), disable_rules=tuple(disable), add_rules=tuple(add), law_dates=tuple(law_dates)
            ),
            a,
        )
        rm = {r.id: r for r in moved.all_rules()}
        rule_dates = [
            {"rule": rid, **{k: getattr(y, k) for k in dates}} for rid, y in sorted(rb.items()) if rm[rid] != y
        ]
    return LawChanges(
        lists=tuple(lists),
        disable_rules=tuple(disable),
        add_rules=tuple(add),
        law_dates=tuple(law_dates),
        rule_dates=tuple(rule_dates),
    )


# -- loading and validation ---------------------------------------------------------------------------------------
class _Validator(S.RuleValidator):
    pass


def read_scenario_doc(path: Path) -> Any:
    text = Path(path).read_text(encoding="utf-8")
    return json.loads(text) if Path(path).suffix == ".json" else yaml.load(text, Loader=_UniqueKeyLoader)


def load_scenario(path: Path | str, rs: RuleSet) -> Scenario:
    """Read, schema-check and validate a scenario file against the baseline rule set."""
    path = Path(path)
    try:
        doc = read_scenario_doc(path)
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise ScenarioError([Problem(str(path), None, None, f"cannot be read: {e}")]) from None
    return parse_scenario(doc, rs, source=str(path))


def parse_scenario(doc: Any, rs: RuleSet, source: str = "<scenario>") -> Scenario:
    problems: list[Problem] = []
    if not isinstance(doc, dict):
        raise ScenarioError([Problem(source, None, None, f"expected a mapping at the top, got {type(doc).__name__}")])
    too_big = _bound_problems(doc, source)
    if too_big:
        raise ScenarioError(too_big)
    doc = _dates(doc)
    v = _Validator(SCENARIO_FILE)
    if not v.validate(doc):
        for fld, msg in _flatten_errors(v.errors):
            problems.append(Problem(source, None, fld, msg))
        raise ScenarioError(problems)
    law = doc.get("law") or {}
    sc = Scenario(
        name=doc["name"],
        description=doc.get("description"),
        as_of=doc.get("as_of"),
        facts=tuple(
            FactChange(
                **{
                    k: tuple(v) if isinstance(v, list) and k != "where" else v
                    for k, v in fc.items()
                    if v is not None or k != "subjects"
                }
            )
            for fc in doc.get("facts") or []
        ),
        law=LawChanges(
            lists=tuple(ListChange(**lc) for lc in law.get("lists") or []),
            disable_rules=tuple(law.get("disable_rules") or ()),
            add_rules=tuple(law.get("add_rules") or ()),
            law_dates=tuple(law.get("law_dates") or ()),
            rule_dates=tuple(law.get("rule_dates") or ()),
        ),
        source=source,
    )
    problems += validate(sc, rs, source)
    if problems:
        raise ScenarioError(problems)
    return sc


def _dates(doc: Any) -> Any:
    """JSON has no dates: turn ISO strings under date keys into dates so both formats validate alike."""
    if isinstance(doc, dict):
        return {
            k: (_iso(v) if k in ("as_of", "from", "until", "effective_from", "effective_until") else _dates(v))
            for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [_dates(x) for x in doc]
    return doc


def _iso(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return date.fromisoformat(v)
        except ValueError:
            return v
    return v


def validate(sc: Scenario, rs: RuleSet, source: str = "<scenario>") -> list[Problem]:
    """Every reference of the scenario resolved against the baseline; the changed rule set re-checked."""
    out: list[Problem] = []
    vocab = rs.vocabulary
    refs = _list_refs(rs)

    def bad(fld: str, msg: str, rule_id: Optional[str] = None) -> None:
        out.append(Problem(source, rule_id, fld, msg))

    def check_ref(fld: str, ref: str) -> None:
        try:
            resolve_list(rs, ref)
        except KeyError:
            bad(fld, f"unknown list {ref!r}; expected one of {refs}")

    for i, fc in enumerate(sc.facts):
        for k, w in fc.where.items():
            if isinstance(w, str):
                check_ref(f"facts[{i}].where.{k}", w)
        for fld, valid in (
            ("add_safeguards", vocab.safeguards),
            ("remove_safeguards", vocab.safeguards),
            ("add_data_categories", vocab.data_categories),
            ("remove_data_categories", vocab.data_categories),
        ):
            for x in getattr(fc, fld):
                if x not in valid:
                    bad(f"facts[{i}].{fld}", f"unknown value {x!r}; expected one of {sorted(valid)}")
        for fld in ("exporter", "sector", "purpose"):
            x = getattr(fc, fld)
            if x is not None and x not in vocab.values_for(fld):
                bad(f"facts[{i}].{fld}", f"unknown value {x!r}; expected one of {vocab.values_for(fld)}")
    for i, lc in enumerate(sc.law.lists):
        check_ref(f"law.lists[{i}].list", lc.list)
    ids = {r.id for r in rs.all_rules()}
    for i, rid in enumerate(sc.law.disable_rules):
        if rid not in ids:
            bad(f"law.disable_rules[{i}]", f"unknown rule {rid!r}" + _near(rid, ids))
    for i, d in enumerate(sc.law.rule_dates):
        if d["rule"] not in ids:
            bad(f"law.rule_dates[{i}].rule", f"unknown rule {d['rule']!r}" + _near(d["rule"], ids))
    for i, d in enumerate(sc.law.law_dates):
        code, key = d["law"].split(".", 1)
        if code not in rs.jurisdictions:
            bad(f"law.law_dates[{i}].law", f"unknown jurisdiction {code!r}; expected one of {sorted(rs.jurisdictions)}")
        elif key not in rs.jurisdictions[code].laws:
            bad(
                f"law.law_dates[{i}].law",
                f"unknown law {key!r} of {code}; expected one of {sorted(rs.jurisdictions[code].laws)}",
            )
    remaining = ids - set(sc.law.disable_rules)
    for i, doc in enumerate(sc.law.add_rules):
        code = doc["jurisdiction"]
        if code not in rs.jurisdictions:
            bad(
                f"law.add_rules[{i}].jurisdiction",
                f"no rule set for {code!r}; expected one of {sorted(rs.jurisdictions)}",
                doc["id"],
            )
        elif doc["citation"]["law"] not in rs.jurisdictions[code].laws:
            bad(
                f"law.add_rules[{i}].citation.law",
                f"unknown law {doc['citation']['law']!r}; expected one of {sorted(rs.jurisdictions[code].laws)}",
                doc["id"],
            )
        if doc["id"] in remaining:
            bad(
                f"law.add_rules[{i}].id",
                "a rule with this id exists; disable it in the same scenario to replace it",
                doc["id"],
            )
        remaining.add(doc["id"])
    if out:
        return out
    # the changed rule set must mean something: the loader's semantic checks, attributed to the scenario
    try:
        changed = sc.apply_law(rs)
    except (KeyError, ValueError) as e:
        return [Problem(source, None, "law", f"cannot be applied: {e}")]
    before = {str(p) for p in check_meaning(rs, Path("<baseline>"))}
    added = {d["id"]: i for i, d in enumerate(sc.law.add_rules)}
    for p in check_meaning(changed, Path("<baseline>")):
        if str(p) in before:
            continue
        fld = f"law.add_rules[{added[p.rule_id]}].{p.field}" if p.rule_id in added else f"law ({p.file}: {p.field})"
        out.append(Problem(source, p.rule_id, fld, p.message))
    if out:
        return list(dict.fromkeys(out))
    # what durable-rules would have to hold: refused here (a 422 over HTTP) rather than when an engine is built
    from ..engine.compile import CompileError, check_jurisdiction

    for code in sorted({d["jurisdiction"] for d in sc.law.add_rules}):
        try:
            check_jurisdiction(changed, code)
        except CompileError as e:
            out.append(Problem(source, None, "law.add_rules", str(e)))
    return list(dict.fromkeys(out))


def _near(x: str, options: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(x, sorted(options), n=3)
    return f"; did you mean {', '.join(close)}?" if close else f"; {len(options)} rules exist (dfft rules list)"
