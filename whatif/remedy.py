"""Cheapest path to compliance: the smallest sets of safeguards that make a transfer allowed (or, when blocked,
conditional), found by breadth-first search over the safeguard lattice.

Adding a safeguard never raises severity (monotonic safeguards, a property the test suite checks), so a superset of
a solution is a solution: the search goes by subset size and skips supersets of solutions already found, which
makes every solution minimal. Candidates are the safeguards in the `unless` of the rules that fired and in the
obligations' `one_of` (a safeguard no fired rule mentions cannot change the verdict), widened once with the
candidates of the decisions reached by single safeguards (chained rules can bring new ones into play).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict

from ..engine import Decision
from ..engine.decision import CitationOut, ObligationOut
from ..rules.conditions import leaf_values, walk
from ..rules.model import RuleSet
from .context import SEVERITY, Engines, strip_id
from .scenario import Scenario


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Remedy(Out):
    safeguards: tuple[str, ...]
    verdict: str
    target: str  # the verdict it was searched for: allowed | conditional
    obligations: tuple[ObligationOut, ...]  # what the resulting decision still asks (ongoing duties, gating ones)
    cures: tuple[str, ...]  # findings of the original decision that this set makes go away / met


class Blocker(Out):
    rule_id: str
    title: str
    citation: Optional[CitationOut]


class RemedyResult(Out):
    request: dict[str, Any]
    scenario: Optional[str]
    verdict: str
    candidates: tuple[str, ...]
    remedies: tuple[Remedy, ...]
    blockers: tuple[Blocker, ...]  # findings no safeguard cures (when blocked)
    evaluated: int
    max_size: int
    note: Optional[str] = None


def candidates_of(d: Decision, rs: RuleSet) -> set[str]:
    out: set[str] = set()
    for f in d.findings:
        if f.status != "applies":
            continue
        try:
            rule = rs.rule(f.rule_id)
        except KeyError:
            continue
        if rule.unless:
            out |= {
                v
                for leaf, pos in walk(rule.unless)
                if pos and leaf.get("field") == "safeguards"
                for v in leaf_values(leaf)
            }
        for ob in rule.obligations:
            out |= set(ob.one_of)
    for o in d.obligations:
        out |= set(o.one_of)
    return out & set(rs.vocabulary.safeguards)


def remedy(
    engines: Engines,
    request: dict[str, Any],
    sc: Optional[Scenario] = None,
    max_size: int = 4,
    max_candidates: int = 16,
) -> RemedyResult:
    rs, eng = engines.for_scenario(sc)
    req = strip_id(sc.apply_request(request, rs, engines.today) if sc else request)
    base = eng.check(req)
    held = set(base.request.safeguard_ids)
    evaluated = 1

    def judge(extra: tuple[str, ...]) -> Decision:
        nonlocal evaluated
        evaluated += 1
        return eng.check({**req, "safeguards": sorted(held | set(extra))})

    blockers = tuple(
        Blocker(rule_id=f.rule_id, title=f.title, citation=f.citation)
        for f in base.findings
        if f.status == "applies" and f.effect == "block"
    )
    cands = candidates_of(base, rs) - held
    for s in sorted(cands):
        cands |= candidates_of(judge((s,)), rs) - held
    cand = sorted(cands)
    note = None
    if len(cand) > max_candidates:
        note = f"{len(cand)} candidate safeguards; searched the first {max_candidates}"
        cand = cand[:max_candidates]
    targets = (
        [] if base.verdict == "allowed" else (["conditional", "allowed"] if base.verdict == "blocked" else ["allowed"])
    )
    remedies: list[Remedy] = []
    memo: dict[tuple[str, ...], Decision] = {}
    base_keys = {(f.rule_id, f.leg_path) for f in base.findings if f.status == "applies"}
    for target in targets:
        found: list[set[str]] = []
        for size in range(1, min(max_size, len(cand)) + 1):
            for combo in combinations(cand, size):
                if any(s <= set(combo) for s in found):
                    continue
                d = memo.get(combo) or judge(combo)
                memo[combo] = d
                if SEVERITY[d.verdict] <= SEVERITY[target]:
                    found.append(set(combo))
                    still = {(f.rule_id, f.leg_path) for f in d.findings if f.status == "applies"}
                    remedies.append(
                        Remedy(
                            safeguards=combo,
                            verdict=d.verdict,
                            target=target,
                            obligations=d.obligations,
                            cures=tuple(sorted(r for r, _ in base_keys - still)),
                        )
                    )
        if target == "conditional" and not found and blockers:
            note = "blocked by rules no safeguard cures: " + ", ".join(b.rule_id for b in blockers)
    return RemedyResult(
        request=base.request.model_dump(mode="json"),
        scenario=sc.name if sc else None,
        verdict=base.verdict,
        candidates=tuple(cand),
        remedies=tuple(remedies),
        blockers=blockers,
        evaluated=evaluated,
        max_size=max_size,
        note=note,
    )
