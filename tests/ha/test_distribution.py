"""Bundle distribution on one database (api/distribution.py), on SQLite: `dfft rules publish` validates and stores,
`dfft rules published` lists, `--activate` rolls back; a serving instance converges on the active bundle, refuses a
bad one (and keeps serving the last good one, saying so), and starts on the active bundle. The several-instance test
on PostgreSQL behind nginx is test_balanced.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from dfft.api import distribution
from dfft.api.app import create_app
from dfft.api.db import open_database, rule_bundle_active, rule_bundles
from dfft.api.settings import Settings
from dfft.rules import RuleSetError, load_ruleset
from dfft.rules.loader import write_manifest

from ..api.conftest import REQ, start
from ..conftest import MINI

DFFT = [sys.executable, "-m", "dfft.cli"]


def bundle(tmp: Path, version: str, name: str | None = None) -> Path:
    """A copy of the fixture bundle under a new version, its manifest rewritten."""
    d = tmp / (name or f"bundle-{version}")
    shutil.copytree(MINI, d)
    p = d / "bundle.yaml"
    p.write_text(p.read_text().replace("version: 0.0.1", f"version: {version}"))
    write_manifest(d)
    return d


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DFFT, *args], capture_output=True, text=True, timeout=120)


def wait_for(pred, seconds: float = 30.0, step: float = 0.1):
    deadline = time.monotonic() + seconds
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            return got
        time.sleep(step)


def tampered_row(db: sa.Engine, good: Path, by: str = "test") -> int:
    """Store, bypassing `publish`'s checks, a bundle whose rule file no longer matches its manifest (a corrupted or
    hand-written row): what every instance must refuse."""
    files = {p.relative_to(good).as_posix(): p.read_bytes() for p in good.rglob("*.yaml")}
    files["JP/ip.yaml"] += b"\n# changed after the manifest was written\n"
    packed = distribution.pack_files(files)
    with db.begin() as c:
        return c.execute(
            rule_bundles.insert().values(
                version=packed.version,
                ruleset_hash="0" * 64,
                content_sha256=packed.content_sha256,
                manifest=json.dumps(packed.manifest),
                archive=packed.archive,
                size=packed.size,
                published_by=by,
                published_at=distribution.datetime.now(distribution.UTC),
            )
        ).inserted_primary_key[0]  # type: ignore[index]


def test_publish_validates_stores_lists_and_rolls_back(tmp_path):
    """Through the CLI (four runs: the commands as an operator types them), the rest through the library it calls."""
    data = tmp_path / "data"
    one, two = bundle(tmp_path, "0.0.2"), bundle(tmp_path, "0.0.3")
    r = cli("rules", "publish", str(one), "--by", "alice", "--json", "--data-dir", str(data))
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout)
    assert first["status"] == "published" and first["active"] and first["version"] == "0.0.2"
    assert first["ruleset_hash"] == load_ruleset(one).hash and first["files"] == 10
    # a bundle whose file no longer matches its manifest: refused (exit 4, the file named), nothing stored
    (two / "JP" / "ip.yaml").write_text((two / "JP" / "ip.yaml").read_text() + "\n# edited\n")
    r = cli("rules", "publish", str(two), "--json", "--data-dir", str(data))
    assert r.returncode == 4 and "JP/ip.yaml" in r.stderr and "manifest" in r.stderr, r.stderr
    db = open_database(f"sqlite:///{(data / 'dfft.db').resolve()}")
    try:
        assert [x["id"] for x in distribution.published(db)] == [first["id"]]
        # the same files again: stored once
        again = distribution.publish(db, one)
        assert again["id"] == first["id"] and again["status"] == "already published"
        write_manifest(two)
        second = distribution.publish(db, two)
        assert second["id"] != first["id"] and second["active"]
        with pytest.raises(KeyError):
            distribution.activate(db, 999, "test")
    finally:
        db.dispose()
    # roll back
    r = cli("rules", "publish", "--activate", str(first["id"]), "--data-dir", str(data))
    assert r.returncode == 0, r.stderr
    listed = [
        json.loads(line) for line in cli("rules", "published", "--json", "--data-dir", str(data)).stdout.splitlines()
    ]
    assert [(x["id"], x["active"], x["version"]) for x in listed] == [
        (second["id"], False, "0.0.3"),
        (first["id"], True, "0.0.2"),
    ]
    assert listed[1]["published_by"] == "alice" and listed[1]["jurisdictions"] == ["JP", "SG", "VN"]


def test_publish_refuses_dropping_a_jurisdiction_under_the_same_version(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        distribution.publish(db, bundle(tmp_path, "0.0.2"))
        fewer = bundle(tmp_path, "0.0.2", "fewer")
        shutil.rmtree(fewer / "SG")
        write_manifest(fewer)
        with pytest.raises(RuleSetError, match="SG dropped under the same version"):
            distribution.publish(db, fewer)
        assert len(distribution.published(db)) == 1
    finally:
        db.dispose()


def test_stored_archive_is_checked_before_use(tmp_path):
    packed, _ = distribution.pack(MINI)
    (tmp_path / "ok").mkdir()
    distribution.unpack(packed.archive, tmp_path / "ok", packed.content_sha256)
    assert load_ruleset(tmp_path / "ok").hash == load_ruleset(MINI).hash
    (tmp_path / "bad").mkdir()
    with pytest.raises(RuleSetError, match="differs from the stored"):
        distribution.unpack(packed.archive, tmp_path / "bad", "0" * 64)
    with pytest.raises(RuleSetError, match="not a bundle file path"):
        distribution.pack_files({"bundle.yaml": b"version: 1\nmanifest: {}\n", "../escape.yaml": b""})


def test_poll_interval_is_bounded(monkeypatch):
    assert distribution.poll_seconds("0") == 0 and distribution.poll_seconds(5) == 5.0
    for bad in ("0.1", "301", "-1", "soon"):
        with pytest.raises(ValueError, match="DFFT_BUNDLE_POLL_SECONDS"):
            distribution.poll_seconds(bad)
    monkeypatch.setenv("DFFT_BUNDLE_POLL_SECONDS", "soon")
    with pytest.raises(ValueError, match="DFFT_BUNDLE_POLL_SECONDS: expected a number of seconds"):
        Settings()
    monkeypatch.delenv("DFFT_BUNDLE_POLL_SECONDS")
    assert Settings().bundle_poll_seconds == distribution.POLL_SECONDS == 5.0


def test_instance_converges_refuses_a_bad_bundle_and_recovers(tmp_path):
    api = start(tmp_path, bundle_poll_seconds=0.5)
    db = api.app.state.db
    try:
        with api.client("admin") as c:
            local = c.get("/v1/rulesets/current").json()
            assert local["distribution"]["source"] == "directory" and local["distribution"]["converged"]
            good = distribution.publish(db, bundle(tmp_path, "0.0.2"), "test")

            def serving(bundle_id):
                cur = c.get("/v1/rulesets/current").json()
                return cur if cur["distribution"]["bundle_id"] == bundle_id else None

            cur = wait_for(lambda: serving(good["id"]))
            assert cur, "the instance did not converge on the published bundle"
            assert cur["hash"] == good["ruleset_hash"] != local["hash"] and cur["version"] == "0.0.2"
            assert cur["distribution"] == {
                "source": "database",
                "bundle_id": good["id"],
                "active_bundle_id": good["id"],
                "converged": True,
                "poll_seconds": 0.5,
                "poll_error": None,
                "refused": None,
            }
            d = c.post("/v1/check", json=REQ)
            assert d.json()["ruleset"] == {"version": "0.0.2", "hash": good["ruleset_hash"]}
            assert d.headers["Dfft-Ruleset-Hash"] == good["ruleset_hash"]
            # a bundle every instance must refuse: the last good one keeps serving, the refusal is shown
            bad = tampered_row(db, bundle(tmp_path, "0.0.4"))
            distribution.activate(db, bad, "test")
            cur = wait_for(
                lambda: (lambda x: x if x["distribution"]["refused"] else None)(c.get("/v1/rulesets/current").json())
            )
            assert cur, "the bad bundle was neither loaded nor refused"
            dist = cur["distribution"]
            assert cur["hash"] == good["ruleset_hash"] and dist["bundle_id"] == good["id"]
            assert dist["active_bundle_id"] == bad and not dist["converged"]
            assert dist["refused"]["id"] == bad and "JP/ip.yaml" in json.dumps(dist["refused"]["errors"])
            metrics = c.get("/metrics").text
            assert "dfft_bundle_refusals_total 1.0" in metrics and "dfft_bundle_converged 0.0" in metrics
            assert c.post("/v1/check", json=REQ).json()["ruleset"]["hash"] == good["ruleset_hash"]
            # roll back to the good one: converged again, the refusal cleared
            distribution.activate(db, good["id"], "test")
            cur = wait_for(
                lambda: (lambda x: x if x["distribution"]["converged"] else None)(c.get("/v1/rulesets/current").json())
            )
            assert cur and cur["distribution"]["refused"] is None and cur["hash"] == good["ruleset_hash"]
    finally:
        api.stop()


def test_an_instance_starts_on_the_active_bundle(tmp_path):
    data = tmp_path / "data"
    db = open_database(f"sqlite:///{(data / 'dfft.db').resolve()}")
    try:
        published = distribution.publish(db, bundle(tmp_path, "0.0.2"), "test")
        with db.connect() as c:
            assert c.execute(sa.select(rule_bundle_active.c.bundle_id)).scalar_one() == published["id"]
    finally:
        db.dispose()
    app = create_app(Settings(data_dir=data, rules_dir=MINI, bundle_poll_seconds=5))
    try:
        # converged in create_app, before the first request: no window in which the local bundle judges
        assert app.state.rules.engine.hash == published["ruleset_hash"]
        assert app.state.bundles.info().bundle_id == published["id"]
    finally:
        app.state.bundles.close()
        app.state.audit.close()
        app.state.db.dispose()
    off = create_app(Settings(data_dir=data, rules_dir=MINI, bundle_poll_seconds=0))
    try:
        assert off.state.rules.engine.hash == load_ruleset(MINI).hash  # following turned off: the local bundle
        assert off.state.bundles.info().source == "directory"
    finally:
        off.state.audit.close()
        off.state.db.dispose()
