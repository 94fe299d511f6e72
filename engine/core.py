"""The Engine: evaluate a TransferRequest into a Decision.

Evaluation, for each fact (a jurisdiction's view of one leg, in leg order), level by level (stratified forward
chaining): match the rules of that level, add the flags derived, go to the next level. Findings are then assembled
into a Decision; their order is canonical (leg, jurisdiction, rule id), never the engine's firing order, so the
decision is a pure function of the normalised request and the rule set.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date
from typing import Any, Iterable, Literal, Optional

from ..rules.conditions import leaf_op, walk
from ..rules.model import SEVERITY, Rule, RuleSet
from .decision import (VERDICT_OF_SEVERITY, CitationOut, Decision, Finding, ObligationOut, RuleSetRef,
                       TraceEntry)
from .plan import Fact, Unit, facts_for, holds
from .request import Normalised, RequestError, normalise

BackendName = Literal["durable", "reference"]


class EngineError(RuntimeError):
    """An internal failure while judging a request. Never read it as 'allowed'."""


def _backend(rs: RuleSet, name: str) -> Any:
    if name == "durable":
        from .compile import DurableBackend
        return DurableBackend(rs)
    if name == "reference":
        from .reference import ReferenceBackend
        return ReferenceBackend(rs)
    raise ValueError(f"unknown backend {name!r}; expected durable or reference")


class Engine:
    """Judges transfer requests against one rule set. Thread-safe (calls are serialised: the durable-rules C
    extension holds the GIL anyway); scale with processes."""

    def __init__(self, ruleset: RuleSet, backend: BackendName = "durable", cache_size: int = 65536,
                 today: Optional[date] = None):
        self.ruleset = ruleset
        self.hash = ruleset.hash
        self.ref = RuleSetRef(version=ruleset.version, hash=self.hash)
        self.backend = _backend(ruleset, backend)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Decision] = OrderedDict()
        self._lock = threading.Lock()
        self._today = today
        self.hits = 0
        self.misses = 0

    # -- public API -------------------------------------------------------------------------------------------
    def normalise(self, request: Any) -> Normalised:
        return normalise(request, self.ruleset, self._today)

    def check(self, request: Any) -> Decision:
        """Judge one request. Raises RequestError for invalid input and EngineError on internal failure."""
        n = self.normalise(request)
        with self._lock:
            hit = self._cache.get(n.key) if self.cache_size else None
            if hit is not None:
                self._cache.move_to_end(n.key)
                self.hits += 1
                return hit
            self.misses += 1
            try:
                decision = self._evaluate(n)
            except (RequestError, EngineError):
                raise
            except Exception as e:  # fail closed: an internal error never yields a verdict
                raise EngineError(f"internal error while judging the request: {type(e).__name__}: {e}") from e
            if self.cache_size:
                self._cache[n.key] = decision
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return decision

    def check_many(self, requests: Iterable[Any]) -> list[Decision]:
        return [self.check(r) for r in requests]

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- evaluation -------------------------------------------------------------------------------------------
    def _evaluate(self, n: Normalised) -> Decision:
        rs = self.ruleset
        facts = facts_for(n, rs)
        fired: list[tuple[Fact, Unit, tuple[str, ...]]] = []
        trace: list[TraceEntry] = []
        self.backend.begin()
        try:
            for fact in facts:
                prep = self.backend.prepared[fact.jurisdiction]
                flags: frozenset[str] = frozenset()
                for level in prep.levels_for(fact.roles):
                    units = sorted(self.backend.match(fact, level, flags), key=lambda u: (u.rule.id, u.kind))
                    new: set[str] = set()
                    for u in units:
                        if u.kind == "derive":
                            new |= set(u.rule.derive)
                            trace.append(TraceEntry(leg=fact.hop, jurisdiction=fact.jurisdiction, level=level,
                                                    rule_id=u.rule.id, action="derive", flags=u.rule.derive))
                        else:
                            fired.append((fact, u, tuple(sorted(flags))))
                            trace.append(TraceEntry(leg=fact.hop, jurisdiction=fact.jurisdiction, level=level,
                                                    rule_id=u.rule.id, action=u.kind))
                    flags = flags | new
        finally:
            self.backend.end()
        return self._assemble(n, facts, fired, trace)

    def _citation(self, rule: Rule) -> CitationOut:
        law = self.ruleset.jurisdictions[rule.jurisdiction].laws[rule.citation.law]
        return CitationOut(law=rule.citation.law, law_title=law.title, article=rule.citation.article,
                           url=rule.citation.url or law.url)

    def _met_by(self, fact: Fact, rule: Rule, flags: tuple[str, ...]) -> tuple[str, ...]:
        """Explain an exemption: the positive tests of `unless` that hold for this fact."""
        out = []
        for leaf, positive in walk(rule.unless or {}):
            if not positive or not holds(leaf, fact.env, frozenset(flags), self.ruleset, fact.jurisdiction, fact.as_of):
                continue
            if "flag" in leaf:
                out.append(f"flag {leaf['flag']}")
                continue
            op, val = leaf_op(leaf)
            if op in ("contains", "contains_any", "contains_all"):
                vals = [val] if isinstance(val, str) else val
                out += [f"{leaf['field']}: {v}" for v in vals if v in fact.env[leaf["field"]]]
            else:
                out.append(f"{leaf['field']} {op} {val}")
        return tuple(dict.fromkeys(out))

    def _assemble(self, n: Normalised, facts: list[Fact], fired: list[tuple[Fact, Unit, tuple[str, ...]]],
                  trace: list[TraceEntry]) -> Decision:
        findings: list[Finding] = []
        obligations: dict[str, dict[str, Any]] = {}
        order = {(f.jurisdiction, f.hop, f.roles): i for i, f in enumerate(facts)}
        fired.sort(key=lambda x: (x[0].hop, order[(x[0].jurisdiction, x[0].hop, x[0].roles)], x[1].rule.id))
        severity = 0
        for fact, unit, flags in fired:
            rule = unit.rule
            cit = self._citation(rule)
            leg = n.legs[fact.hop]
            common = dict(rule_id=rule.id, jurisdiction=rule.jurisdiction, domain=rule.domain, title=rule.title,
                          leg=fact.hop, leg_path=f"{leg.src}->{leg.dst}", citation=cit,
                          confidence=rule.confidence, note=rule.note)
            if unit.kind == "exempt":
                findings.append(Finding(**common, effect="allow", status="met",
                                        met_by=self._met_by(fact, rule, flags)))
                continue
            assert rule.effect is not None
            severity = max(severity, SEVERITY[rule.effect])
            kind = "ongoing" if rule.effect == "allow" else "gating"
            for ob in rule.obligations:
                entry = obligations.setdefault(ob.id, {"ob": ob, "kind": kind, "rules": [], "citations": []})
                if kind == "gating":
                    entry["kind"] = "gating"
                if rule.id not in entry["rules"]:
                    entry["rules"].append(rule.id)
                    entry["citations"].append(cit)
            findings.append(Finding(**common, effect=rule.effect, status="applies",
                                    obligations=tuple(o.id for o in rule.obligations)))
        consulted = tuple(dict.fromkeys(f.jurisdiction for f in facts))
        if not findings:
            findings.append(Finding(
                rule_id="dfft-no-applicable-rule", jurisdiction=n.request.origin, domain=None, effect="allow",
                status="none", title="No applicable restricting rule in the rule sets of " + ", ".join(consulted),
                leg=None, leg_path=None, citation=None, confidence=None))
        obs = tuple(
            ObligationOut(id=oid, text=e["ob"].text, kind=e["kind"], one_of=e["ob"].one_of, deadline=e["ob"].deadline,
                          rules=tuple(e["rules"]), citations=tuple(e["citations"]))
            for oid, e in sorted(obligations.items(), key=lambda kv: (kv[1]["kind"] != "gating", kv[0]))
        )
        return Decision(
            verdict=VERDICT_OF_SEVERITY[severity], request=n.request, as_of=n.request.as_of, findings=tuple(findings),
            obligations=obs, consulted=consulted, ruleset=self.ref, trace=tuple(trace), notes=n.notes,
            engine=self.backend.name,
        )
