"""dfft.client against the running service: same models, problems raised as ApiError."""

from __future__ import annotations

import pytest

from dfft.client import ApiError, Client
from dfft.engine import Decision, TransferRequest

from .conftest import REQ, free_port


def test_client_round_trip(api):
    with Client(api.url, api_key=api.check_key) as c:
        d = c.check(**REQ, allow_other_date=True)
        assert isinstance(d, Decision) and d.verdict == "conditional" and len(c.last_decision_id) == 32
        assert c.check(TransferRequest(**REQ), allow_other_date=True) == d
        b = c.check_batch([REQ, {**REQ, "origin": "XX"}], allow_other_date=True)
        assert b.results[0].decision == d and b.results[1].error.status == 422 and b.summary["invalid"] == 1
        assert [j.code for j in c.jurisdictions()] == ["JP", "SG", "VN"]
        assert c.rules("SG").code == "SG"
        assert c.ruleset().hash == d.ruleset.hash
        assert c.health().status == "ok" and c.ready()
    with Client(api.url, api_key=api.admin_key) as c:
        page = c.decisions(limit=2, origin="JP")
        assert len(page.items) == 2 and page.next_after and all(x.request.origin == "JP" for x in page.items)
        exported = list(c.export_decisions(batch_id=b.batch_id))
        assert [x.id for x in exported] == [b.results[0].decision_id]


def test_client_errors(api):
    with Client(api.url, api_key=api.check_key) as c:
        with pytest.raises(ApiError) as e:
            c.check(**{**REQ, "origin": "XX"}, allow_other_date=True)
        assert e.value.status == 422 and e.value.errors[0]["valid"] == ["JP", "SG", "VN"] and not e.value.retryable
        with pytest.raises(ApiError) as e:
            c.reload()
        assert e.value.status == 403
        with pytest.raises(ApiError) as e:
            list(c.export_decisions())
        assert e.value.status == 403
    with Client(api.url, api_key="dfft_nope") as c, pytest.raises(ApiError) as e:
        c.check(**REQ)
    assert e.value.status == 401
    with Client(f"http://127.0.0.1:{free_port()}", api_key="k", timeout=2) as c, pytest.raises(ApiError) as e:
        c.check(**REQ)
    assert e.value.status == 0 and e.value.retryable
