"""Hot rule reloads: a good bundle replaces the old one; a bad one is refused and the old one keeps serving."""

from __future__ import annotations

from dfft.engine import CompileError

from .conftest import REQ
from .test_http import assert_problem


def bump_version(rules_dir, version="9.9.9"):
    p = rules_dir / "bundle.yaml"
    p.write_text(p.read_text().replace("version: 0.0.1", f"version: {version}"))


def test_reload_swaps_bundle_and_decisions_name_it(fresh_api):
    with fresh_api.client("admin") as c:
        before = c.get("/v1/rulesets/current").json()
        assert c.post("/v1/rulesets/reload").json()["status"] == "unchanged"
        old = c.post("/v1/check", json=REQ).json()["ruleset"]
        bump_version(fresh_api.rules_dir)
        r = c.post("/v1/rulesets/reload").json()
        assert r["status"] == "reloaded" and r["previous"]["hash"] == before["hash"] == old["hash"]
        assert r["current"]["version"] == "9.9.9" and r["current"]["hash"] != before["hash"]
        d = c.post("/v1/check", json=REQ)  # memoised before the reload: must still name the new bundle
        assert d.json()["ruleset"] == {"version": "9.9.9", "hash": r["current"]["hash"]}
        rec = c.get("/v1/decisions", params={"ruleset_hash": r["current"]["hash"]}).json()["items"]
        assert [x["id"] for x in rec] == [d.headers["Dfft-Decision-Id"]]


def test_invalid_bundle_is_refused_and_old_one_keeps_serving(fresh_api):
    with fresh_api.client("admin") as c:
        before = c.get("/v1/rulesets/current").json()
        (fresh_api.rules_dir / "JP" / "ip.yaml").write_text("jurisdiction: JP\ndomain: ip\nrules:\n  - id: JP-bad\n")
        body = assert_problem(c.post("/v1/rulesets/reload"), 422)
        assert body["title"] == "Rule bundle refused" and body["serving"]["hash"] == before["hash"]
        assert any("JP-bad" in str(e) for e in body["errors"])
        assert c.get("/v1/rulesets/current").json()["hash"] == before["hash"]
        assert c.post("/v1/check", json=REQ).json()["ruleset"]["hash"] == before["hash"]
        (fresh_api.rules_dir / "JP" / "ip.yaml").write_text("{{{ not yaml")
        assert_problem(c.post("/v1/rulesets/reload"), 422)


def test_bundle_that_does_not_compile_is_refused(fresh_api, monkeypatch):
    import dfft.engine.core as coremod

    def failing(*a, **k):
        raise CompileError("JP: 512 tests on field 'to'")

    monkeypatch.setattr(coremod, "_backend", failing)  # the compiler of the new bundle fails
    bump_version(fresh_api.rules_dir)
    with fresh_api.client("admin") as c:
        before = c.get("/v1/rulesets/current").json()
        body = assert_problem(c.post("/v1/rulesets/reload"), 422)
        assert "does not compile" in body["detail"] and "512 tests" in body["errors"][0]["message"]
        assert c.get("/v1/rulesets/current").json() == before
        assert c.post("/v1/check", json=REQ).status_code == 200


def test_reload_needs_admin(fresh_api):
    with fresh_api.client("check") as c:
        assert_problem(c.post("/v1/rulesets/reload"), 403)


def test_reload_that_drops_a_jurisdiction_needs_a_new_version(fresh_api):
    """Issue 10 item 6: the old code reloaded a bundle missing a jurisdiction under the same version."""
    import shutil

    from dfft.rules.loader import write_manifest

    with fresh_api.client("admin") as c:
        before = c.get("/v1/rulesets/current").json()
        shutil.rmtree(fresh_api.rules_dir / "VN")
        body = assert_problem(c.post("/v1/rulesets/reload"), 422)  # the manifest lists VN
        assert any("VN" in str(e) for e in body["errors"])
        write_manifest(fresh_api.rules_dir)  # even with a manifest rewritten to match
        body = assert_problem(c.post("/v1/rulesets/reload"), 422)
        assert any("dropped under the same version" in str(e) for e in body["errors"])
        assert c.get("/v1/rulesets/current").json()["hash"] == before["hash"]
        bump_version(fresh_api.rules_dir)  # a new version may drop it
        r = c.post("/v1/rulesets/reload").json()
        assert r["status"] == "reloaded" and "VN" not in r["current"]["jurisdictions"]
