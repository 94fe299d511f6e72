"""Diff: judge a set of transfers under the baseline and under a scenario, and explain what changed."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict

from ..engine import Decision
from ..engine.decision import CitationOut, Finding, RuleSetRef
from ..engine.request import RequestError
from .batch import BatchJudge
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


def diff(
    engines: Engines,
    requests: list[dict[str, Any]],
    sc: Scenario,
    progress: Any = None,
    judge: Optional[BatchJudge] = None,
) -> DiffResult:
    """Judge each request (dicts with an optional `id`) under the baseline and under `sc`. `judge` judges them in
    batches on another backend (the CLI's --ray); by default they are judged in-process, one at a time."""
    if judge is None:
        rs, eng = engines.for_scenario(sc)
        base_eng = engines.engine()
        base_ref, scenario_ref = base_eng.ref, eng.ref
    else:
        rs = sc.apply_law(engines.baseline)
        base_ref = RuleSetRef(version=engines.baseline.version, hash=engines.pool.hash_of(engines.baseline))
        scenario_ref = RuleSetRef(version=rs.version, hash=engines.pool.hash_of(rs))
    ids = [str(req.get("id", f"#{i + 1}")) for i, req in enumerate(requests)]
    plain = [strip_id(req) for req in requests]
    results: list[Any] = [None] * len(plain)  # per request: (baseline, scenario) decisions, or the RequestError
    if judge is None:
        for i, r in enumerate(plain):
            try:
                results[i] = (base_eng.check(r), eng.check(sc.apply_request(r, rs, engines.today)))
            except RequestError as e:
                results[i] = e
            if progress:
                progress()
    else:

        def tick(n: int) -> None:
            for _ in range(n):
                progress()

        base = judge(plain, False, None)
        todo: list[int] = []
        scenario_requests = []
        for i, (r, b) in enumerate(zip(plain, base, strict=True)):
            if isinstance(b, RequestError):
                results[i] = b
                continue
            try:
                scenario_requests.append(sc.apply_request(r, rs, engines.today))
                todo.append(i)
            except RequestError as e:
                results[i] = e
        if progress:
            tick(len(plain) - len(todo))
        for i, n in zip(todo, judge(scenario_requests, True, tick if progress else None), strict=True):
            results[i] = n if isinstance(n, RequestError) else (base[i], n)
    items = []
    for rid, r, res in zip(ids, plain, results, strict=True):
        if isinstance(res, RequestError):
            items.append(
                RequestDiff(
                    id=rid,
                    path=f"{r.get('origin')} -> {r.get('destination')}",
                    data="",
                    baseline="-",
                    scenario="-",
                    direction="same",
                    error=str(res),
                )
            )
        else:
            items.append(compare(rid, res[0], res[1], sc))
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
        baseline_ruleset=base_ref,
        scenario_ruleset=scenario_ref,
        items=tuple(items),
        counts=counts,
    )
