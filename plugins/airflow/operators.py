"""DfftTransferCheckOperator: judge a task's cross-border transfer before it runs; fail the task if the law forbids it.

`TransferCheckOperator` is the deprecated name of the same operator (it warns when used)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union, cast

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from ...engine import RequestError
from ..guard import AuditSink, Guard, GuardResult, OnConditional, OnUnavailable
from .hooks import DfftHook, mask_secret
from .lineage import lineage_of_summaries
from .regions import RegionMap, RegionMapError, Transfer, transfers_from_lineage
from .xcom import XCOM_KEY

_SPEC_FIELDS = (
    "origin",
    "destination",
    "via",
    "data_categories",
    "subjects",
    "safeguards",
    "exporter",
    "sector",
    "purpose",
    "as_of",
    "facts",
)
# the fields declared as arguments of their own; any other request field (request model v2) goes in `facts`
_DECLARED = tuple(f for f in _SPEC_FIELDS if f != "facts")
_OPTION_FIELDS = (
    "on_conditional",
    "on_unavailable",
    "api_url",
    "api_key",
    "rules_dir",
    "timeout",
    "audit",
    "region_map",
    "lineage_of",
    "dfft_conn_id",
)


class DfftTransferCheckMixin:
    """The check shared by DfftTransferCheckOperator and the @dfft_transfer_check decorator. Declare the transfer next to the
    task (origin, destination, data_categories, ...) or leave origin/destination out to derive it from the task's
    inlets/outlets (or those of the task named by `lineage_of`) through a region map."""

    # Declared-transfer fields, the API's URL and key, the connection id and on_conditional are templated, so they can
    # come from params, dag_run.conf, Variables ({{ var.value.dfft_api_key }}) or macros.
    dfft_template_fields: Sequence[str] = (
        "origin",
        "destination",
        "via",
        "data_categories",
        "subjects",
        "safeguards",
        "exporter",
        "sector",
        "purpose",
        "as_of",
        "facts",
        "api_url",
        "api_key",
        "on_conditional",
        "dfft_conn_id",
    )

    def _init_transfer(
        self,
        *,
        origin: Optional[str] = None,
        destination: Optional[str] = None,
        data_categories: Optional[Sequence[str]] = None,
        subjects: Optional[int] = None,
        safeguards: Optional[Sequence[str]] = None,
        via: Optional[Sequence[str]] = None,
        exporter: Optional[str] = None,
        sector: Optional[str] = None,
        purpose: Optional[str] = None,
        as_of: Any = None,
        facts: Optional[Mapping[str, Any]] = None,
        on_conditional: str = "fail",
        on_unavailable: str = "block",
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        rules_dir: Union[str, Path, None] = None,
        timeout: Optional[float] = None,
        audit: Union[AuditSink, str, None] = None,
        region_map: Union[RegionMap, dict, str, Path, None] = None,
        lineage_of: Optional[str] = None,
        dfft_conn_id: Optional[str] = None,
    ) -> None:
        if facts is not None and not isinstance(facts, Mapping) and "{{" not in str(facts):
            raise ValueError(
                f"facts must be a mapping of request fields (request model v2), not {type(facts).__name__}"
            )
        clash = sorted(set(facts or {}) & set(_DECLARED)) if isinstance(facts, Mapping) else []
        if clash:
            raise ValueError(f"facts repeats the declared field(s) {clash}: pass them as arguments of their own")
        if on_conditional not in ("fail", "warn") and "{{" not in str(on_conditional):  # a template: checked at run
            raise ValueError(f"on_conditional must be 'fail' or 'warn', not {on_conditional!r}")
        if on_unavailable not in ("block", "allow"):
            raise ValueError(f"on_unavailable must be 'block' or 'allow', not {on_unavailable!r}")
        if (origin is None) != (destination is None):
            raise ValueError("give both origin and destination, or neither (to derive them from inlets/outlets)")
        if dfft_conn_id and rules_dir is not None:
            raise ValueError("give either dfft_conn_id (judge through the API) or rules_dir (in-process), not both")
        self.origin, self.destination, self.via = origin, destination, list(via) if via else None
        self.data_categories = list(data_categories) if data_categories else None
        self.subjects, self.safeguards = subjects, list(safeguards) if safeguards else None
        self.exporter, self.sector, self.purpose, self.as_of = exporter, sector, purpose, as_of
        self.on_conditional, self.on_unavailable = on_conditional, on_unavailable
        self.api_url, self.api_key, self.rules_dir, self.timeout = api_url, api_key, rules_dir, timeout
        self.audit, self.region_map, self.lineage_of = audit, region_map, lineage_of
        self.dfft_conn_id = dfft_conn_id
        self.facts = dict(facts) if isinstance(facts, Mapping) else facts
        self._dfft_summaries: list[dict[str, Any]] = []

    # -- building the requests --------------------------------------------------------------------------------
    def _transfers(self) -> list[dict[str, Any]]:
        common = {k: getattr(self, k) for k in ("subjects", "safeguards", "exporter", "sector", "purpose", "as_of")}
        common = {k: v for k, v in common.items() if v not in (None, "", [])}
        if self.facts:
            if not isinstance(self.facts, Mapping):
                raise RegionMapError(f"facts rendered to {type(self.facts).__name__}, not a mapping of request fields")
            clash = sorted(set(self.facts) & set(_DECLARED))
            if clash:
                raise RegionMapError(f"facts repeats the declared field(s) {clash}")
            common.update(self.facts)  # recipient, purposes, exporter_role, ...: validated by the engine like the rest
        if isinstance(common.get("subjects"), str):
            # a templated field renders as a string; requests take integers only (strict), so read it here
            try:
                common["subjects"] = int(common["subjects"].strip().replace("_", ""))
            except ValueError:
                raise RegionMapError(f"subjects={common['subjects']!r} is not a whole number") from None
        if self.origin is not None:
            req = {"origin": self.origin, "destination": self.destination, **common}
            if self.via:
                req["via"] = self.via
            if not self.data_categories:
                raise RegionMapError("data_categories is required when origin and destination are declared")
            req["data_categories"] = self.data_categories
            return [req]
        task = self
        if self.lineage_of:
            dag = getattr(self, "dag", None)
            if dag is None or not dag.has_task(self.lineage_of):
                raise RegionMapError(f"lineage_of={self.lineage_of!r}: no such task in this DAG")
            task = dag.get_task(self.lineage_of)
        transfers: list[Transfer] = transfers_from_lineage(
            getattr(task, "inlets", None) or [],
            getattr(task, "outlets", None) or [],
            RegionMap.resolve(self.region_map),
            self.data_categories,
        )
        out = []
        for t in transfers:
            req = {
                "origin": t.origin,
                "destination": t.destination,
                "data_categories": list(t.data_categories),
                **common,
            }
            if self.via:
                req["via"] = self.via
            out.append(req)
        return out

    # -- running it -------------------------------------------------------------------------------------------
    def run_transfer_check(self, context: Any) -> list[dict[str, Any]]:
        """Judge every transfer; log the decisions; push them to XCom (key "dfft_decision"); raise
        AirflowFailException (no retry) when blocked, conditional with on_conditional="fail", or the request is
        invalid; AirflowException (retried as configured) when no verdict could be had and on_unavailable="block"."""
        log = self.log  # type: ignore[attr-defined]
        self._dfft_summaries = []
        if self.on_conditional not in ("fail", "warn"):
            raise AirflowFailException(f"dfft: on_conditional must be 'fail' or 'warn', not {self.on_conditional!r}")
        try:
            requests = self._transfers()
        except RegionMapError as e:
            raise AirflowFailException(f"dfft: {e}") from e
        api_url, api_key, key_header = self.api_url, self.api_key, "Authorization"
        timeout = float(self.timeout) if self.timeout is not None else 10.0
        if self.dfft_conn_id:
            try:  # the connection fills what the task does not set itself
                hook = DfftHook(self.dfft_conn_id, timeout=self.timeout)
                api_url, api_key = api_url or hook.api_url, api_key or hook.api_key
                key_header, timeout = hook.api_key_header, hook.timeout
            except ValueError as e:
                raise AirflowFailException(f"dfft: {e}") from e
        mask_secret(api_key)
        if not requests:
            log.info("dfft: the task's inlets and outlets are all in one region: no cross-border transfer to check")
            self._push(context, [])
            return []
        ti = context.get("ti") if hasattr(context, "get") else None
        ctx = {
            "dag_id": getattr(ti, "dag_id", None),
            "task_id": getattr(ti, "task_id", None),
            "run_id": getattr(ti, "run_id", None),
            "try_number": getattr(ti, "try_number", None),
            "checked_by": getattr(self, "task_id", None),
        }
        results: list[GuardResult] = []
        for req in requests:
            g = Guard(
                req,
                api_url=api_url,
                api_key=api_key,
                rules_dir=self.rules_dir,
                timeout=timeout,
                api_key_header=key_header,
                on_conditional=cast(OnConditional, self.on_conditional),
                on_unavailable=cast(OnUnavailable, self.on_unavailable),
                audit=self.audit,
                context=ctx,
                logger=_StdLogger(log),
            )
            try:
                results.append(g.evaluate())
            except RequestError as e:
                self._dfft_summaries = [_summary_of_error(req, e)]
                self._push(context, self._dfft_summaries)
                raise AirflowFailException(f"dfft: invalid transfer request {req}: {e}") from e
        summaries = [_summary(r) for r in results]
        self._dfft_summaries = summaries
        self._push(context, summaries)
        stopped = [r for r in results if not r.proceed]
        if stopped:
            text = "\n".join(r.message for r in stopped)
            if all(r.reason == "unavailable" for r in stopped):
                raise AirflowException(f"dfft: transfer check failed closed\n{text}")
            raise AirflowFailException(f"dfft: transfer not allowed\n{text}")
        return summaries

    # -- OpenLineage: the verdict and decision id as a run facet on the task's COMPLETE / FAIL events ------------------
    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return lineage_of_summaries(getattr(self, "_dfft_summaries", []))

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        return lineage_of_summaries(getattr(self, "_dfft_summaries", []))

    def _push(self, context: Any, summaries: list[dict[str, Any]]) -> None:
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is None:
            return
        value: Any = summaries[0] if len(summaries) == 1 else summaries
        try:
            ti.xcom_push(key=XCOM_KEY, value=value)
        except Exception as e:  # never let XCom trouble turn a stop into a go, nor mask the real outcome
            self.log.warning("dfft: could not push the decision to XCom: %s", e)  # type: ignore[attr-defined]


class _StdLogger:
    """Adapts Airflow's task logger (structlog in the Task SDK) to the guard's `log.info("%s", msg)` calls."""

    def __init__(self, log: Any):
        self._log = log

    def info(self, fmt: str, *args: Any) -> None:
        self._log.info(fmt % args if args else fmt)

    def warning(self, fmt: str, *args: Any) -> None:
        self._log.warning(fmt % args if args else fmt)

    def error(self, fmt: str, *args: Any) -> None:
        self._log.error(fmt % args if args else fmt)


def _summary(r: GuardResult) -> dict[str, Any]:
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


def _summary_of_error(req: dict[str, Any], e: RequestError) -> dict[str, Any]:
    return {
        "verdict": None,
        "reason": "invalid",
        "proceed": False,
        "decision_id": None,
        "request": req,
        "error": str(e),
        "decision": None,
    }


class DfftTransferCheckOperator(DfftTransferCheckMixin, BaseOperator):
    """Judge a cross-border transfer; fail on blocked; on conditional fail or warn (`on_conditional`).

    The decision goes to XCom under "dfft_decision" (and as the return value). Put it upstream of the task that ships
    the data, or let it read that task's lineage with `lineage_of="ship_task_id"`.

        DfftTransferCheckOperator(task_id="check", origin="JP", destination="VN", data_categories=["personal"],
                                  dfft_conn_id="dfft_default")

    With `dfft_conn_id` the API's URL and key come from that Airflow connection (type `dfft`, see DfftHook); an
    explicit `api_url` / `api_key` wins over it. Without either, `rules_dir` or the embedded bundle judge in-process.
    """

    template_fields: Sequence[str] = DfftTransferCheckMixin.dfft_template_fields
    ui_color = "#e8d5f0"

    def __init__(
        self,
        *,
        origin: Optional[str] = None,
        destination: Optional[str] = None,
        data_categories: Optional[Sequence[str]] = None,
        subjects: Optional[int] = None,
        safeguards: Optional[Sequence[str]] = None,
        via: Optional[Sequence[str]] = None,
        exporter: Optional[str] = None,
        sector: Optional[str] = None,
        purpose: Optional[str] = None,
        as_of: Any = None,
        facts: Optional[Mapping[str, Any]] = None,
        on_conditional: str = "fail",
        on_unavailable: str = "block",
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        rules_dir: Union[str, Path, None] = None,
        timeout: Optional[float] = None,
        audit: Union[AuditSink, str, None] = None,
        region_map: Union[RegionMap, dict, str, Path, None] = None,
        lineage_of: Optional[str] = None,
        dfft_conn_id: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_transfer(
            origin=origin,
            destination=destination,
            data_categories=data_categories,
            subjects=subjects,
            safeguards=safeguards,
            via=via,
            exporter=exporter,
            sector=sector,
            purpose=purpose,
            as_of=as_of,
            facts=facts,
            on_conditional=on_conditional,
            on_unavailable=on_unavailable,
            api_url=api_url,
            api_key=api_key,
            rules_dir=rules_dir,
            timeout=timeout,
            audit=audit,
            region_map=region_map,
            lineage_of=lineage_of,
            dfft_conn_id=dfft_conn_id,
        )

    def execute(self, context: Any) -> Any:
        summaries = self.run_transfer_check(context)
        return summaries[0] if len(summaries) == 1 else summaries


# -- the names before the Dfft prefix (deprecated) -------------------------------------------------------------------
TransferCheckMixin = DfftTransferCheckMixin


def deprecation_warning_class() -> type[Warning]:
    try:
        from airflow.exceptions import AirflowProviderDeprecationWarning

        return AirflowProviderDeprecationWarning
    except ImportError:  # pragma: no cover - depends on the Airflow release
        return DeprecationWarning


class TransferCheckOperator(DfftTransferCheckOperator):
    """Deprecated: use DfftTransferCheckOperator (same arguments)."""

    def __init__(self, **kwargs: Any) -> None:
        warnings.warn(
            "TransferCheckOperator is deprecated; use dfft.plugins.airflow.DfftTransferCheckOperator",
            deprecation_warning_class(),
            stacklevel=2,
        )
        super().__init__(**kwargs)
