"""Pydantic models of a loaded rule bundle. Everything here is immutable and JSON-serialisable."""

from __future__ import annotations

import hashlib
import json
import weakref
from datetime import date
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

Effect = Literal["allow", "condition", "block"]
Domain = Literal["data_protection", "localisation", "ip"]
Scope = Literal["exporter", "importer", "origin"]
Confidence = Literal["high", "medium", "low"]

DEFAULT_SCOPE: dict[str, str] = {"data_protection": "exporter", "localisation": "origin", "ip": "exporter"}
SEVERITY: dict[str, int] = {"allow": 0, "condition": 1, "block": 2}


def within(on: date, start: Optional[date], until: Optional[date]) -> bool:
    """A dated window: `start` inclusive, `until` exclusive, either open when None."""
    return (start is None or start <= on) and (until is None or on < until)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Citation(Frozen):
    law: str
    article: str
    url: Optional[str] = None
    quote: Optional[str] = None


class Obligation(Frozen):
    id: str
    text: str
    one_of: tuple[str, ...] = ()
    deadline: Optional[str] = None


class Rule(Frozen):
    id: str
    jurisdiction: str
    domain: Domain
    title: str
    scope: Scope
    citation: Citation
    effective_from: Optional[date] = None
    effective_until: Optional[date] = None
    confidence: Confidence
    note: Optional[str] = None
    when: dict[str, Any]
    unless: Optional[dict[str, Any]] = None
    effect: Optional[Effect] = None
    obligations: tuple[Obligation, ...] = ()
    derive: tuple[str, ...] = ()

    def in_force(self, on: date) -> bool:
        return within(on, self.effective_from, self.effective_until)


class Member(Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    code: str
    from_: Optional[date] = Field(None, alias="from")
    until: Optional[date] = None
    note: Optional[str] = None

    def active(self, on: date) -> bool:
        return within(on, self.from_, self.until)


class CodeList(Frozen):
    name: str
    title: str
    citation: Optional[Citation] = None
    source: Optional[str] = None
    confidence: Optional[Confidence] = None
    note: Optional[str] = None
    members: tuple[Member, ...] = ()

    def contains(self, code: str, on: date) -> bool:
        return any(m.code == code and m.active(on) for m in self.members)


class Law(Frozen):
    key: str
    title: str
    url: str
    effective_from: Optional[date] = None
    effective_until: Optional[date] = None
    source_date: Optional[date] = None
    note: Optional[str] = None


class Uncovered(Frozen):
    """A period in which a regime of this jurisdiction governed transfers but the bundle encodes no rule for it (an
    earlier version of a law, say). A transfer judged as of a date inside it is never *allowed* on the bundle's word:
    the decision reports the gap, and a gating obligation asks for a legal review (see docs/rule-language.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str
    provision: str
    url: str
    law: Optional[str] = None
    from_: date = Field(alias="from")
    until: date
    scope: Scope = "exporter"
    data_categories: tuple[str, ...] = ()
    except_to: tuple[str, ...] = ()
    exporters: tuple[str, ...] = ()
    confidence: Confidence
    note: Optional[str] = None

    def applies(
        self, on: date, roles: frozenset[str], categories: frozenset[str], to: str, exporter: str = "private"
    ) -> bool:
        """In the period, in a role it binds, (when it names data categories) for data it covers, for a leg to
        a destination it restricted (`except_to`: where the regime put no limit, e.g. within the EEA), and (when it
        names exporter kinds) for such an exporter (e.g. a public-sector regime)."""
        return (
            within(on, self.from_, self.until)
            and self.scope in roles
            and (not self.data_categories or not categories.isdisjoint(self.data_categories))
            and to not in self.except_to
            and (not self.exporters or exporter in self.exporters)
        )


class ScopeEntry(Frozen):
    """A territorial-scope fact of a regime, decided before its transfer rules (docs/rule-language.md, "Applicable
    law"). In `reach`: the regime also governs a transfer that does not leave its territory (GDPR Art. 3(2), PIPL
    Art. 3(2), ...) when `when` holds; its rules of `domains` then judge the leg as exporter. In `not_transfer`: the
    leg is not a transfer under this regime (same legal entity, the data subject's own disclosure, no access, ...),
    so its rules of `domains` in the roles `roles` are not applied to the leg, and the decision says why."""

    id: str
    title: str
    citation: Citation
    confidence: Confidence
    note: Optional[str] = None
    when: dict[str, Any]
    domains: tuple[Domain, ...] = ("data_protection",)
    roles: tuple[Scope, ...] = ("exporter",)


class InventoryEntry(Frozen):
    """A localisation or cross-border restriction measure found for a jurisdiction (issue 13 item 3): `encoded` by the
    rules it names, or `reviewed` and not encoded, with the reason. Data for the coverage report; never evaluated."""

    measure: str
    instrument: str
    url: str
    domain: str
    status: Literal["encoded", "reviewed"]
    rules: tuple[str, ...] = ()
    reason: Optional[str] = None
    confidence: Confidence
    source_date: date
    note: Optional[str] = None


class Regulator(Frozen):
    name: str
    url: Optional[str] = None


class Jurisdiction(Frozen):
    code: str
    name: str
    note: Optional[str] = None
    regulators: tuple[Regulator, ...] = ()
    laws: dict[str, Law]
    lists: dict[str, CodeList] = {}
    rules: tuple[Rule, ...] = ()
    uncovered: tuple[Uncovered, ...] = ()
    reach: tuple[ScopeEntry, ...] = ()
    not_transfer: tuple[ScopeEntry, ...] = ()
    inventory: tuple[InventoryEntry, ...] = ()

    def rules_in(self, domain: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.domain == domain)


class Category(Frozen):
    name: str
    title: str
    parents: tuple[str, ...] = ()
    fideslang: tuple[str, ...] = ()
    dpv: tuple[str, ...] = ()


class Vocabulary(Frozen):
    data_categories: dict[str, Category]
    safeguards: dict[str, str]
    purposes: dict[str, str]
    sectors: tuple[str, ...]
    exporters: dict[str, str]

    def closure(self, categories: set[str] | frozenset[str]) -> frozenset[str]:
        """Categories with all their ancestors: health data is also sensitive personal and personal data."""
        out: set[str] = set()
        todo = list(categories)
        while todo:
            c = todo.pop()
            if c not in out:
                out.add(c)
                todo.extend(self.data_categories[c].parents)
        return frozenset(out)

    def label_map(self) -> dict[str, str]:
        """External label (fideslang key or DPV term) -> our category."""
        derived = _derived(self)
        if "labels" not in derived:
            derived["labels"] = {
                label: name for name, c in self.data_categories.items() for label in (*c.fideslang, *c.dpv)
            }
        return derived["labels"]

    def resolve(self, label: str) -> Optional[str]:
        """Our category for a label: ours, a mapped DPV term, or a fideslang key via its nearest mapped ancestor."""
        if label in self.data_categories:
            return label
        labels = self.label_map()
        if label in labels:
            return labels[label]
        if ":" not in label:
            parts = label.split(".")
            while len(parts) > 1:
                parts.pop()
                if ".".join(parts) in labels:
                    return labels[".".join(parts)]
        return None

    def values_for(self, field: str) -> list[str]:
        """The valid values of a request field, sorted (a shared list: do not modify it)."""
        derived = _derived(self)
        if "values" not in derived:
            derived["values"] = {
                "data_categories": sorted(self.data_categories),
                "safeguards": sorted(self.safeguards),
                "purpose": sorted(self.purposes),
                "sector": sorted(self.sectors),
                "exporter": sorted(self.exporters),
            }
        return derived["values"][field]


# Lookups derived from a Vocabulary, computed once per object (the models are frozen, so they cannot go stale). Kept
# outside the model because pydantic compares private attributes too; the entry holds the object so its id stays its own.
_DERIVED: dict[int, tuple[Vocabulary, dict[str, Any]]] = {}


def _derived(v: Vocabulary) -> dict[str, Any]:
    entry = _DERIVED.get(id(v))
    if entry is None or entry[0] is not v:
        entry = _DERIVED[id(v)] = (v, {})
    return entry[1]


_HASHES: dict[int, tuple[weakref.ref, str]] = {}  # id(RuleSet) -> (a weak reference to it, its hash)


class RuleSet(Frozen):
    """A versioned bundle: vocabulary, groups, jurisdictions and their rules."""

    version: str
    title: Optional[str] = None
    vocabulary: Vocabulary
    aliases: dict[str, tuple[str, ...]] = {}
    groups: dict[str, CodeList] = {}
    jurisdictions: dict[str, Jurisdiction]

    def canonical(self) -> dict[str, Any]:
        """A canonical JSON form: keys and rules sorted, so file and rule order do not matter."""
        data = self.model_dump(mode="json", by_alias=True)
        for j in data["jurisdictions"].values():
            j["rules"] = sorted(j["rules"], key=lambda r: r["id"])
        return data

    @property
    def hash(self) -> str:
        # computed once per object (it dumps the whole bundle; the engine asks once per jurisdiction it compiles):
        # RuleSet is frozen, and a copy with changes (model_copy) is a new object with its own entry
        known = _HASHES.get(id(self))
        if known is not None and known[0]() is self:
            return known[1]
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(blob.encode()).hexdigest()
        self._remember_hash(digest)
        return digest

    def _remember_hash(self, digest: str) -> None:
        """Set the memo of `hash` (the validated-bundle cache stores the hash with the rule set it computed it of)."""
        key = id(self)
        _HASHES[key] = (weakref.ref(self, lambda _ref: _HASHES.pop(key, None)), digest)

    def rule(self, rule_id: str) -> Rule:
        for j in self.jurisdictions.values():
            for r in j.rules:
                if r.id == rule_id:
                    return r
        raise KeyError(rule_id)

    def all_rules(self) -> list[Rule]:
        return [r for code in sorted(self.jurisdictions) for r in self.jurisdictions[code].rules]

    def code_list(self, owner: str, ref: str) -> CodeList:
        """Resolve an `in_list` reference made by a rule of `owner`."""
        if "." in ref:
            code, name = ref.split(".", 1)
            return self.jurisdictions[code].lists[name]
        own = self.jurisdictions[owner].lists if owner in self.jurisdictions else {}
        if ref in own:
            return own[ref]
        return self.groups[ref]
