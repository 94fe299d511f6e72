"""dfft for Prefect: a connection Block and a transfer-check task (`pip install 'dfft[prefect]'`).

    from prefect import flow
    from dfft.plugins.prefect import DfftConnection, dfft_transfer_check

    DfftConnection(api_url="http://dfft.internal:8000", api_key="...").save("dfft")   # once (or in the UI)

    @flow
    def nightly():
        dfft_transfer_check(origin="SG", destination="JP", data_categories=["personal"], safeguards=["asean_mcc"],
                            connection="dfft")        # raises TransferBlocked: the flow stops here
        push_to_tokyo()

The task fails with `dfft.TransferBlocked` (the decision attached, findings and citations in the message) when the
transfer is blocked, conditional with on_conditional="fail", or no verdict can be had with on_unavailable="block".
It retries only for "no verdict" (a blocked transfer stays blocked): `dfft_transfer_check.with_options(retries=3)`.
Its result is a summary dict (verdict, reason, proceed, decision_id, decision), and it leaves a Markdown artifact
with the explanation. Built on `dfft.guard` (same policies, in-process or through the API).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from . import DOCS_URL as _DOCS
from .guard import Guard, GuardResult, TransferBlocked

__all__ = ["DfftConnection", "dfft_transfer_check", "retry_if_unavailable", "summary"]

DOCS_URL = _DOCS + "#prefect"


class DfftConnection(Block):
    """Where the dfft API is and the key to call it with (stored encrypted by Prefect; never logged)."""

    _block_type_name = "dfft Connection"
    _block_type_slug = "dfft-connection"
    _description = "Connection to a dfft API: judge cross-border data transfers before a flow ships data."
    _documentation_url = DOCS_URL

    api_url: str = Field(..., description="dfft API base URL, e.g. http://dfft.internal:8000")
    api_key: Optional[SecretStr] = Field(default=None, description="API key with the check scope")
    timeout: float = Field(default=10.0, description="seconds per API call")
    api_key_header: str = Field(default="Authorization", description="header carrying the key (Bearer) or X-API-Key")

    def guard(self, request: Optional[dict[str, Any]] = None, **kwargs: Any) -> Guard:
        """A `dfft.guard` that judges through this connection (kwargs: request fields and guard options)."""
        return Guard(
            request,
            api_url=self.api_url,
            api_key=self.api_key.get_secret_value() if self.api_key else None,
            timeout=self.timeout,
            api_key_header=self.api_key_header,
            **kwargs,
        )


def retry_if_unavailable(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry only when no verdict could be had (never a blocked or conditional one)."""
    try:
        state.result()
    except TransferBlocked as e:
        return e.reason == "unavailable"
    except Exception:
        return False
    return False


def summary(r: GuardResult) -> dict[str, Any]:
    """The task's result: JSON-serialisable, the full decision included."""
    return {
        "verdict": r.verdict,
        "reason": r.reason,
        "proceed": r.proceed,
        "mode": r.mode,
        "decision_id": r.decision_id,
        "request": r.request,
        "error": str(r.error) if r.error else None,
        "decision": r.decision.model_dump(mode="json") if r.decision else None,
    }


@task(name="dfft-transfer-check", retry_condition_fn=retry_if_unavailable, persist_result=False)
def dfft_transfer_check(
    origin: str,
    destination: str,
    data_categories: Sequence[str],
    *,
    subjects: Optional[int] = None,
    safeguards: Optional[Sequence[str]] = None,
    via: Optional[Sequence[str]] = None,
    exporter: Optional[str] = None,
    sector: Optional[str] = None,
    purpose: Optional[str] = None,
    as_of: Optional[str] = None,
    facts: Optional[dict[str, Any]] = None,
    connection: Union[DfftConnection, str, None] = None,
    rules_dir: Optional[str] = None,
    on_conditional: Optional[str] = None,
    on_unavailable: Optional[str] = None,
    artifact: bool = True,
) -> dict[str, Any]:
    """Judge one transfer; raise TransferBlocked when it may not go ahead, else return the summary.

    `connection`: a DfftConnection or the name of a saved one; without it, `rules_dir` (in-process) or the guard's
    defaults (DFFT_API_URL, else the embedded bundle). Policies default to DFFT_ON_CONDITIONAL / DFFT_ON_UNAVAILABLE,
    then "fail" / "block". `facts`: any other request field of request model v2 (recipient, purposes, exporter_role,
    subjects_in, counts, ...), validated like the rest."""
    request: dict[str, Any] = {
        "origin": origin,
        "destination": destination,
        "data_categories": list(data_categories),
        "subjects": subjects,
        "safeguards": list(safeguards) if safeguards else None,
        "via": list(via) if via else None,
        "exporter": exporter,
        "sector": sector,
        "purpose": purpose,
        "as_of": as_of,
    }
    request = {k: v for k, v in request.items() if v is not None}
    if facts:
        clash = sorted(set(facts) & {"origin", "destination", "data_categories", *request})
        if clash:
            raise ValueError(f"facts repeats the field(s) {clash}: pass them as arguments of their own")
        request.update(facts)
    log = get_run_logger()
    options: dict[str, Any] = {
        "on_conditional": on_conditional,
        "on_unavailable": on_unavailable,
        "logger": log,
        "context": _run_context(),
    }
    conn: Optional[DfftConnection] = DfftConnection.load(connection) if isinstance(connection, str) else connection
    if conn is not None:
        if rules_dir is not None:
            raise ValueError("give either connection or rules_dir, not both")
        g = conn.guard(request, **options)
    else:
        g = Guard(request, rules_dir=rules_dir, **options)
    r = g.evaluate()
    if artifact:
        create_markdown_artifact(
            markdown=f"**dfft: {(r.verdict or 'no verdict').upper()}** ({r.reason})\n\n```\n{r.message}\n```",
            description=f"dfft transfer check {origin} -> {destination}",
        )
    r.raise_if_stopped()
    return summary(r)


def _run_context() -> dict[str, Any]:
    try:
        from prefect.context import get_run_context

        ctx = get_run_context()
        tr = getattr(ctx, "task_run", None)
        return {"task_run_id": str(tr.id), "flow_run_id": str(tr.flow_run_id), "task": tr.name} if tr else {}
    except Exception:
        return {}
