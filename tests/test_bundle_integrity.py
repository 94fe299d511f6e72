"""Issue 10 item 6: incomplete, altered or redirected bundles are refused (manifest, regular files inside the bundle).

On the old code each of these bundles loaded (or, for the FIFO, the loader blocked forever: that test loads in a
child process with a timeout, so it fails instead of hanging)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dfft.rules import RuleSetError, load_ruleset
from dfft.rules.loader import default_rules_dir, manifest_of, write_manifest

from .conftest import MINI


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(MINI, dst)
    return dst


def refused(root: Path) -> list[str]:
    with pytest.raises(RuleSetError) as exc:
        load_ruleset(root)
    return [str(p) for p in exc.value.problems]


def test_embedded_manifest_is_current():
    """Regenerate with `dfft rules manifest` (and bump the version) when the embedded rules change."""
    doc = yaml.safe_load((default_rules_dir() / "bundle.yaml").read_text(encoding="utf-8"))
    assert doc["manifest"] == manifest_of(default_rules_dir()), "jurisdictions/bundle.yaml's manifest is stale"
    assert sorted(doc["manifest"]["jurisdictions"]) == sorted(load_ruleset().jurisdictions)


def test_changed_file_is_refused_naming_it(bundle):
    p = bundle / "SG" / "data_protection.yaml"
    p.write_text(p.read_text().replace("title:", "title: x", 1))
    (msg,) = refused(bundle)
    assert "SG/data_protection.yaml" in msg and "content changed" in msg


def test_deleted_jurisdiction_is_refused(bundle):
    shutil.rmtree(bundle / "VN")
    msgs = refused(bundle)
    assert any("jurisdiction VN is listed in the manifest but missing" in m for m in msgs)
    assert any("VN/localisation.yaml" in m and "missing" in m for m in msgs)


def test_extra_jurisdiction_or_file_is_refused(bundle):
    shutil.copytree(bundle / "SG", bundle / "TH")
    (bundle / "TH" / "jurisdiction.yaml").write_text(
        (bundle / "TH" / "jurisdiction.yaml").read_text().replace("SG", "TH")
    )
    (bundle / "TH" / "data_protection.yaml").write_text(
        (bundle / "TH" / "data_protection.yaml").read_text().replace("SG", "TH")
    )
    msgs = refused(bundle)
    assert any("jurisdiction TH is not listed in the manifest" in m for m in msgs)
    assert any("TH/data_protection.yaml" in m and "not listed" in m for m in msgs)


def test_bundle_without_manifest_needs_an_explicit_opt_out(bundle):
    p = bundle / "bundle.yaml"
    p.write_text(p.read_text().split("# written by")[0])
    (msg,) = refused(bundle)
    assert "bundle.yaml" in msg and "manifest" in msg and "dfft rules manifest" in msg
    assert sorted(load_ruleset(bundle, require_manifest=False).jurisdictions) == ["JP", "SG", "VN"]


def test_empty_bundle_is_refused(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    (root / "bundle.yaml").write_text("version: 1.0.0\n")
    write_manifest(root)
    msgs = refused(root)
    assert any("no jurisdiction folders" in m for m in msgs)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symlinks")
def test_symlinked_jurisdiction_outside_the_bundle_is_refused(bundle, tmp_path):
    outside = tmp_path / "elsewhere" / "TH"
    shutil.copytree(bundle / "SG", outside)
    shutil.rmtree(bundle / "SG")
    os.symlink(outside, bundle / "SG")
    msgs = refused(bundle)
    assert any("SG" in m and "outside the bundle" in m for m in msgs)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symlinks")
def test_symlinked_rule_file_outside_the_bundle_is_refused(bundle, tmp_path):
    outside = tmp_path / "ip.yaml"
    shutil.copy(bundle / "JP" / "ip.yaml", outside)
    (bundle / "JP" / "ip.yaml").unlink()
    os.symlink(outside, bundle / "JP" / "ip.yaml")
    msgs = refused(bundle)
    assert any("JP/ip.yaml" in m and "outside the bundle" in m for m in msgs)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_fifo_as_rule_file_is_refused_promptly(bundle):
    (bundle / "JP" / "ip.yaml").unlink()
    os.mkfifo(bundle / "JP" / "ip.yaml")
    code = (
        "import sys\nfrom dfft.rules import RuleSetError, load_ruleset\n"
        "try:\n    load_ruleset(sys.argv[1])\nexcept RuleSetError as e:\n    print(e); sys.exit(4)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(bundle)], capture_output=True, text=True, timeout=60
    )  # old code: open() of a FIFO blocks forever
    assert p.returncode == 4 and "JP/ip.yaml" in p.stdout and "not a regular file" in p.stdout


def test_oversized_file_is_refused(bundle, monkeypatch):
    import dfft.rules.loader as L

    monkeypatch.setattr(L, "MAX_FILE_BYTES", 200)
    msgs = refused(bundle)
    assert any("bytes; a rule file may have at most 200" in m for m in msgs)
