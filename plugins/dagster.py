"""dfft for Dagster: a resource and a blocking asset check (`pip install 'dfft[dagster]'`).

    import dagster as dg
    from dfft.plugins.dagster import DfftResource, dfft_asset_check

    @dg.asset
    def customers(): ...                                   # the Tokyo warehouse table

    @dg.asset(deps=[customers])
    def customers_hanoi(dfft: DfftResource):               # the copy to the Hanoi CRM
        dfft.check(origin="JP", destination="VN", data_categories=["personal"], safeguards=["consent"])
        copy()                                             # runs only if the transfer may go ahead

    customers_may_go_to_hanoi = dfft_asset_check(
        asset=customers, origin="JP", destination="VN", data_categories=["personal"], safeguards=["consent"]
    )

    defs = dg.Definitions(
        assets=[customers, customers_hanoi],
        asset_checks=[customers_may_go_to_hanoi],
        resources={"dfft": DfftResource(api_url="http://dfft.internal:8000", api_key=dg.EnvVar("DFFT_API_KEY"))},
    )

The asset check is blocking: when the transfer is blocked (or conditional with on_conditional="fail", or no verdict
can be had with on_unavailable="block") it fails with severity ERROR and Dagster does not materialise the assets
downstream of the checked one. A conditional verdict with on_conditional="warn" fails the check with severity WARN,
which does not block (so does "no verdict" with on_unavailable="allow"). `DfftResource.check` inside an asset body
raises `dagster.Failure`, so the asset itself does not materialise. Both build on `dfft.guard` (same policies,
in-process or through the API).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import dagster as dg
from pydantic import Field

from ..engine import Decision
from ..engine.request import TransferRequest
from .guard import Guard, GuardResult, OnConditional, OnUnavailable

__all__ = ["DfftResource", "dfft_asset_check", "decision_metadata"]

# every request field but the three given by name (request model v2 included: recipient, purposes, exporter_role, ...)
_REQUEST_ARGS = tuple(f for f in TransferRequest.model_fields if f not in ("origin", "destination", "data_categories"))


class DfftResource(dg.ConfigurableResource):
    """Where and how to judge transfers: through the dfft API (`api_url`, `api_key`) or in-process (`rules_dir`, or
    neither for the embedded rule bundle / the DFFT_API_URL environment variable), and the stop policies."""

    api_url: Optional[str] = Field(default=None, description="dfft API base URL, e.g. http://dfft.internal:8000")
    api_key: Optional[str] = Field(
        default=None,
        description="API key with the check scope; pass dg.EnvVar('DFFT_API_KEY') to keep it out of config",
    )
    rules_dir: Optional[str] = Field(default=None, description="judge in-process with this rules folder instead")
    timeout: float = Field(default=10.0, description="seconds per API call")
    api_key_header: str = Field(default="Authorization", description="header carrying the key (Bearer) or X-API-Key")
    on_conditional: str = Field(default="fail", description="'fail' (default) or 'warn' on a conditional verdict")
    on_unavailable: str = Field(
        default="block", description="'block' (default, fail closed) or 'allow' without verdict"
    )
    audit: Optional[str] = Field(default=None, description="audit sink 'module:callable' (in-process mode)")

    def guard(
        self,
        *,
        on_conditional: Optional[str] = None,
        on_unavailable: Optional[str] = None,
        context: Optional[dict[str, Any]] = None,
        **request: Any,
    ) -> Guard:
        """A `dfft.guard` with this resource's settings for the transfer described by `request`."""
        return Guard(
            request,
            api_url=self.api_url,
            api_key=self.api_key,
            rules_dir=self.rules_dir,
            timeout=self.timeout,
            api_key_header=self.api_key_header,
            on_conditional=_policy(on_conditional or self.on_conditional, "on_conditional", ("fail", "warn")),
            on_unavailable=_policy(on_unavailable or self.on_unavailable, "on_unavailable", ("block", "allow")),
            audit=self.audit,
            context=context,
        )

    def evaluate(self, **kwargs: Any) -> GuardResult:
        """Judge the transfer and return the outcome without raising (except RequestError for an invalid request)."""
        return self.guard(**kwargs).evaluate()

    def check(self, **kwargs: Any) -> Optional[Decision]:
        """Judge the transfer; raise `dagster.Failure` (with the decision as metadata) when it may not go ahead, so the
        asset or op calling it does not materialise. Only "no verdict" failures may be retried."""
        r = self.evaluate(**kwargs)
        if not r.proceed:
            raise dg.Failure(
                description=r.message, metadata=decision_metadata(r), allow_retries=r.reason == "unavailable"
            )
        return r.decision


def _policy(value: str, name: str, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, not {value!r}")
    return value


def decision_metadata(r: GuardResult) -> dict[str, Any]:
    """Dagster metadata for one guard outcome: verdict, reason, decision id, rules and the explanation."""
    d = r.decision
    return {
        "dfft/verdict": r.verdict or "no verdict",
        "dfft/reason": r.reason,
        "dfft/proceed": r.proceed,
        "dfft/mode": r.mode,
        "dfft/decision_id": r.decision_id or "",
        "dfft/rules": dg.MetadataValue.json([f.rule_id for f in d.findings] if d else []),
        "dfft/request": dg.MetadataValue.json(r.request),
        "dfft/explanation": dg.MetadataValue.md("```\n" + r.message + "\n```"),
    }


def dfft_asset_check(
    *,
    asset: Any,
    origin: str,
    destination: str,
    data_categories: Sequence[str],
    name: Optional[str] = None,
    description: Optional[str] = None,
    blocking: bool = True,
    resource_key: str = "dfft",
    on_conditional: Optional[OnConditional] = None,
    on_unavailable: Optional[OnUnavailable] = None,
    **request: Any,
) -> dg.AssetChecksDefinition:
    """A (by default blocking) asset check on `asset` that judges the transfer origin -> destination of its data.

    Failed with severity ERROR when the transfer may not go ahead (blocked; conditional with on_conditional="fail";
    no verdict with on_unavailable="block"): downstream assets do not materialise. A conditional verdict with
    on_conditional="warn" fails it with severity WARN (not blocking). An invalid request raises (the check errors).
    Extra keyword arguments are request fields: via, subjects, safeguards, exporter, sector, purpose, as_of and those
    of request model v2 (purposes, recipient, exporter_role, subjects_in, counts, ...). The policies default to the
    resource's."""
    unknown = set(request) - set(_REQUEST_ARGS)
    if unknown:
        raise TypeError(f"unknown argument(s) {sorted(unknown)}; request fields are {list(_REQUEST_ARGS)}")
    transfer = {"origin": origin, "destination": destination, "data_categories": list(data_categories), **request}
    check_name = name or f"dfft_transfer_{origin}_to_{destination}".lower()
    text = description or (
        f"dfft: may {', '.join(data_categories)} data go from {origin} to {destination}? "
        "Fails (blocking downstream assets) unless the transfer is allowed."
    )

    @dg.asset_check(
        asset=asset, name=check_name, description=text, blocking=blocking, required_resource_keys={resource_key}
    )
    def _dfft_check(context):  # unannotated: Dagster reads the annotation, and here it would be a string
        resource: DfftResource = getattr(context.resources, resource_key)
        ctx = {"run_id": context.run.run_id, "check": check_name, "job": context.run.job_name}
        r = resource.evaluate(on_conditional=on_conditional, on_unavailable=on_unavailable, context=ctx, **transfer)
        (context.log.info if r.reason == "allowed" else context.log.warning)(r.message)
        return dg.AssetCheckResult(
            passed=r.reason == "allowed",
            severity=dg.AssetCheckSeverity.WARN if r.proceed else dg.AssetCheckSeverity.ERROR,
            metadata=decision_metadata(r),
            description=r.message.splitlines()[0],
        )

    return _dfft_check
