"""dfft.plugins.dagster for real: assets materialised with Dagster's in-process API (`dagster.materialize`, an
ephemeral instance), judged in-process on the fixture bundle or through a real dfft API on loopback.

No `from __future__ import annotations`: Dagster reads the resource annotations of asset functions at definition."""

import os
from typing import Any

import pytest

dg = pytest.importorskip(
    "dagster", reason="Dagster is not installed: tests/dagster runs in .ci/run's Dagster stage (.venv-dagster)"
)

from dfft.plugins.dagster import DfftResource, dfft_asset_check  # noqa: E402
from tests.conftest import MINI  # noqa: E402
from tests.orchestration.servers import free_port  # noqa: E402

ALLOWED: dict[str, Any] = dict(
    origin="JP", destination="VN", data_categories=["personal"], safeguards=["consent"], as_of="2025-01-01"
)
CONDITIONAL: dict[str, Any] = dict(origin="JP", destination="VN", data_categories=["personal"], as_of="2026-06-01")
BLOCKED: dict[str, Any] = dict(origin="VN", destination="SG", data_categories=["core_data"], as_of="2026-06-01")


def _pipeline(transfer: dict[str, Any], **check_options: Any) -> tuple[list[Any], list[str]]:
    """customers (source) -> customers_abroad (the export), with a blocking dfft check on customers."""
    shipped: list[str] = []

    @dg.asset
    def customers() -> int:
        return 3

    @dg.asset(deps=[customers])
    def customers_abroad() -> None:
        shipped.append("customers")

    check = dfft_asset_check(asset=customers, **transfer, **check_options)
    return [customers, customers_abroad, check], shipped


def _run(defs: list[Any], resource: DfftResource) -> Any:
    return dg.materialize(defs, resources={"dfft": resource}, raise_on_error=False)


def _evaluation(result: Any) -> Any:
    (ev,) = result.get_asset_check_evaluations()
    return ev


def _materialized(result: Any) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_allowed_passes_and_the_export_materialises(api_url):
    defs, shipped = _pipeline(ALLOWED)
    result = _run(defs, DfftResource(api_url=api_url, api_key=os.environ["DFFT_API_KEY"]))
    assert result.success
    ev = _evaluation(result)
    assert ev.passed and ev.metadata["dfft/verdict"].value == "allowed"
    assert ev.metadata["dfft/mode"].value == "api" and ev.metadata["dfft/decision_id"].value  # the API's audit id
    assert ev.metadata["dfft/rules"].value == ["JP-consent"]
    assert shipped == ["customers"] and _materialized(result) == {"customers", "customers_abroad"}


def test_blocked_fails_the_check_and_the_export_does_not_materialise(api_url):
    defs, shipped = _pipeline(BLOCKED)
    result = _run(defs, DfftResource(api_url=api_url, api_key=os.environ["DFFT_API_KEY"]))
    ev = _evaluation(result)
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    assert ev.metadata["dfft/verdict"].value == "blocked" and "VN-core" in ev.metadata["dfft/rules"].value
    assert "Fixture CSL, Art. 26" in ev.metadata["dfft/explanation"].value
    assert shipped == [] and "customers_abroad" not in _materialized(result)


def test_conditional_fails_by_default_and_blocks_the_export():
    defs, shipped = _pipeline(CONDITIONAL)
    result = _run(defs, DfftResource(rules_dir=str(MINI)))
    ev = _evaluation(result)
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    assert ev.metadata["dfft/reason"].value == "conditional" and ev.metadata["dfft/mode"].value == "in-process"
    assert shipped == [] and "customers_abroad" not in _materialized(result)


def test_conditional_warns_and_the_export_goes_ahead_when_the_policy_says_warn():
    defs, shipped = _pipeline(CONDITIONAL, on_conditional="warn")
    result = _run(defs, DfftResource(rules_dir=str(MINI)))
    ev = _evaluation(result)
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.WARN  # flagged, but not blocking
    assert ev.metadata["dfft/verdict"].value == "conditional"
    assert result.success and shipped == ["customers"]


def test_v2_request_fields_pass_through_the_check():
    # the CONDITIONAL transfer, to a storage provider that cannot access the data: not a provision (JP-no-access)
    defs, shipped = _pipeline({**CONDITIONAL, "recipient": {"role": "processor", "access": "none"}})
    result = _run(defs, DfftResource(rules_dir=str(MINI)))
    ev = _evaluation(result)
    assert ev.passed and ev.metadata["dfft/verdict"].value == "allowed"
    assert result.success and shipped == ["customers"]


def test_the_resource_policy_applies_when_the_check_sets_none():
    defs, shipped = _pipeline(CONDITIONAL)
    result = _run(defs, DfftResource(rules_dir=str(MINI), on_conditional="warn"))
    assert _evaluation(result).severity == dg.AssetCheckSeverity.WARN and shipped == ["customers"]


def test_api_down_fails_closed_unless_allowed():
    down = f"http://127.0.0.1:{free_port()}"
    defs, shipped = _pipeline(ALLOWED)
    ev = _evaluation(_run(defs, DfftResource(api_url=down, timeout=5)))
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    assert ev.metadata["dfft/reason"].value == "unavailable" and ev.metadata["dfft/verdict"].value == "no verdict"
    assert shipped == []
    defs, shipped = _pipeline(ALLOWED)
    ev = _evaluation(_run(defs, DfftResource(api_url=down, timeout=5, on_unavailable="allow")))
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.WARN and shipped == ["customers"]


def test_an_invalid_request_errors_the_check_and_nothing_downstream_runs():
    defs, shipped = _pipeline(dict(ALLOWED, data_categories=["no_such_category"]))
    result = _run(defs, DfftResource(rules_dir=str(MINI)))
    assert not result.success and shipped == []
    assert "customers_abroad" not in _materialized(result)


def test_resource_check_in_an_asset_body_stops_the_materialisation():
    shipped: list[str] = []

    @dg.asset
    def core_data_to_singapore(dfft: DfftResource) -> None:
        dfft.check(**BLOCKED)
        shipped.append("core")

    @dg.asset
    def consented_to_hanoi(dfft: DfftResource) -> None:
        dfft.check(**ALLOWED)
        shipped.append("personal")

    result = _run([core_data_to_singapore, consented_to_hanoi], DfftResource(rules_dir=str(MINI)))
    assert not result.success
    assert shipped == ["personal"] and _materialized(result) == {"consented_to_hanoi"}
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    err = failure.step_failure_data
    assert "transfer blocked" in err.error.message and "VN-core" in err.error.message
    assert err.user_failure_data.metadata["dfft/verdict"].value == "blocked"


def test_resource_rejects_an_unknown_policy():
    with pytest.raises(ValueError, match="on_conditional must be one of"):
        DfftResource(rules_dir=str(MINI), on_conditional="ignore").guard(**ALLOWED)
