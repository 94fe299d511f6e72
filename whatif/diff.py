"""Diff: judge a set of transfers under the baseline and under a scenario, and explain what changed."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict

from ..engine import Decision
from ..engine.decision import CitationOut, Finding, RuleSetRef
from ..engine.request import RequestError
from .context import SEVERITY, Engines, strip_id
from .scenario import Scenario

Direction = Literal["better", "worse", "same"]


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class FindingChange(Out):
    rule_id: str
    effect: str
    status: str
    leg_path: Optional[str]
    title: str
    citation: Optional[CitationOut]
    why: str


class ObligationChange(Out):
    id: str
    text: str
    kind: str
    one_of: tuple[str, ...]
    rules: tuple[str, ...]
    citations: tuple[CitationOut, ...]


class RequestDiff(Out):
    id: str
    path: str
    data: str
    baseline: str
    scenario: str
    direction: Direction
    appeared: tuple[FindingChange, ...] = ()
    disappeared: tuple[FindingChange, ...] = ()
    obligations_appeared: tuple[ObligationChange, ...] = ()
    obligations_disappeared: tuple[ObligationChange, ...] = ()
    error: Optional[str] = None

    @property
    def changed(self) -> bool:
        return bool(
            self.baseline != self.scenario
            or self.appeared
            or self.disappeared
            or self.obligations_appeared
            or self.obligations_disappeared
        )


class DiffResult(Out):
    scenario: str
    changes: tuple[str, ...]
    baseline_ruleset: RuleSetRef
    scenario_ruleset: RuleSetRef
    items: tuple[RequestDiff, ...]
    counts: dict[str, int]


def _key(f: Finding) -> tuple:
    return (f.rule_id, f.status, f.effect, f.leg_path)


def _why(f: Finding, appeared: bool, sc: Scenario, d: Decision) -> str:
    law = sc.law
    if f.status == "none":
        return "no applicable restricting rule" if appeared else "a rule now applies"
    if appeared:
        if f.rule_id in {r["id"] for r in law.add_rules}:
            return "rule added by the scenario"
        if f.status == "met":
            return "exemption met by " + (", ".join(f.met_by) or "the facts")
        return f"applies to {f.leg_path}" + (f" as of {d.as_of}" if sc.as_of else "")
    if f.rule_id in law.disable_rules:
        return "rule disabled by the scenario"
    if f.rule_id in {x["rule"] for x in law.rule_dates} or sc.as_of or law.law_dates:
        return f"does not apply (or not in force) as of {d.as_of}"
    return "no longer applies"


def _fc(f: Finding, appeared: bool, sc: Scenario, d: Decision) -> FindingChange:
    return FindingChange(
        rule_id=f.rule_id,
        effect=f.effect,
        status=f.status,
        leg_path=f.leg_path,
        title=f.title,
        citation=f.citation,
        why=_why(f, appeared, sc, d),
    )


def compare(rid: str, base: Decision, new: Decision, sc: Scenario) -> RequestDiff:
    bk = {_key(f): f for f in base.findings}
    nk = {_key(f): f for f in new.findings}
    bo = {o.id: o for o in base.obligations}
    no = {o.id: o for o in new.obligations}

    def oc(o: Any) -> ObligationChange:
        return ObligationChange(
            id=o.id, text=o.text, kind=o.kind, one_of=o.one_of, rules=o.rules, citations=o.citations
        )

    met_now = {f.rule_id: f for f in new.findings if f.status == "met"}
    applied_before = {(f.rule_id, f.leg_path) for f in base.findings if f.status == "applies"}
    disappeared = []
    for k in bk:
        if k not in nk:
            fc = _fc(bk[k], False, sc, new)
            if bk[k].status == "applies" and k[0] in met_now:
                fc = fc.model_copy(update={"why": "now met by " + (", ".join(met_now[k[0]].met_by) or "the facts")})
            disappeared.append(fc)
    sb, sn = SEVERITY[base.verdict], SEVERITY[new.verdict]
    r = base.request
    return RequestDiff(
        id=rid,
        path=" -> ".join([r.origin, *r.via_codes, r.destination]),
        data=", ".join(r.data_categories),
        baseline=base.verdict,
        scenario=new.verdict,
        direction="better" if sn < sb else "worse" if sn > sb else "same",
        appeared=tuple(
            _fc(nk[k], True, sc, new)
            for k in nk
            if k not in bk and not (k[1] == "met" and (k[0], k[3]) in applied_before)
        ),
        disappeared=tuple(disappeared),
        obligations_appeared=tuple(oc(no[k]) for k in no if k not in bo or no[k].kind != bo[k].kind),
        obligations_disappeared=tuple(oc(bo[k]) for k in bo if k not in no or no[k].kind != bo[k].kind),
    )


def diff(engines: Engines, requests: list[dict[str, Any]], sc: Scenario, progress: Any = None) -> DiffResult:
    """Judge each request (dicts with an optional `id`) under the baseline and under `sc`."""
    rs, eng = engines.for_scenario(sc)
    base_eng = engines.engine()
    items = []
    for i, req in enumerate(requests):
        rid = str(req.get("id", f"#{i + 1}"))
        r = strip_id(req)
        try:
            b = base_eng.check(r)
            n = eng.check(sc.apply_request(r, rs, engines.today))
            items.append(compare(rid, b, n, sc))
        except RequestError as e:
            items.append(
                RequestDiff(
                    id=rid,
                    path=f"{r.get('origin')} -> {r.get('destination')}",
                    data="",
                    baseline="-",
                    scenario="-",
                    direction="same",
                    error=str(e),
                )
            )
        if progress:
            progress()
    counts = {
        "requests": len(items),
        "changed": sum(1 for x in items if x.changed),
        "verdict_changed": sum(1 for x in items if x.baseline != x.scenario),
        "better": sum(1 for x in items if x.direction == "better"),
        "worse": sum(1 for x in items if x.direction == "worse"),
        "errors": sum(1 for x in items if x.error),
    }
    return DiffResult(
        scenario=sc.name,
        changes=tuple(sc.summary()),
        baseline_ruleset=base_eng.ref,
        scenario_ruleset=eng.ref,
        items=tuple(items),
        counts=counts,
    )
