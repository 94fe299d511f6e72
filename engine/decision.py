"""The Decision returned for every check: verdict, findings with citations, obligations, trace."""

from __future__ import annotations

from datetime import date
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict

from .request import TransferRequest

Verdict = Literal["allowed", "conditional", "blocked"]
VERDICT_OF_SEVERITY: tuple[Verdict, ...] = ("allowed", "conditional", "blocked")


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class CitationOut(Out):
    law: str
    law_title: str
    article: str
    url: str


class Finding(Out):
    rule_id: str
    jurisdiction: str
    domain: Optional[str]
    effect: Literal["allow", "condition", "block"]
    status: Literal["applies", "met", "none"]  # met: the rule applied but its `unless` held
    title: str
    leg: Optional[int]
    leg_path: Optional[str]  # e.g. "JP->VN"
    citation: Optional[CitationOut]
    confidence: Optional[str]
    note: Optional[str] = None
    obligations: tuple[str, ...] = ()
    met_by: tuple[str, ...] = ()


class ObligationOut(Out):
    id: str
    text: str
    kind: Literal["gating", "ongoing"]  # gating: must be met before the transfer; ongoing: a continuing duty
    one_of: tuple[str, ...] = ()  # safeguards, any one of which meets it
    deadline: Optional[str] = None
    rules: tuple[str, ...]
    citations: tuple[CitationOut, ...]


class TraceEntry(Out):
    leg: int
    jurisdiction: str
    level: int
    rule_id: str
    action: Literal["derive", "finding", "exempt"]
    flags: tuple[str, ...] = ()


class CoverageGap(Out):
    """A regime that governed this transfer on the decision's date but that the rule set does not encode: the
    decision cannot be `allowed` on the rules' word (docs/rule-language.md, "Coverage")."""

    id: str
    jurisdiction: str
    leg: int
    leg_path: str
    provision: str
    url: str
    period_from: date
    period_until: date  # exclusive
    confidence: str
    status: Literal["open", "reviewed"]  # reviewed: the caller holds the safeguard `legal_review`


class RegimeOut(Out):
    """A regime that governs a leg, and why (docs/rule-language.md, "Applicable law"): `origin` (the data leaves
    its territory), `exporter` (the exporter of an onward leg is there), `established` (the exporter is established
    there), `reach` (extraterritorial scope: `ground` names the provision), `importer` (the recipient is there)."""

    jurisdiction: str
    leg: int
    leg_path: str
    basis: Literal["origin", "exporter", "established", "reach", "importer"]
    ground: Optional[str] = None
    citation: Optional[CitationOut] = None
    domains: tuple[str, ...]  # the domains of its rules judged on this leg


class NotTransfer(Out):
    """A conclusion that the leg is not a transfer under one regime (same legal entity, the data subject's own
    disclosure, no access, ...): that regime's rules of `domains` were not applied to the leg."""

    id: str
    jurisdiction: str
    leg: int
    leg_path: str
    title: str
    domains: tuple[str, ...]
    citation: CitationOut
    confidence: str
    note: Optional[str] = None


class RuleSetRef(Out):
    version: str
    hash: str


class Decision(Out):
    verdict: Verdict
    request: TransferRequest
    as_of: date
    findings: tuple[Finding, ...]
    coverage: tuple[CoverageGap, ...] = ()  # regimes that applied but are not encoded for this date
    regimes: tuple[RegimeOut, ...] = ()  # applicable law: which regimes governed each leg, and why
    not_transfers: tuple[NotTransfer, ...] = ()  # legs that are not a transfer under a regime, with the reason
    obligations: tuple[ObligationOut, ...]
    consulted: tuple[str, ...]
    ruleset: RuleSetRef
    trace: tuple[TraceEntry, ...]
    notes: tuple[str, ...] = ()
    engine: str

    @property
    def rule_ids(self) -> list[str]:
        return [f.rule_id for f in self.findings]
