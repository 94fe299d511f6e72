"""dfft.plugins.prefect for real: flows run against a temporary local Prefect server (prefect_test_harness: a real
Prefect API server on loopback with a throw-away SQLite database), the DfftConnection block saved to it and loaded
back, judged in-process on the fixture bundle or through a real dfft API on loopback."""

from __future__ import annotations

import os
from typing import Any

import pytest

prefect = pytest.importorskip(
    "prefect", reason="Prefect is not installed: tests/prefect runs in .ci/run's Prefect stage (.venv-prefect)"
)

from prefect import flow  # noqa: E402
from prefect.client.orchestration import get_client  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from dfft import TransferBlocked  # noqa: E402
from dfft.plugins.prefect import DfftConnection, dfft_transfer_check  # noqa: E402
from tests.conftest import MINI  # noqa: E402
from tests.orchestration.servers import free_port  # noqa: E402

ALLOWED: dict[str, Any] = dict(
    origin="JP", destination="VN", data_categories=["personal"], safeguards=["consent"], as_of="2025-01-01"
)
CONDITIONAL: dict[str, Any] = dict(origin="JP", destination="VN", data_categories=["personal"], as_of="2026-06-01")
BLOCKED: dict[str, Any] = dict(origin="VN", destination="SG", data_categories=["core_data"], as_of="2026-06-01")


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    """A temporary local Prefect server (its own process, SQLite in a temporary folder) for this module's flows."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def connection(api_url):
    DfftConnection(api_url=api_url, api_key=os.environ["DFFT_API_KEY"]).save("dfft-test", overwrite=True)
    return "dfft-test"


def _ship_flow(shipped: list[str], **check: Any):
    @flow(name="dfft-guarded-export")
    def export() -> dict[str, Any]:
        decision = dfft_transfer_check(**check)
        shipped.append("customers")
        return decision

    return export


def _failure(state: Any) -> BaseException:
    assert state.is_failed(), state
    exc = state.result(raise_on_failure=False)
    assert isinstance(exc, BaseException), exc
    return exc


def test_allowed_through_a_saved_connection_block(connection):
    shipped: list[str] = []
    state = _ship_flow(shipped, **ALLOWED, connection=connection)(return_state=True)
    assert state.is_completed(), state
    result = state.result()
    assert result["verdict"] == "allowed" and result["mode"] == "api" and result["decision_id"]
    assert [f["rule_id"] for f in result["decision"]["findings"]] == ["JP-consent"]
    assert shipped == ["customers"]


def test_blocked_fails_the_flow_before_the_data_ships(connection):
    shipped: list[str] = []
    state = _ship_flow(shipped, **BLOCKED, connection=connection)(return_state=True)
    exc = _failure(state)
    assert isinstance(exc, TransferBlocked) and exc.reason == "blocked"
    assert exc.decision is not None and "VN-core" in exc.decision.rule_ids
    assert "Fixture CSL, Art. 26" in str(exc)
    assert shipped == []


def test_conditional_per_policy():
    shipped: list[str] = []
    exc = _failure(_ship_flow(shipped, **CONDITIONAL, rules_dir=str(MINI))(return_state=True))
    assert isinstance(exc, TransferBlocked) and exc.reason == "conditional" and shipped == []
    state = _ship_flow(shipped, **CONDITIONAL, rules_dir=str(MINI), on_conditional="warn")(return_state=True)
    assert state.is_completed() and state.result()["verdict"] == "conditional" and shipped == ["customers"]


def test_v2_facts_reach_the_request():
    shipped: list[str] = []
    facts = {"recipient": {"role": "processor", "access": "none"}}  # not a provision under the fixture's JP-no-access
    state = _ship_flow(shipped, **CONDITIONAL, facts=facts, rules_dir=str(MINI))(return_state=True)
    assert state.is_completed(), state
    assert state.result()["verdict"] == "allowed" and shipped == ["customers"]
    with pytest.raises(ValueError, match="as_of"):
        dfft_transfer_check.fn(**CONDITIONAL, facts={"as_of": "2020-01-01"}, rules_dir=str(MINI))


def test_blocked_is_not_retried_but_no_verdict_is():
    down = DfftConnection(api_url=f"http://127.0.0.1:{free_port()}", timeout=5)
    retrying = dfft_transfer_check.with_options(retries=2, retry_delay_seconds=0)

    @flow
    def both() -> list[Any]:
        blocked = retrying(**BLOCKED, rules_dir=str(MINI), return_state=True)
        unavailable = retrying(**ALLOWED, connection=down, return_state=True)
        return [blocked, unavailable]

    blocked, unavailable = both(return_state=True).result(raise_on_failure=False)
    with get_client(sync_client=True) as client:
        runs = {
            key: client.read_task_run(state.state_details.task_run_id)
            for key, state in (("blocked", blocked), ("unavailable", unavailable))
        }
    assert runs["blocked"].run_count == 1 and runs["unavailable"].run_count == 3
    exc = _failure(unavailable)
    assert isinstance(exc, TransferBlocked) and exc.reason == "unavailable" and "unreachable" in str(exc)


def test_no_verdict_proceeds_only_when_allowed():
    down = DfftConnection(api_url=f"http://127.0.0.1:{free_port()}", timeout=5)
    shipped: list[str] = []
    state = _ship_flow(shipped, **ALLOWED, connection=down, on_unavailable="allow")(return_state=True)
    assert state.is_completed() and state.result()["reason"] == "unavailable" and shipped == ["customers"]


def test_the_decision_is_left_as_an_artifact():
    @flow
    def one() -> None:
        dfft_transfer_check(**ALLOWED, rules_dir=str(MINI))

    state = one(return_state=True)
    with get_client(sync_client=True) as client:
        arts = [a for a in client.read_artifacts() if a.flow_run_id == state.state_details.flow_run_id]
    assert len(arts) == 1 and "dfft: ALLOWED" in str(arts[0].data) and "JP-consent" in str(arts[0].data)


def test_the_api_key_is_stored_as_a_secret(connection):
    with get_client(sync_client=True) as client:
        doc = client.read_block_document_by_name(connection, "dfft-connection", include_secrets=False)
    assert doc.data["api_key"] != os.environ["DFFT_API_KEY"] and os.environ["DFFT_API_KEY"] not in str(doc.data)
    loaded = DfftConnection.load(connection)
    assert loaded.api_key is not None and loaded.api_key.get_secret_value() == os.environ["DFFT_API_KEY"]
    assert os.environ["DFFT_API_KEY"] not in repr(loaded)


def test_an_invalid_request_fails_without_a_verdict():
    shipped: list[str] = []
    exc = _failure(
        _ship_flow(shipped, **dict(ALLOWED, data_categories=["no_such_category"]), rules_dir=str(MINI))(
            return_state=True
        )
    )
    assert "no_such_category" in str(exc) and shipped == []
