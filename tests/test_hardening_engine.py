"""Issue 10 item 1: rules with many alternatives are refused before they reach durable-rules (which would hang the
process holding the GIL), and every new ruleset is first tried in a child process with a timeout.

The old code let these rule sets through to durable-rules, where they never return: the tests that build them run
in a child process with a timeout, so on the old code they fail (timeout) instead of hanging the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, strategies as st

from dfft.engine import CompileError, probe as probe_mod
from dfft.engine.compile import _Compiler, _paths, _shape, check_jurisdiction
from dfft.engine.plan import prepare
from dfft.rules.loader import write_manifest

from .conftest import MINI
from .hang_cases import CODES

ROOT = Path(__file__).parent.parent


def run_case(case: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.hang_cases", case], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "case, rules",
    [("in511", ["JP-wide0"]), ("in512", ["JP-wide0"]), ("three200", ["JP-wide0", "JP-wide1", "JP-wide2"])],
)
def test_many_alternatives_are_refused_naming_the_rule(case, rules):
    p = run_case(case)  # old code: never returns (TimeoutExpired fails the test)
    assert p.returncode == 4, p.stderr
    assert all(r in p.stderr for r in rules) and "JP:" in p.stderr and "limit" in p.stderr


def _bundle_with_wide_rule(tmp_path: Path, values: list[list[str]]) -> Path:
    root = tmp_path / "bundle"
    shutil.copytree(MINI, root)
    path = root / "JP" / "ip.yaml"
    doc = yaml.safe_load(path.read_text())
    cit = doc["rules"][0]["citation"]
    for i, vals in enumerate(values):
        doc["rules"].append(
            {
                "id": f"JP-wide{i}",
                "title": "many alternatives",
                "citation": cit,
                "confidence": "high",
                "when": {"field": "to", "in": vals},
                "then": {"effect": "condition"},
            }
        )
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    write_manifest(root)
    return root


@pytest.mark.parametrize("values", [[CODES[:512]], [CODES[:200], CODES[200:400], CODES[400:600]]])
def test_lint_refuses_the_bundle_quickly(tmp_path, values):
    root = _bundle_with_wide_rule(tmp_path, values)
    p = subprocess.run(
        [sys.executable, "-m", "dfft.cli", "--rules", str(root), "lint"], capture_output=True, text=True, timeout=60
    )  # old code: hangs in durable-rules
    assert p.returncode == 4, p.stdout + p.stderr
    assert "does not compile" in p.stderr and "JP-wide0" in p.stderr


def test_scenario_bounds_name_the_field(mini_rs):
    from dfft.whatif.scenario import ScenarioError, parse_scenario

    rule = {
        "jurisdiction": "JP",
        "domain": "ip",
        "id": "JP-a",
        "title": "t",
        "confidence": "high",
        "citation": {"law": "L1", "article": "1"},
        "when": {"field": "sector", "eq": "finance"},
        "then": {"effect": "condition"},
    }
    deep: dict = {"field": "sector", "eq": "finance"}
    for _ in range(10):
        deep = {"not": deep}
    cases = [
        ({"law": {"add_rules": [dict(rule, id=f"JP-a{i}") for i in range(33)]}}, "law.add_rules", "at most 32"),
        ({"law": {"add_rules": [dict(rule, when=deep)]}}, "law.add_rules[0].when", "nested"),
        ({"law": {"add_rules": [dict(rule, title="x" * 5000)]}}, "law.add_rules[0].title", "at most 2000"),
        ({"law": {"disable_rules": ["JP-consent"] * 300}}, "law.disable_rules", "at most 256"),
        ({"law": {"lists": [{"list": "ASEAN", "add": CODES[:300]}]}}, "law.lists[0].add", "at most 256"),
    ]
    for law, field, msg in cases:
        with pytest.raises(ScenarioError) as e:
            parse_scenario({"name": "x", **law}, mini_rs)
        assert any(p.field and p.field.startswith(field) and msg in p.message for p in e.value.problems), e.value


def _hanging_definition() -> str:
    """A raw durable-rules definition with 600 sibling tests under one node (bypasses check_budget)."""
    import json

    rules: dict[str, Any] = {
        f"r{i}": {"all": [{"m": {"$and": [{"lvl": 0}, {"v_to": c}]}}]} for i, c in enumerate(CODES[:600])
    }
    rules["catch_all"] = {"all": [{"m": {"$gte": {"lvl": 0}}}]}
    return json.dumps(rules)


def test_probe_catches_a_hanging_definition_and_the_parent_stays_responsive():
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.05)

    t = threading.Thread(target=tick, daemon=True)
    t.start()
    t0 = time.monotonic()
    facts = probe_mod.probe_facts([0], {"v_to": ("~probe~", "ZZ")})
    try:
        with pytest.raises(CompileError, match="did not finish"):
            probe_mod.probe({"XX": (_hanging_definition(), facts)}, timeout=3)
    finally:
        stop.set()
        t.join(5)
    assert time.monotonic() - t0 < 30
    assert len(ticks) >= 20  # the parent's other threads ran meanwhile (the GIL was never held by the C loop)


def test_probe_remembers_good_definitions(mini_rs):
    from dfft.engine import Engine

    probe_mod.forget()
    Engine(mini_rs, cache_size=0)
    n = probe_mod.stats["probes"]
    Engine(mini_rs, cache_size=0)
    assert probe_mod.stats["probes"] == n  # the same definitions are not probed twice


def test_corpus_headroom(corpus_rs):
    for code in corpus_rs.jurisdictions:
        got = check_jurisdiction(corpus_rs, code)
        assert got["siblings"] <= 64 and got["alternatives"] <= 512


# -- the counted alternatives are the alternatives of the rule language's meaning -----------------------------------
_leaf = st.one_of(
    st.builds(
        lambda v: {"field": "to", "in": v}, st.lists(st.sampled_from(CODES[:40]), min_size=1, max_size=5, unique=True)
    ),
    st.builds(
        lambda v: {"field": "to", "not_in": v},
        st.lists(st.sampled_from(CODES[:40]), min_size=1, max_size=5, unique=True),
    ),
    st.builds(
        lambda v: {"field": "data_categories", "contains_any": v},
        st.lists(st.sampled_from(["personal", "health", "financial"]), min_size=1, max_size=3, unique=True),
    ),
    st.builds(
        lambda v: {"field": "data_categories", "contains_all": v},
        st.lists(st.sampled_from(["personal", "health", "financial"]), min_size=1, max_size=3, unique=True),
    ),
    st.just({"field": "sector", "eq": "finance"}),
    st.just({"field": "subjects", "gte": 1000}),
)
_cond = st.recursive(
    _leaf,
    lambda c: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(c, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(c, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, c),
    ),
    max_leaves=8,
)


def _alternatives(cond: dict, neg: bool = False) -> int:
    """The number of conjunctions of the condition in disjunctive normal form, from the rule language directly."""
    if "all" in cond or "any" in cond:
        parts = [_alternatives(c, neg) for c in cond.get("all") or cond.get("any") or []]
        if ("all" in cond) != neg:
            n = 1
            for p in parts:
                n *= p
            return n
        return sum(parts)
    if "not" in cond:
        return _alternatives(cond["not"], not neg)
    op = next(k for k in cond if k != "field")
    n = len(cond[op]) if isinstance(cond[op], list) else 1
    disjunctive = {"in": True, "contains_any": True, "not_in": False, "contains_all": False}.get(op)
    if disjunctive is None:
        return 1
    return n if disjunctive != neg else 1


@given(_cond)
def test_counted_alternatives_match_the_dnf(mini_rs, cond):
    comp = _Compiler(mini_rs, prepare(mini_rs.jurisdictions["JP"]))
    e = comp.expr(cond)
    assert _shape(e) == _alternatives(cond) == len(_paths(e))
