"""The Decision returned for every check: verdict, findings with citations, obligations, trace."""

from __future__ import annotations

from datetime import date
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from .request import TransferRequest

Verdict = Literal["allowed", "conditional", "blocked"]
VERDICT_OF_SEVERITY: tuple[Verdict, ...] = ("allowed", "conditional", "blocked")


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class CitationOut(Out):
    """Where the law says it."""

    law: str = Field(description="the law's id in the rule bundle, e.g. JP-APPI")
    law_title: str = Field(description="the law's title")
    article: str = Field(description="the article or section, e.g. Art. 28(1)")
    url: str = Field(description="where to read it")


class Finding(Out):
    """One rule that applied to the transfer (or applied but was met by a safeguard or an exemption)."""

    rule_id: str = Field(description="the rule's id in the bundle (`dfft rules show <id>`)")
    jurisdiction: str = Field(description="the jurisdiction whose rule it is")
    domain: Optional[str] = Field(description="data_protection, localisation or ip")
    effect: Literal["allow", "condition", "block"] = Field(
        description="what the rule does: allow, condition (obligations to meet first) or block"
    )
    status: Literal["applies", "met", "none"] = Field(  # met: the rule applied but its `unless` held
        description="applies: the effect holds; met: the rule applied but a safeguard or exemption in `met_by` "
        "meets it; none: informational"
    )
    title: str = Field(description="what the rule says, in one line")
    leg: Optional[int] = Field(description="which leg of the transfer (0: origin to the first hop), null for all")
    leg_path: Optional[str] = Field(description='the leg as "FROM->TO", e.g. "JP->VN"')  # e.g. "JP->VN"
    citation: Optional[CitationOut] = Field(description="the article of law behind the rule")
    confidence: Optional[str] = Field(
        description="how sure the rule's author is of the encoding: high (read the text), medium, low"
    )
    note: Optional[str] = Field(None, description="the rule author's note (sources, caveats)")
    obligations: tuple[str, ...] = Field((), description="ids of the obligations this rule brings (see `obligations`)")
    met_by: tuple[str, ...] = Field((), description="the safeguards or exemptions that met the rule")


class ObligationOut(Out):
    """Something the exporter must do: before the transfer (gating) or for as long as it goes on (ongoing)."""

    id: str = Field(description="the obligation's id")
    text: str = Field(description="what must be done")
    kind: Literal["gating", "ongoing"] = Field(  # gating: must be met before the transfer; ongoing: a continuing duty
        description="gating: must be met before the transfer (makes the decision conditional); ongoing: a "
        "continuing duty that does not gate it"
    )
    one_of: tuple[str, ...] = Field(  # safeguards, any one of which meets it
        (), description="safeguards any one of which meets it (send it in `safeguards` once in place)"
    )
    deadline: Optional[str] = Field(None, description="when it must be met, where the law sets a time")
    rules: tuple[str, ...] = Field(description="the rules that bring it")
    citations: tuple[CitationOut, ...] = Field(description="the articles of law behind it")


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
    version: str = Field(description="the bundle's version (jurisdictions/bundle.yaml)")
    hash: str = Field(description="SHA-256 of the bundle's content")


class Decision(Out):
    """The answer to one transfer request. Same request and same rule set: the same decision, byte for byte."""

    verdict: Verdict = Field(
        description="allowed; conditional (allowed once the gating obligations are met); blocked. The maximum "
        "over the findings; never allowed where the rule set does not encode a regime that applied (`coverage`)"
    )
    request: TransferRequest = Field(description="the request as judged (normalised)")
    as_of: date = Field(description="the date whose law was applied")
    findings: tuple[Finding, ...] = Field(description="every rule that applied, with its citation")
    coverage: tuple[CoverageGap, ...] = Field(  # regimes that applied but are not encoded for this date
        (), description="regimes that governed the transfer on `as_of` but are not encoded (a legal review is due)"
    )
    regimes: tuple[RegimeOut, ...] = Field(
        (),
        description="applicable law: which regimes governed each leg, and why (origin, exporter, established, "
        "reach, importer)",
    )
    not_transfers: tuple[NotTransfer, ...] = Field(
        (), description="legs that are not a transfer under a regime (same entity, own disclosure, no access, ...)"
    )
    obligations: tuple[ObligationOut, ...] = Field(description="what the exporter must do, gating or ongoing")
    consulted: tuple[str, ...] = Field(description="the jurisdictions whose rules were consulted")
    ruleset: RuleSetRef = Field(description="the rule bundle that judged: version and content hash")
    trace: tuple[TraceEntry, ...] = Field(description="how the engine got there: derivations and findings by level")
    notes: tuple[str, ...] = Field((), description="remarks on the request or the decision")
    engine: str = Field(description="the evaluation backend: durable (durable-rules) or reference")

    @property
    def rule_ids(self) -> list[str]:
        return [f.rule_id for f in self.findings]
