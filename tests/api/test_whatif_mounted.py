"""The what-if router is mounted in the service, behind the API key, and follows rule reloads."""

from __future__ import annotations

from fastapi.testclient import TestClient

from dfft.api.app import create_app
from dfft.api.settings import Settings

from ..conftest import MINI


def test_whatif_endpoints_are_mounted_and_need_a_key(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, rules_dir=MINI))
    with TestClient(app) as client:
        body = {
            "request": {
                "origin": "JP",
                "destination": "VN",
                "data_categories": ["personal"],
                "subjects": 10,
                "as_of": "2026-06-01",
            }
        }
        assert client.post("/v1/whatif/remedy", json=body).status_code == 401
        key, _ = app.state.keys.create("check", "test")
        r = client.post("/v1/whatif/remedy", json=body, headers={"X-API-Key": key})
        assert r.status_code == 200, r.text
        assert "consent" in r.text
        assert "/v1/whatif/remedy" in client.get("/openapi.json").json()["paths"]
