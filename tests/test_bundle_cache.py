"""The validated-bundle cache (rules/cache.py) and the libyaml loader: a cache never weakens validation.

Each test has its own cache folder (DFFT_CACHE_DIR) and its own copy of the mini bundle."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

import dfft.rules.cache as C
import dfft.rules.loader as L
from dfft.rules import RuleSetError, load_ruleset
from dfft.rules.loader import write_manifest

from .conftest import MINI


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("DFFT_CACHE_DIR", str(tmp_path / "cache"))
    dst = tmp_path / "bundle"
    shutil.copytree(MINI, dst)
    return dst


@pytest.fixture
def full_loads(monkeypatch) -> list[Path]:
    """Records every full load (validation) load_ruleset does."""
    calls: list[Path] = []
    real = L._load

    def spy(root, *a, **kw):
        calls.append(root)
        return real(root, *a, **kw)

    monkeypatch.setattr(L, "_load", spy)
    return calls


def entries(bundle: Path) -> list[Path]:
    return sorted((bundle.parent / "cache").glob("rules-*.pickle"))


def set_title(path: Path, rule_index: int, title: str, manifest: bool = True) -> None:
    doc = yaml.safe_load(path.read_text())
    doc["rules"][rule_index]["title"] = title
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    if manifest:
        write_manifest(path.parents[1])


def test_second_load_comes_from_the_cache_and_equals_the_first(bundle, full_loads):
    first = load_ruleset(bundle)
    assert len(full_loads) == 1 and len(entries(bundle)) == 1
    second = load_ruleset(bundle)
    assert len(full_loads) == 1, "a warm cache must not validate again"
    assert second == first and second.hash == first.hash
    assert os.stat(entries(bundle)[0]).st_mode & 0o777 == 0o600


def test_a_changed_file_is_validated_again(bundle, full_loads):
    load_ruleset(bundle)
    f = bundle / "JP" / "data_protection.yaml"
    set_title(f, 0, "A new title")
    rs = load_ruleset(bundle)
    assert len(full_loads) == 2
    assert rs.jurisdictions["JP"].rules[0].title == "A new title"


def test_an_edit_that_makes_the_bundle_invalid_is_refused_with_a_warm_cache(bundle, full_loads):
    load_ruleset(bundle)
    f = bundle / "JP" / "data_protection.yaml"
    doc = yaml.safe_load(f.read_text())
    doc["rules"][0]["then"]["effect"] = "maybe"
    f.write_text(yaml.safe_dump(doc, sort_keys=False))
    write_manifest(bundle)  # even a consistent manifest does not make the cache answer
    with pytest.raises(RuleSetError) as exc:
        load_ruleset(bundle)
    assert any(p.field and "effect" in p.field for p in exc.value.problems)


def test_an_edit_without_a_new_manifest_is_refused_with_a_warm_cache(bundle):
    load_ruleset(bundle)
    set_title(bundle / "JP" / "data_protection.yaml", 0, "Changed behind the manifest's back", manifest=False)
    with pytest.raises(RuleSetError, match="content changed"):
        load_ruleset(bundle)


def test_an_added_file_is_refused_with_a_warm_cache(bundle):
    load_ruleset(bundle)
    (bundle / "JP" / "notes.txt").write_text("hello")
    with pytest.raises(RuleSetError, match="unexpected file"):
        load_ruleset(bundle)


def test_a_corrupted_cache_is_rebuilt(bundle, full_loads):
    load_ruleset(bundle)
    (entry,) = entries(bundle)
    data = bytearray(entry.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte in the payload
    entry.write_bytes(bytes(data))
    rs = load_ruleset(bundle)
    assert len(full_loads) == 2 and sorted(rs.jurisdictions) == ["JP", "SG", "VN"]
    entry.write_bytes(b"garbage")  # not even a header
    load_ruleset(bundle)
    assert len(full_loads) == 3
    load_ruleset(bundle)  # rebuilt: used again
    assert len(full_loads) == 3


def test_a_cache_from_another_dfft_version_is_not_used(bundle, full_loads, monkeypatch):
    load_ruleset(bundle)
    monkeypatch.setattr(C, "_code_hash", None)
    monkeypatch.setattr(C, "dfft_version", lambda: "999.0.0")
    load_ruleset(bundle)
    assert len(full_loads) == 2
    load_ruleset(bundle)  # the new version's entry is used
    assert len(full_loads) == 2
    monkeypatch.setattr(C, "_code_hash", None)
    monkeypatch.setattr(C, "dfft_version", lambda: "999.0.1")
    load_ruleset(bundle)
    assert len(full_loads) == 3


def test_a_cache_file_others_can_write_is_not_trusted(bundle, full_loads):
    load_ruleset(bundle)
    (entry,) = entries(bundle)
    os.chmod(entry, 0o666)
    load_ruleset(bundle)
    assert len(full_loads) == 2


def test_cache_off_writes_nothing(bundle, full_loads, monkeypatch):
    monkeypatch.setenv("DFFT_CACHE_DIR", "off")
    load_ruleset(bundle)
    load_ruleset(bundle)
    assert len(full_loads) == 2 and not (bundle.parent / "cache").exists()


def test_require_manifest_is_part_of_the_key(bundle):
    (bundle / "bundle.yaml").write_text("version: 0.0.1\n")  # no manifest
    load_ruleset(bundle, require_manifest=False)
    with pytest.raises(RuleSetError, match="manifest"):
        load_ruleset(bundle)


def test_the_cache_is_bounded(bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(C, "MAX_ENTRIES", 3)
    for i in range(5):
        copy = tmp_path / f"b{i}"
        shutil.copytree(bundle, copy)
        load_ruleset(copy)
    assert len(entries(bundle)) == 3


def test_the_libyaml_loader_is_used_and_refuses_duplicate_keys():
    assert yaml.__with_libyaml__ and issubclass(L._UniqueKeyLoader, yaml.CSafeLoader)
    for loader in (L._UniqueKeyLoader, L._PyUniqueKeyLoader):
        with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'a'"):
            yaml.load("a: 1\nb: {c: 2}\na: 3\n", Loader=loader)
        with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'c'"):
            yaml.load("x:\n  - {c: 1, c: 2}\n", Loader=loader)
    problems: list = []
    assert L.parse_yaml(b"k: 1\nk: 2\n", Path("f.yaml"), problems) is None
    assert "duplicate key 'k'" in str(problems[0])


def test_libyaml_and_pure_python_loaders_read_every_corpus_file_alike():
    files = sorted(Path(str(L.default_rules_dir())).rglob("*.yaml")) + [L.default_vocabulary_path()]
    assert len(files) > 10
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=L._UniqueKeyLoader) == yaml.load(text, Loader=L._PyUniqueKeyLoader), f
