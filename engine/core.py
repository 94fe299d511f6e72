"""The Engine: evaluate a TransferRequest into a Decision.

Evaluation, for each fact (a jurisdiction's view of one leg, in leg order), level by level (stratified forward
chaining): match the rules of that level, add the flags derived, go to the next level. Findings are then assembled
into a Decision; their order is canonical (leg, jurisdiction, rule id), never the engine's firing order, so the
decision is a pure function of the normalised request and the rule set.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from datetime import date
from functools import partial
from typing import Any, Literal, Optional

from ..rules.conditions import leaf_op, walk
from ..rules.model import SEVERITY, Obligation, Rule, RuleSet, ScopeEntry, Uncovered
from .decision import (
    VERDICT_OF_SEVERITY,
    CitationOut,
    CoverageGap,
    Decision,
    Finding,
    NotTransfer,
    ObligationOut,
    RegimeOut,
    RuleSetRef,
    TraceEntry,
)
from .plan import DOMAINS, Fact, ScopePlan, Unit, facts_for, leaf_holds
from .request import Normalised, RequestError, TransferRequest, bare_model, normalise

BackendName = Literal["durable", "reference"]

# Unknown is never allowed: where the bundle declares a period it does not encode (Jurisdiction.uncovered), the
# decision is at least conditional on this gating obligation, met only by a legal review of the transfer under the
# regime that governed it (the safeguard `legal_review`).
LEGAL_REVIEW = "legal_review"
LEGAL_REVIEW_OBLIGATION = Obligation(
    id="dfft-legal-review",
    text="A regime governed this transfer on this date that the rule set does not encode (see the decision's "
    "coverage): have the transfer reviewed under it before relying on this decision",
    one_of=(LEGAL_REVIEW,),
)

# Memo sizes are bounded by (estimated) bytes as well as by count. DFFT_MEMO_BYTES sets the budget of an engine's
# decision memos (the fact memo of its durable backend and its memo of output parts get a quarter each; the API's
# memo of serialised decisions gets the same budget). Default 64 MiB.
DEFAULT_MEMO_BYTES = 64 * 1024 * 1024


def memo_bytes() -> int:
    """The memo budget in bytes: DFFT_MEMO_BYTES (an integer >= 0; 0 disables the byte bound's memos), default 64 MiB."""
    v = os.environ.get("DFFT_MEMO_BYTES")
    if not v:
        return DEFAULT_MEMO_BYTES
    try:
        n = int(v.replace("_", ""))
    except ValueError:
        raise ValueError(f"DFFT_MEMO_BYTES must be a whole number of bytes; got {v!r}") from None
    if n < 0:
        raise ValueError(f"DFFT_MEMO_BYTES must be >= 0; got {n}")
    return n


def decision_bytes(d: Decision) -> int:
    """An estimate of the memory a Decision (with its request) holds, for the memo budgets: measured sizes of the
    pydantic objects are ~1-2 KB per finding or obligation and ~0.4 KB per trace entry. Parts shared between
    decisions are counted in each (an over-estimate: the bound errs on the safe side)."""
    return 2048 + 1536 * len(d.findings) + 1024 * len(d.obligations) + 400 * len(d.trace) + 200 * len(d.notes)


_RAW_ENTRY = 512  # estimated bytes of a raw memo key (a request as given) beyond the decision it points to
_PART_BYTES = 1024  # estimated bytes of one shared output part (a trace entry or finding)


class _Hashed:
    """A memo key whose hash is computed once (a tuple hashes all its items again on every lookup)."""

    __slots__ = ("key", "h")

    def __init__(self, key: Hashable):
        self.key = key
        self.h = hash(key)

    def __hash__(self) -> int:
        return self.h

    def __eq__(self, other: object) -> bool:
        return type(other) is _Hashed and self.h == other.h and self.key == other.key


def _raw_key(request: Any, today: date) -> Optional[Hashable]:
    """A hashable key for a request exactly as given, or None when it has none (then it is normalised first).

    Values keep their type in the key (1, 1.0 and True are equal in Python but must not share an entry), and today's
    date is part of it (a request without `as_of` is judged as of today)."""
    if type(request) is dict:
        items: list[tuple] = []
        append = items.append
        try:
            for k in sorted(request):
                v = request[k]
                t = type(v)
                if t is list or t is tuple:
                    for x in v:
                        if type(x) is not str:
                            return None
                    append((k, tuple, *v))
                else:
                    append((k, t, v))
            return _Hashed((tuple(items), today))  # hashes every value: TypeError when one is unhashable
        except TypeError:  # unsortable keys or unhashable values
            return None
    if isinstance(request, TransferRequest):
        return (request, today)
    return None


_NO_FLAGS: frozenset[str] = frozenset()


def _leaf_test(
    leaf: dict[str, Any], rs: RuleSet, owner: str, env: dict[str, Any], flags: frozenset[str], on: date
) -> bool:
    return leaf_holds(leaf, env, flags, rs, owner, on)


_SPECS: dict[type, tuple[tuple[str, ...], dict[str, Any]]] = {}


def _spec(model: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    spec = _SPECS.get(model)
    if spec is None:
        if model.__pydantic_post_init__ or model.__pydantic_root_model__ or model.model_config.get("extra") == "allow":
            raise EngineError(
                f"internal error: {model.__name__} cannot be built from trusted parts"
            )  # pragma: no cover
        defaults = {}
        for name, f in model.model_fields.items():
            if f.default_factory is not None:  # pragma: no cover - no output model has one
                raise EngineError(f"internal error: {model.__name__}.{name} has a default factory")
            if not f.is_required():
                defaults[name] = f.default
        spec = _SPECS[model] = (tuple(model.model_fields), defaults)
    return spec


def _trusted(model: Any, **values: Any) -> Any:
    """An output part built from values that are already of each field's type (validated rule data, the engine's
    own ints and strings, parts built before): the object model_construct(**values) builds -- __dict__ in field
    order with the defaults of fields not given, those given as the fields set, no extra, no private state --
    without its per-field Python loop, and without validating again. DFFT_VALIDATE_PARTS=1 validates instead (the
    decisions must be the same either way)."""
    if _VALIDATE_PARTS:
        return model(**values)
    names, defaults = _spec(model)
    if len(values) == len(names):  # every field given (the Decision, most parts): KeyError on an unknown one
        return bare_model(model, {name: values[name] for name in names}, set(names))
    d = {}
    given = 0
    for name in names:
        if name in values:
            d[name] = values[name]
            given += 1
        else:
            d[name] = defaults[name]  # KeyError: a required field left out (a bug here, never a verdict)
    if given != len(values):  # pragma: no cover - a bug here, never a verdict
        raise EngineError(f"internal error: unknown fields for {model.__name__}: {sorted(set(values) - set(names))}")
    return bare_model(model, d, set(values))


_VALIDATE_PARTS = os.environ.get("DFFT_VALIDATE_PARTS", "") == "1"


def rule_obs(rule: Rule) -> tuple[str, ...]:
    return tuple(o.id for o in rule.obligations)


class _ReqKey:
    """The decision memo's key: (rule set hash, canonical request), its hash computed once (a TransferRequest hashes
    every field on each call, and a miss looks the key up, stores it and sizes it)."""

    __slots__ = ("rs_hash", "request", "h")

    def __init__(self, rs_hash: str, request: TransferRequest):
        self.rs_hash = rs_hash
        self.request = request
        self.h = hash((rs_hash, request))

    def __hash__(self) -> int:
        return self.h

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is _ReqKey
            and self.h == other.h
            and self.rs_hash == other.rs_hash
            and self.request == other.request
        )


class EngineError(RuntimeError):
    """An internal failure while judging a request. Never read it as 'allowed'."""


def _backend(rs: RuleSet, name: str, cache_size: int = 0, fact_memo_bytes: Optional[int] = None) -> Any:
    if name == "durable":
        from .compile import DurableBackend

        return DurableBackend(
            rs,
            fact_memo=4 * cache_size,
            fact_memo_bytes=memo_bytes() // 4 if fact_memo_bytes is None else fact_memo_bytes,
        )
    if name == "reference":
        from .reference import ReferenceBackend

        return ReferenceBackend(rs)
    raise ValueError(f"unknown backend {name!r}; expected durable or reference")


class Engine:
    """Judges transfer requests against one rule set. Thread-safe (calls are serialised: the durable-rules C
    extension holds the GIL anyway); scale with processes."""

    def __init__(
        self,
        ruleset: RuleSet,
        backend: BackendName = "durable",
        cache_size: int = 65536,
        today: Optional[date] = None,
        memo_budget: Optional[int] = None,
    ):
        self.backend_name = backend
        self.cache_size = cache_size
        # the byte budget of the decision memos (_cache and _raw together); a quarter each for the backend's fact
        # memo and the output parts
        self.memo_budget = memo_bytes() if memo_budget is None else memo_budget
        self._cache_bytes = 0
        self._raw_bytes = 0
        self._sizes: dict[Hashable, int] = {}
        # leases: users that judge with this engine now (see lease()); a retired engine is closed by its last user
        self._users = 0
        self._retired = False
        self._closed = False
        # Two memos, both pure functions of (rule set, request) and both emptied by reload():
        #   _cache: normalised request (the canonical TransferRequest) -> Decision;
        #   _raw:   the request exactly as given (a dict or TransferRequest, with today's date) -> Decision, so a
        #           repeated request skips validation and normalisation as well.
        self._cache: OrderedDict[_ReqKey, Decision] = OrderedDict()
        self._raw: OrderedDict[Hashable, Decision] = OrderedDict()
        self._lock = threading.Lock()
        self._today = today
        self.hits = 0
        self.misses = 0
        self._install(ruleset, _backend(ruleset, backend, cache_size, self.memo_budget // 4))

    def _install(self, ruleset: RuleSet, backend: Any) -> None:
        self.ruleset = ruleset
        self.hash = ruleset.hash
        self.ref = RuleSetRef(version=ruleset.version, hash=self.hash)
        self.backend = backend
        # citations live as long as the rule set: obligation parts are keyed by their identity (see _assemble)
        self._templates: dict[tuple[str, str], tuple[dict[str, Any], frozenset[str]]] = {}  # per rule, see _applies
        self._citations: dict[str, CitationOut] = {}
        self._gap_citations: dict[tuple[str, str, str], CitationOut] = {}
        # output parts are immutable and a pure function of their key, so equal ones are built once and shared
        self._parts: dict[tuple, Any] = {}
        self._unless_leaves: dict[str, list[tuple[dict, str, Any, Any]]] = {}
        # the durable backend judges applicable law with compiled scope conditions; the reference reads the trees
        self._scope = ScopePlan(ruleset) if getattr(backend, "name", "") == "durable" else None
        self._clear_memos()

    def _clear_memos(self) -> None:
        self._cache.clear()
        self._raw.clear()
        self._sizes.clear()
        self._cache_bytes = self._raw_bytes = 0

    # -- public API -------------------------------------------------------------------------------------------
    def reload(self, ruleset: RuleSet) -> None:
        """Judge with another rule set from now on. Compiles first (a failure leaves the engine as it was), then
        swaps under the lock, empties every memo and frees the old durable rulesets."""
        backend = _backend(ruleset, self.backend_name, self.cache_size, self.memo_budget // 4)
        with self._lock:
            if self._closed:
                backend_close = getattr(backend, "close", None)
                if backend_close is not None:
                    backend_close()
                raise EngineError("this engine is closed")
            old = self.backend
            self._install(ruleset, backend)
        close = getattr(old, "close", None)
        if close is not None:
            with self._lock:
                close()

    def normalise(self, request: Any, today: Optional[date] = None) -> Normalised:
        return normalise(request, self.ruleset, today or self._today)

    # -- leases: an engine is immutable per rule set; whoever swaps it out retires it, and it is closed (its
    # durable-rules rulesets freed) once the last user that took a lease before the swap is done
    def acquire(self) -> Engine:
        with self._lock:
            if self._closed:
                raise EngineError("this engine is closed (its rule set was replaced); take the current one")
            self._users += 1
        return self

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            close = self._retired and self._users <= 0
        if close:
            self.close()

    def retire(self) -> None:
        """No new users will come (the engine was swapped out or evicted): close it now if idle, else when the last
        lease is released."""
        with self._lock:
            self._retired = True
            close = self._users <= 0
        if close:
            self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Free the compiled rule set now. Checks after this raise EngineError (fail closed)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._clear_memos()
            self._parts = {}
            close = getattr(self.backend, "close", None)
            if close is not None:
                close()

    def check(self, request: Any, today: Optional[date] = None) -> Decision:
        """Judge one request. `today`: the date a request without `as_of` is judged as of (default: the engine's
        date, else the current date); it is part of every memo key, so callers with different dates never share an
        answer. Raises RequestError for invalid input and EngineError on internal failure."""
        day = today or self._today or date.today()
        raw = _raw_key(request, day) if self.cache_size else None
        if raw is not None:
            with self._lock:
                hit = self._raw.get(raw)
                if hit is not None:
                    self._raw.move_to_end(raw)
                    self.hits += 1
                    return hit
        ruleset = self.ruleset
        n = normalise(request, ruleset, day)
        # the canonical request itself is the key (hashable, compared field by field): what Normalised.key's JSON
        # tells apart, without serialising it
        memo = self.cache_size > 0
        key: Any = _ReqKey(self.hash, n.request) if memo else None  # no memo: no key to hash
        with self._lock:
            if self._closed:
                raise EngineError("this engine is closed (its rule set was replaced); no verdict")
            if ruleset is not self.ruleset:  # reloaded meanwhile: normalise against the new rule set
                n = normalise(request, self.ruleset, day)
                key = _ReqKey(self.hash, n.request) if memo else None
            hit = self._cache.get(key) if memo else None
            if hit is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                # seen before in another spelling, or seen once in this one: from now on it skips normalisation
                if raw is not None and raw not in self._raw:
                    size = decision_bytes(hit) + _RAW_ENTRY
                    self._raw[raw] = hit
                    self._sizes[raw] = size
                    self._raw_bytes += size
                    self._trim(self._raw, "_raw_bytes")
                return hit
            self.misses += 1
            try:
                hit = self._evaluate(n)
            except (RequestError, EngineError):
                raise
            except Exception as e:  # fail closed: an internal error never yields a verdict
                raise EngineError(f"internal error while judging the request: {type(e).__name__}: {e}") from e
            if memo:
                size = decision_bytes(hit)
                self._cache[key] = hit
                self._sizes[key] = size
                self._cache_bytes += size
                self._trim(self._cache, "_cache_bytes")
            # not into the raw memo yet: most requests judged once are never seen again, and one that is comes
            # back through the decision memo above, which admits it to the raw memo
            return hit

    def _trim(self, memo: OrderedDict, counter: str) -> None:
        """Evict the oldest entries while the memo holds more than cache_size entries or than half the byte budget
        (the two decision memos share it)."""
        budget = self.memo_budget // 2
        while memo and (len(memo) > self.cache_size or getattr(self, counter) > budget):
            k, _ = memo.popitem(last=False)
            setattr(self, counter, getattr(self, counter) - self._sizes.pop(k, 0))

    def check_many(self, requests: Iterable[Any], today: Optional[date] = None) -> list[Decision]:
        return [self.check(r, today) for r in requests]

    def clear_cache(self) -> None:
        with self._lock:
            self._clear_memos()

    # -- evaluation -------------------------------------------------------------------------------------------
    def _evaluate(self, n: Normalised) -> Decision:
        rs = self.ruleset
        facts = facts_for(n, rs, self._scope)
        fired: list[tuple[Fact, Unit, tuple[str, ...]]] = []
        trace: list[TraceEntry] = []
        backend = self.backend
        prepared = backend.prepared
        match = backend.match
        trace_entry = self._trace_entry
        backend.begin()
        try:
            for fact in facts:
                skip = fact.skip
                if skip is DOMAINS or skip == DOMAINS:  # no domain of this regime judges the leg: nothing can apply
                    continue
                flags: frozenset[str] = _NO_FLAGS
                sorted_flags: tuple[str, ...] = ()
                for level in prepared[fact.jurisdiction].levels_for(fact.roles):
                    units = match(fact, level, flags)
                    if not units:
                        continue
                    # both backends return units in index order, which is rule-id order (prepare() numbers them by
                    # rule id; one unit per rule can match: derive, finding and exempt exclude each other)
                    if skip:  # domains this regime does not judge here (outside its reach; not a transfer)
                        units = [u for u in units if u.rule.domain not in skip]
                    new: set[str] = set()
                    for u in units:
                        if u.kind == "derive":
                            new.update(u.rule.derive)
                        else:
                            fired.append((fact, u, sorted_flags))
                        trace.append(trace_entry(fact, level, u))
                    if new and not new <= flags:
                        flags = flags | new
                        sorted_flags = tuple(sorted(flags))
        finally:
            backend.end()
        return self._assemble(n, facts, fired, trace)

    def _part(self, key: tuple, make: Any) -> Any:
        hit = self._parts.get(key)
        if hit is None:
            if len(self._parts) > 200_000 or (len(self._parts) + 1) * _PART_BYTES > self.memo_budget // 4:
                self._parts.clear()
            hit = self._parts[key] = make()
        return hit

    def _trace_entry(self, fact: Fact, level: int, u: Unit) -> TraceEntry:
        key = ("t", fact.hop, fact.jurisdiction, u.index)  # a unit has one level and one kind
        hit = self._parts.get(key)
        if hit is not None:
            return hit
        if u.kind == "derive":
            return self._part(
                key,
                lambda: _trusted(
                    TraceEntry,
                    leg=fact.hop,
                    jurisdiction=fact.jurisdiction,
                    level=level,
                    rule_id=u.rule.id,
                    action="derive",
                    flags=u.rule.derive,
                ),
            )
        return self._part(
            key,
            lambda: _trusted(
                TraceEntry, leg=fact.hop, jurisdiction=fact.jurisdiction, level=level, rule_id=u.rule.id, action=u.kind
            ),
        )

    def _citation(self, rule: Rule) -> CitationOut:
        hit = self._citations.get(rule.id)
        if hit is None:
            law = self.ruleset.jurisdictions[rule.jurisdiction].laws[rule.citation.law]
            hit = self._citations[rule.id] = CitationOut(
                law=rule.citation.law,
                law_title=law.title,
                article=rule.citation.article,
                url=rule.citation.url or law.url,
            )
        return hit

    def _gap_citation(self, code: str, u: Uncovered) -> CitationOut:
        key = ("gap", code, u.id)
        hit = self._gap_citations.get(key)
        if hit is None:
            law = self.ruleset.jurisdictions[code].laws.get(u.law) if u.law else None
            hit = self._gap_citations[key] = CitationOut(
                law=u.law or "", law_title=law.title if law else u.provision, article=u.provision, url=u.url
            )
        return hit

    def _regimes(self, n: Normalised, facts: list[Fact]) -> tuple[RegimeOut, ...]:
        """The applicable-law section: one entry per fact. Equal sections are built once and shared (most requests
        are governed the same way: the origin and the importer)."""
        legs = n.legs
        sig = tuple(
            [
                (f.jurisdiction, f.hop, *legs[f.hop][1:3], f.basis, f.ground.id if f.ground else None, f.skip)
                for f in facts
            ]
        )
        hit = self._parts.get(sig)
        if hit is None:
            out = []
            for one, f in zip(sig, facts, strict=True):
                # each fact's entry is itself shared between the sections that hold it
                entry = self._parts.get(("r", *one))
                if entry is None:
                    code, hop, src, dst, basis, ground, skip = one
                    entry = self._part(
                        ("r", *one),
                        lambda code=code, hop=hop, src=src, dst=dst, basis=basis, ground=ground, skip=skip, f=f: (
                            _trusted(
                                RegimeOut,
                                jurisdiction=code,
                                leg=hop,
                                leg_path=f"{src}->{dst}",
                                basis=basis,
                                ground=ground,
                                citation=self._scope_citation(code, f.ground) if f.ground else None,
                                domains=tuple(sorted(DOMAINS - skip)),
                            )
                        ),
                    )
                out.append(entry)
            hit = self._part(sig, lambda: tuple(out))
        return hit

    def _scope_citation(self, code: str, e: ScopeEntry) -> CitationOut:
        law = self.ruleset.jurisdictions[code].laws[e.citation.law]
        return CitationOut(
            law=e.citation.law, law_title=law.title, article=e.citation.article, url=e.citation.url or law.url
        )

    def _met_by(self, fact: Fact, rule: Rule, flags: tuple[str, ...]) -> tuple[str, ...]:
        """Explain an exemption: the positive tests of `unless` that hold for this fact."""
        out = []
        leaves = self._unless_leaves.get(rule.id)
        if leaves is None:
            leaves = self._unless_leaves[rule.id] = [
                (
                    leaf,
                    *(leaf_op(leaf) if "field" in leaf else ("flag", leaf["flag"])),
                    # one leaf: its reference meaning (what compile_condition would generate for it, without
                    # generating code the first time each rule's exemption is explained)
                    partial(_leaf_test, leaf, self.ruleset, rule.jurisdiction),
                )
                for leaf, positive in walk(rule.unless or {})
                if positive
            ]
        fl = frozenset(flags)
        for leaf, op, val, test in leaves:
            if not test(fact.env, fl, fact.as_of):
                continue
            if op == "flag":
                out.append(f"flag {val}")
                continue
            if op in ("contains", "contains_any", "contains_all"):
                vals = [val] if isinstance(val, str) else val
                out += [f"{leaf['field']}: {v}" for v in vals if v in fact.env[leaf["field"]]]
            else:
                out.append(f"{leaf['field']} {op} {val}")
        return tuple(dict.fromkeys(out))

    def _assemble(
        self, n: Normalised, facts: list[Fact], fired: list[tuple[Fact, Unit, tuple[str, ...]]], trace: list[TraceEntry]
    ) -> Decision:
        """The decision. Every part is a pure function of its key and is built (validated) once, then shared; the
        Decision itself is assembled from those trusted parts without validating them again (model_construct)."""
        findings: list[Finding] = []
        obligations: dict[str, dict[str, Any]] = {}
        parts = self._parts
        if len(fired) > 1:
            order = {(f.jurisdiction, f.hop, f.roles, f.basis): i for i, f in enumerate(facts)}
            fired.sort(
                key=lambda x: (x[0].hop, order[(x[0].jurisdiction, x[0].hop, x[0].roles, x[0].basis)], x[1].rule.id)
            )
        legs = n.legs
        paths = [f"{leg.src}->{leg.dst}" for leg in legs]
        severity = 0
        for fact, unit, flags in fired:
            rule = unit.rule
            path = paths[fact.hop]
            if unit.kind == "exempt":
                met_by = self._met_by(fact, rule, flags)
                key: tuple = ("m", rule.id, fact.hop, path, met_by)
                hit = parts.get(key)
                if hit is None:
                    hit = self._part(
                        key,
                        lambda rule=rule, fact=fact, path=path, met_by=met_by: self._met(rule, fact.hop, path, met_by),
                    )
                findings.append(hit)
                continue
            effect = rule.effect
            assert effect is not None
            sev = SEVERITY[effect]
            if sev > severity:
                severity = sev
            if rule.obligations:
                cit = self._citation(rule)
                kind = "ongoing" if effect == "allow" else "gating"
                for ob in rule.obligations:
                    entry = obligations.get(ob.id)
                    if entry is None:
                        entry = obligations[ob.id] = {"ob": ob, "kind": kind, "rules": [], "citations": []}
                    elif kind == "gating":
                        entry["kind"] = "gating"
                    if rule.id not in entry["rules"]:
                        entry["rules"].append(rule.id)
                        entry["citations"].append(cit)
            key = ("a", rule.id, fact.hop, path)
            hit = parts.get(key)
            if hit is None:
                hit = self._part(key, lambda rule=rule, fact=fact, path=path: self._applies(rule, fact.hop, path))
            findings.append(hit)
        # Coverage: a regime the bundle declares uncovered on this date (an earlier version of a law, say) makes the
        # decision at least conditional, with a gating legal review, unless the caller holds `legal_review`
        gaps: list[CoverageGap] = []
        juris = self.ruleset.jurisdictions
        for fact in facts:
            uncovered = juris[fact.jurisdiction].uncovered
            if not uncovered or "data_protection" in fact.skip:
                continue
            for u in uncovered:
                leg = legs[fact.hop]
                if not u.applies(fact.as_of, fact.roles, n.categories, leg.dst, n.request.exporter):
                    continue
                reviewed = LEGAL_REVIEW in n.safeguards
                path = paths[fact.hop]
                gaps.append(
                    self._part(
                        ("g", fact.jurisdiction, u.id, fact.hop, path, reviewed),
                        lambda fact=fact, u=u, path=path, reviewed=reviewed: _trusted(
                            CoverageGap,
                            id=u.id,
                            jurisdiction=fact.jurisdiction,
                            leg=fact.hop,
                            leg_path=path,
                            provision=u.provision,
                            url=u.url,
                            period_from=u.from_,
                            period_until=u.until,
                            confidence=u.confidence,
                            status="reviewed" if reviewed else "open",
                        ),
                    )
                )
                cit = self._gap_citation(fact.jurisdiction, u)
                if reviewed:
                    findings.append(
                        self._part(
                            ("gm", fact.jurisdiction, u.id, fact.hop, path),
                            lambda fact=fact, u=u, path=path, cit=cit: _trusted(
                                Finding,
                                **self._gap_common(fact, u, path, cit),
                                effect="allow",
                                status="met",
                                met_by=(f"safeguards: {LEGAL_REVIEW}",),
                            ),
                        )
                    )
                    continue
                severity = max(severity, SEVERITY["condition"])
                entry = obligations.get(LEGAL_REVIEW_OBLIGATION.id)
                if entry is None:
                    entry = obligations[LEGAL_REVIEW_OBLIGATION.id] = {
                        "ob": LEGAL_REVIEW_OBLIGATION,
                        "kind": "gating",
                        "rules": [],
                        "citations": [],
                    }
                if u.id not in entry["rules"]:
                    entry["rules"].append(u.id)
                    entry["citations"].append(cit)
                findings.append(
                    self._part(
                        ("ga", fact.jurisdiction, u.id, fact.hop, path),
                        lambda fact=fact, u=u, path=path, cit=cit: _trusted(
                            Finding,
                            **self._gap_common(fact, u, path, cit),
                            effect="condition",
                            status="applies",
                            obligations=(LEGAL_REVIEW_OBLIGATION.id,),
                        ),
                    )
                )
        consulted = tuple(dict.fromkeys(f.jurisdiction for f in facts))
        regimes = self._regimes(n, facts)
        not_transfers: list[NotTransfer] = []
        for fact in facts:
            if not fact.not_transfer:
                continue
            path = paths[fact.hop]
            for e in fact.not_transfer:
                not_transfers.append(
                    self._part(
                        ("x", e.id, fact.hop, path),
                        lambda fact=fact, e=e, path=path: _trusted(
                            NotTransfer,
                            id=e.id,
                            jurisdiction=fact.jurisdiction,
                            leg=fact.hop,
                            leg_path=path,
                            title=e.title,
                            domains=e.domains,
                            citation=self._scope_citation(fact.jurisdiction, e),
                            confidence=e.confidence,
                            note=e.note,
                        ),
                    )
                )
        if not findings:
            excluded = tuple(x.id for x in not_transfers)
            findings.append(
                self._part(
                    ("none", n.request.origin, consulted, excluded),
                    lambda: _trusted(
                        Finding,
                        rule_id="dfft-no-applicable-rule",
                        jurisdiction=n.request.origin,
                        domain=None,
                        effect="allow",
                        status="none",
                        title="No applicable restricting rule in the rule sets of "
                        + ", ".join(consulted)
                        + (" (not a transfer under " + ", ".join(excluded) + ")" if excluded else ""),
                        leg=None,
                        leg_path=None,
                        citation=None,
                        confidence=None,
                    ),
                )
            )
        obs = tuple(
            self._part(
                ("o", oid, e["kind"], tuple(e["rules"]), tuple(map(id, e["citations"]))),
                lambda oid=oid, e=e: _trusted(
                    ObligationOut,
                    id=oid,
                    text=e["ob"].text,
                    kind=e["kind"],
                    one_of=e["ob"].one_of,
                    deadline=e["ob"].deadline,
                    rules=tuple(e["rules"]),
                    citations=tuple(e["citations"]),
                ),
            )
            for oid, e in sorted(obligations.items(), key=lambda kv: (kv[1]["kind"] != "gating", kv[0]))
        )
        as_of = n.request.as_of
        if as_of is None:  # normalise fills it; the validating constructor refused None, so must this
            raise EngineError("internal error: a normalised request without as_of")
        # every field given, as the validating constructor was given them: the object model_construct builds (the
        # same __dict__ in field order, every field set, no extra, no private state), without its per-field loop
        return _trusted(
            Decision,
            verdict=VERDICT_OF_SEVERITY[severity],
            request=n.request,
            as_of=as_of,
            findings=tuple(findings),
            coverage=tuple(gaps),
            regimes=regimes,
            not_transfers=tuple(not_transfers),
            obligations=obs,
            consulted=consulted,
            ruleset=self.ref,
            trace=tuple(trace),
            notes=n.notes,
            engine=self.backend.name,
        )

    def _applies(self, rule: Rule, hop: int, path: str) -> Finding:
        """The finding of a rule that applies on a leg: the rule's own part built once (a template), then per leg only
        its leg and path (the object _trusted builds from the same values: same __dict__, same fields set)."""
        if _VALIDATE_PARTS:
            return self._finding_of(rule, hop, path, effect=rule.effect, status="applies", obligations=rule_obs(rule))
        tpl = self._templates.get(("a", rule.id))
        if tpl is None:
            tpl = self._templates[("a", rule.id)] = self._template(
                rule, effect=rule.effect, status="applies", obligations=rule_obs(rule)
            )
        d = tpl[0].copy()
        d["leg"] = hop
        d["leg_path"] = path
        return bare_model(Finding, d, set(tpl[1]))

    def _met(self, rule: Rule, hop: int, path: str, met_by: tuple[str, ...]) -> Finding:
        """The finding of a rule whose exception held on a leg (see _applies)."""
        if _VALIDATE_PARTS:
            return self._finding_of(rule, hop, path, effect="allow", status="met", met_by=met_by)
        tpl = self._templates.get(("m", rule.id))
        if tpl is None:
            tpl = self._templates[("m", rule.id)] = self._template(rule, effect="allow", status="met", met_by=())
        d = tpl[0].copy()
        d["leg"] = hop
        d["leg_path"] = path
        d["met_by"] = met_by
        return bare_model(Finding, d, set(tpl[1]))

    def _finding_of(self, rule: Rule, hop: int, path: str, **rest: Any) -> Finding:
        return _trusted(Finding, **self._finding_common(rule, hop, path), **rest)

    def _template(self, rule: Rule, **rest: Any) -> tuple[dict[str, Any], frozenset[str]]:
        f = self._finding_of(rule, 0, "", **rest)
        return f.__dict__, frozenset(f.model_fields_set)

    def _finding_common(self, rule: Rule, hop: int, path: str) -> dict[str, Any]:
        return dict(
            rule_id=rule.id,
            jurisdiction=rule.jurisdiction,
            domain=rule.domain,
            title=rule.title,
            leg=hop,
            leg_path=path,
            citation=self._citation(rule),
            confidence=rule.confidence,
            note=rule.note,
        )

    def _gap_common(self, fact: Fact, u: Uncovered, path: str, cit: CitationOut) -> dict[str, Any]:
        return dict(
            rule_id=u.id,
            jurisdiction=fact.jurisdiction,
            domain=None,
            title=f"Not encoded: {u.provision} governed this transfer on this date",
            leg=fact.hop,
            leg_path=path,
            citation=cit,
            confidence=u.confidence,
            note=u.note,
        )
