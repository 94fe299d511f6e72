"""Timeline: the verdict for one transfer across dates. Only the dates where something can change are evaluated:
rule effective dates and list membership dates (not a day-by-day scan)."""

from __future__ import annotations

from datetime import date
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict

from ..engine.decision import CitationOut
from ..rules.model import RuleSet
from .context import Engines
from .scenario import Scenario


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Change(Out):
    rule_id: str
    change: str  # "starts to apply" | "stops applying" | "met" ...
    title: str
    citation: Optional[CitationOut]


class Segment(Out):
    start: date  # first day of the segment
    end: Optional[date]  # first day after it (None: open-ended, up to the end of the range and beyond)
    verdict: str
    findings: tuple[str, ...]
    obligations: tuple[str, ...]
    changes: tuple[Change, ...] = ()


class Timeline(Out):
    request: dict[str, Any]
    scenario: Optional[str]
    start: date
    end: date
    dates_evaluated: int
    segments: tuple[Segment, ...]
    scenario_segments: tuple[Segment, ...] = ()


def change_dates(rs: RuleSet, start: date, end: date) -> list[date]:
    days = {start}
    for r in rs.all_rules():
        days |= {d for d in (r.effective_from, r.effective_until) if d}
    for j in rs.jurisdictions.values():
        days |= {d for u in j.uncovered for d in (u.from_, u.until)}  # coverage gaps open and close
    lists = [*rs.groups.values(), *(lst for j in rs.jurisdictions.values() for lst in j.lists.values())]
    for lst in lists:
        for m in lst.members:
            days |= {d for d in (m.from_, m.until) if d}
    return sorted(d for d in days if start <= d <= end)


def _segments(engine: Any, request: dict[str, Any], days: list[date]) -> list[Segment]:
    segs: list[Segment] = []
    prev = None
    for day in days:
        d = engine.check({**request, "as_of": day})
        key = (d.verdict, tuple((f.rule_id, f.status) for f in d.findings))
        if prev is not None and key == prev[0]:
            continue
        findings = {f.rule_id: f for f in d.findings if f.status != "none"}
        changes: list[Change] = []
        if prev is not None:
            old = prev[1]
            for rid, f in findings.items():
                if rid not in old:
                    changes.append(
                        Change(
                            rule_id=rid,
                            change="starts to apply" if f.status == "applies" else "met",
                            title=f.title,
                            citation=f.citation,
                        )
                    )
                elif old[rid].status != f.status:
                    changes.append(
                        Change(
                            rule_id=rid, change=f"{old[rid].status} -> {f.status}", title=f.title, citation=f.citation
                        )
                    )
            for rid, f in old.items():
                if rid not in findings:
                    changes.append(Change(rule_id=rid, change="stops applying", title=f.title, citation=f.citation))
            segs[-1] = segs[-1].model_copy(update={"end": day})
        segs.append(
            Segment(
                start=day,
                end=None,
                verdict=d.verdict,
                findings=tuple(f"{f.rule_id} ({f.status})" for f in d.findings),
                obligations=tuple(o.id for o in d.obligations if o.kind == "gating"),
                changes=tuple(changes),
            )
        )
        prev = (key, findings)
    return segs


def timeline(
    engines: Engines, request: dict[str, Any], start: date, end: date, sc: Optional[Scenario] = None
) -> Timeline:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    req = {k: v for k, v in request.items() if k not in ("id", "as_of")}
    days = change_dates(engines.baseline, start, end)
    segs = _segments(engines.engine(), req, days)
    ssegs: list[Segment] = []
    if sc is not None:
        rs, eng = engines.for_scenario(sc)
        sdays = sorted(set(days) | set(change_dates(rs, start, end)))
        sreq = {k: v for k, v in sc.apply_request(req, rs, start).items() if k != "as_of"}
        ssegs = _segments(eng, sreq, sdays)
        days = sdays
    return Timeline(
        request=req,
        scenario=sc.name if sc else None,
        start=start,
        end=end,
        dates_evaluated=len(days),
        segments=tuple(segs),
        scenario_segments=tuple(ssegs),
    )
