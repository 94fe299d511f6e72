"""In-process guard decisions go to the same audit database the API serves (GET /v1/decisions)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import dfft
from dfft import TransferBlocked
from dfft.api.app import create_app
from dfft.api.audit import DatabaseSink
from dfft.api.settings import Settings
from tests.conftest import MINI


def test_guard_decisions_are_in_the_api_audit_log(tmp_path, mini_engine):
    settings = Settings(data_dir=tmp_path, rules_dir=MINI)
    sink = DatabaseSink(settings.url)
    ok = dict(origin="JP", destination="VN", data_categories=["personal"], safeguards=["consent"], as_of="2025-01-01")
    with dfft.guard(**ok, engine=mini_engine, audit=sink, context={"dag_id": "d", "task_id": "t"}):
        pass
    with (
        pytest.raises(TransferBlocked),
        dfft.guard(
            origin="VN",
            destination="SG",
            data_categories=["core_data"],
            as_of="2026-06-01",
            engine=mini_engine,
            audit=sink,
        ),
    ):
        pass
    app = create_app(settings)
    with TestClient(app) as client:
        key, _ = app.state.keys.create("admin", "auditor")
        rows = client.get("/v1/decisions", headers={"X-API-Key": key}).json()
    items = rows["items"] if isinstance(rows, dict) else rows
    got = sorted((r["verdict"], r["caller"]) for r in items)
    assert got == [("allowed", "dfft.guard:d/t"), ("blocked", "dfft.guard")]
