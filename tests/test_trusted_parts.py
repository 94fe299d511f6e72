"""The engine builds its output parts and the Decision from trusted values without validating them again
(engine/core.py `_trusted`), and writes durable-rules facts as JSON text directly (engine/compile.py `_projector`).
Both must give exactly what the validating constructors and the json encoder give."""

from __future__ import annotations

import json

import pytest

from bench.workload import requests
from dfft.engine import Engine, compile as dcompile, core
from dfft.rules import load_ruleset


@pytest.fixture(scope="module")
def rs():
    return load_ruleset()


def _decisions(rs, validate: bool, monkeypatch: pytest.MonkeyPatch) -> list:
    monkeypatch.setattr(core, "_VALIDATE_PARTS", validate)
    eng = Engine(rs)
    return [eng.check(r) for r in requests(rs, 300, seed=21, max_via=2)]


def test_trusted_parts_equal_validated_parts(rs, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _decisions(rs, False, monkeypatch)
    slow = _decisions(rs, True, monkeypatch)
    assert len(fast) == len(slow) == 300
    for a, b in zip(fast, slow, strict=True):
        assert a.model_dump_json() == b.model_dump_json()
        assert a.model_dump_json(exclude_unset=True) == b.model_dump_json(exclude_unset=True)
        assert a.model_fields_set == b.model_fields_set
        for fa, fb in zip(a.findings, b.findings, strict=True):
            assert fa == fb and fa.model_fields_set == fb.model_fields_set
        assert a == b


def test_json_value_is_the_encoders() -> None:
    for v in ["JP", "é ü", 'quote " and \\ back', "", 0, -3, 20260601, True, False, None, 1.5]:
        assert dcompile._json_value(v) == json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    with pytest.raises(TypeError):
        dcompile._json_value(frozenset({"a"}))


def test_projected_facts_are_json_with_the_level_fields(rs) -> None:
    eng = Engine(rs)
    b = eng.backend
    seen = 0
    for r in requests(rs, 100, seed=5):
        n = eng.normalise(r)
        for fact in core.facts_for(n, rs, eng._scope):
            if fact.jurisdiction not in b._handles:
                continue
            for level in b.prepared[fact.jurisdiction].levels_for(fact.roles):
                lv = b._level(fact.jurisdiction, level, fact.roles)
                on = fact.as_of
                body = lv.project(fact.env, frozenset(), on, level, fact.hop, dcompile._as_int(on), *lv.roles)
                got = json.loads(body)
                assert got["lvl"] == level and got["hop"] == fact.hop
                assert (got["r_exporter"], got["r_importer"], got["r_origin"]) == lv.roles
                assert all(type(v) in (bool, int, str) or v is None for v in got.values())
                seen += 1
    assert seen > 100
