"""The dfft decision on the task's OpenLineage events (apache-airflow-providers-openlineage, part of dfft[airflow]).

DfftTransferCheckOperator and @dfft_transfer_check implement `get_openlineage_facets_on_complete/_on_failure`; the
OpenLineage listener adds what they return to the task's COMPLETE / FAIL run event as the run facet `dfft`:

    "dfft": {"verdict": "blocked", "proceed": false, "reason": "blocked", "decisionId": "01J...",
             "transfers": [{"origin": "VN", "destination": "SG", "dataCategories": ["core_data"], "verdict": "blocked",
                            "reason": "blocked", "decisionId": "01J...", "mode": "api", "rules": ["VN-core"],
                            "rulesetVersion": "...", "rulesetHash": "..."}],
             "_producer": "...", "_schemaURL": ".../docs/openlineage/DfftDecisionRunFacet.json"}

`verdict` is the strictest verdict over the task's transfers (blocked > conditional > allowed; None when one had no
verdict), `decisionId` the API's audit-log id when the task judged one transfer through the API (None in-process).
OpenLineage leaves None fields out of the event.
The inputs and outputs stay empty, so the listener still takes them from the task's inlets and outlets. Without the
OpenLineage packages this module yields nothing and the task is unaffected.
"""

from __future__ import annotations

from typing import Any, Optional

from .. import DOCS_URL

FACET_NAME = "dfft"
SCHEMA_URL = DOCS_URL.rsplit("/", 1)[0] + "/openlineage/DfftDecisionRunFacet.json"
_SEVERITY = {"allowed": 0, "conditional": 1, "blocked": 2}

try:
    import attr  # attrs: installed with openlineage-python, which defines its facets with it
    from openlineage.client.facet_v2 import RunFacet

    @attr.define
    class DfftDecisionRunFacet(RunFacet):
        """The dfft verdict(s) a task's transfer check came to, and the API's decision id."""

        verdict: Optional[str]
        proceed: bool
        reason: str
        decisionId: Optional[str]  # OpenLineage facet fields are camelCase
        transfers: list[dict[str, Any]] = attr.field(factory=list)

        @staticmethod
        def _get_schema() -> str:
            return SCHEMA_URL

except ImportError:  # pragma: no cover - the OpenLineage packages are not installed
    DfftDecisionRunFacet = None  # type: ignore[assignment,misc]


def facet_of_summaries(summaries: list[dict[str, Any]]) -> Any:
    """The run facet for the operator's XCom summaries (see operators._summary), or None."""
    if DfftDecisionRunFacet is None or not summaries:
        return None
    transfers = []
    for s in summaries:
        d = s.get("decision") or {}
        req = s.get("request") or {}
        ruleset = d.get("ruleset") or {}
        transfers.append(
            {
                "origin": req.get("origin"),
                "destination": req.get("destination"),
                "dataCategories": list(req.get("data_categories") or []),
                "verdict": s.get("verdict"),
                "reason": s.get("reason"),
                "decisionId": s.get("decision_id"),
                "mode": s.get("mode"),
                "rules": [f.get("rule_id") for f in d.get("findings") or []],
                "rulesetVersion": ruleset.get("version"),
                "rulesetHash": ruleset.get("hash"),
            }
        )
    verdicts: list[Optional[str]] = [s.get("verdict") for s in summaries]
    worst = None if None in verdicts else max(verdicts, key=lambda v: _SEVERITY.get(str(v), 3))
    stopped = [s for s in summaries if not s.get("proceed")]
    ids = [t["decisionId"] for t in transfers]
    return DfftDecisionRunFacet(
        verdict=worst,
        proceed=not stopped,
        reason=(stopped[0] if stopped else summaries[0]).get("reason") or "",
        decisionId=ids[0] if len(ids) == 1 else None,
        transfers=transfers,
    )


def lineage_of_summaries(summaries: list[dict[str, Any]]) -> Any:
    """An OperatorLineage carrying the `dfft` run facet (no inputs/outputs), or None."""
    facet = facet_of_summaries(summaries)
    if facet is None:
        return None
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:  # pragma: no cover - the OpenLineage provider is not installed
        return None
    return OperatorLineage(run_facets={FACET_NAME: facet})
