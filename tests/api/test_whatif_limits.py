"""Issue 10 item 1 over HTTP: a check-scope caller's `add_rules` with many alternatives gets a 422 quickly; the
old code passed them to durable-rules, which hung the whole server (the httpx timeout fails the test there)."""

from __future__ import annotations

from ..hang_cases import CODES


def test_whatif_add_rules_gets_422_quickly(api):
    scenario = {
        "name": "wide",
        "law": {
            "add_rules": [
                {
                    "jurisdiction": "JP",
                    "domain": "ip",
                    "id": f"JP-wide{i}",
                    "title": "wide",
                    "confidence": "high",
                    "citation": {"law": "L1", "article": "Art. 1"},
                    "when": {"field": "to", "in": CODES[i * 60 : (i + 1) * 60]},
                    "then": {"effect": "condition"},
                }
                for i in range(5)
            ]
        },
    }  # 5 x 60 = 300 siblings: over the node limit
    req = {"origin": "JP", "destination": "VN", "data_categories": ["personal"], "subjects": 10, "as_of": "2026-06-01"}
    with api.client("check") as c:  # old code: the server hangs (the client timeout, 60 s, fails the test)
        r = c.post("/v1/whatif/diff", json={"scenario": scenario, "requests": [req]})
        assert r.status_code == 422, r.text
        assert "JP-wide" in r.text and "limit of 256" in r.text
        one = {
            "name": "one",
            "law": {"add_rules": [{**scenario["law"]["add_rules"][0], "when": {"field": "to", "in": CODES[:512]}}]},
        }
        r = c.post("/v1/whatif/diff", json={"scenario": one, "requests": [req]})
        assert r.status_code == 422 and "law.add_rules[0].when.in" in r.text and "at most 64" in r.text
        assert c.get("/healthz").status_code == 200
