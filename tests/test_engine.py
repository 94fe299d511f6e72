"""Engine semantics on the synthetic fixture bundle: chaining, exceptions, windows, lists, legs, failures."""

from __future__ import annotations

import json

import pytest

from dfft.engine import Engine, EngineError, RequestError
from dfft.engine.compile import CompileError, DurableBackend

from .conftest import overcrowded


def req(**kw):
    base = dict(origin="JP", destination="VN", data_categories=["personal"], subjects=1000, as_of="2026-06-01")
    base.update(kw)
    return base


def ids(d):
    return {(f.rule_id, f.status) for f in d.findings}


def test_missing_safeguard_is_conditional_and_holding_it_is_allowed(mini_engine):
    d = mini_engine.check(req())
    assert d.verdict == "conditional"
    assert ("JP-consent", "applies") in ids(d)
    assert [o.id for o in d.obligations] == ["JP-ob-consent"] and d.obligations[0].one_of == ("consent",)
    d2 = mini_engine.check(req(safeguards=["consent"]))
    assert d2.verdict == "allowed"
    assert ("JP-consent", "met") in ids(d2)
    assert d2.findings[0].met_by == ("safeguards: consent",)


def test_forward_chained_exception_with_continuing_duty(mini_engine):
    d = mini_engine.check(req(safeguards=["asean_mcc"]))
    assert d.verdict == "allowed"
    assert {("JP-consent", "met"), ("JP-system-duty", "applies")} <= ids(d)
    assert [(o.id, o.kind) for o in d.obligations] == [("JP-ob-monitor", "ongoing")]
    derived = [t.rule_id for t in d.trace if t.action == "derive"]
    assert derived == ["JP-system"]


def test_list_membership_respects_dates(mini_engine):
    assert mini_engine.check(req(destination="GB", as_of="2025-01-01")).verdict == "allowed"
    # GB leaves the fixture list in 2030
    assert mini_engine.check(req(destination="GB", as_of="2030-01-01")).verdict == "conditional"
    # EU joined the list in 2019
    assert mini_engine.check(req(destination="EU", as_of="2018-12-31")).verdict == "conditional"


def test_effective_window(mini_engine):
    d = mini_engine.check(req(origin="VN", destination="SG", as_of="2025-12-31"))
    assert "VN-tia" not in {f.rule_id for f in d.findings}
    d = mini_engine.check(req(origin="VN", destination="SG", as_of="2026-01-01"))
    assert ("VN-tia", "applies") in ids(d)


def test_two_level_chain_and_volume(mini_engine):
    small = mini_engine.check(req(origin="VN", destination="SG", subjects=999_999, safeguards=["tia_filed"]))
    big = mini_engine.check(req(origin="VN", destination="SG", subjects=1_000_000, safeguards=["tia_filed"]))
    assert small.verdict == "allowed" and big.verdict == "conditional"
    assert [t.rule_id for t in big.trace if t.action == "derive"] == ["VN-large", "VN-very-large"]
    assert [t.level for t in big.trace if t.action == "derive"] == [0, 1]


def test_unknown_subjects_judged_above_every_threshold(mini_engine):
    d = mini_engine.check(req(origin="VN", destination="SG", subjects=None, safeguards=["tia_filed"]))
    assert d.verdict == "conditional" and "VN-huge" in d.rule_ids
    assert any("subjects not given" in n for n in d.notes)


def test_localisation_applies_to_origin_only(mini_engine):
    assert mini_engine.check(req(origin="VN", destination="SG", data_categories=["core_data"])).verdict == "blocked"
    # core data from JP through VN is not Vietnamese core data
    d = mini_engine.check(req(origin="JP", via=["VN"], destination="SG", data_categories=["core_data"]))
    assert d.verdict == "allowed"


def test_legs_are_judged_by_their_exporter(mini_engine):
    d = mini_engine.check(req(origin="JP", via=["SG"], destination="VN", safeguards=["consent"]))
    legs = {(f.rule_id, f.leg_path) for f in d.findings}
    assert ("JP-consent", "JP->SG") in legs and ("SG-26", "SG->VN") in legs


def test_importer_scope(mini_engine):
    d = mini_engine.check(
        req(origin="SG", destination="JP", data_categories=["copyrighted_works"], purpose="ai_training")
    )
    assert d.verdict == "allowed" and ("JP-tdm", "applies") in ids(d)


def test_block_is_not_cured_by_safeguards(mini_engine):
    d = mini_engine.check(
        req(
            destination="KP", data_categories=["controlled_technology"], safeguards=["export_licence", "consent", "nda"]
        )
    )
    assert d.verdict == "blocked" and ("JP-embargo", "applies") in ids(d)


def test_no_rule_gives_a_consulted_finding(mini_engine):
    d = mini_engine.check(req(origin="SG", destination="VN", data_categories=["anonymised"]))
    assert d.verdict == "allowed"
    (f,) = d.findings
    assert f.rule_id == "dfft-no-applicable-rule" and "SG, VN" in f.title


def test_aliases_and_uncovered_destinations(mini_engine):
    d = mini_engine.check(req(destination="fr", as_of="2025-01-01"))
    assert d.request.destination == "EU" and d.verdict == "allowed"
    assert mini_engine.check(req(destination="BR")).verdict == "conditional"


@pytest.mark.parametrize(
    "bad, field, hint",
    [
        (dict(origin="XX"), "origin", "covered jurisdictions: JP, SG, VN"),
        (dict(origin="BR"), "origin", "no rule set"),
        (dict(destination="QQ"), "destination", "not an ISO 3166-1"),
        (dict(via=["BR"]), "via[0]", "no rule set"),
        (dict(data_categories=["personnel"]), "data_categories", "expected one of"),
        (dict(data_categories=[]), "data_categories", "at least 1"),
        (dict(safeguards=["sccs"]), "safeguards", "eu_scc"),
        (dict(exporter="government"), "exporter", "public_body"),
        (dict(subjects=-1), "subjects", "greater than or equal"),
        (dict(destination="JP"), "destination", "cross a border"),
        (dict(colour="red"), "colour", "Extra inputs"),
        (dict(as_of="2026-13-01"), "as_of", "date"),
    ],
)
def test_bad_requests_get_clear_errors(mini_engine, bad, field, hint):
    with pytest.raises(RequestError) as exc:
        mini_engine.check(req(**bad))
    assert any(e["field"] == field and hint in e["message"] for e in exc.value.errors), exc.value.errors


def test_decisions_are_byte_identical_and_cached(mini_rs):
    eng = Engine(mini_rs)
    a = eng.check(req(via=["SG"], safeguards=["asean_mcc"]))
    b = eng.check(req(via=["SG"], safeguards=["asean_mcc"]))
    c = Engine(mini_rs, cache_size=0).check(req(via=["SG"], safeguards=["asean_mcc"]))
    assert a is b and eng.hits == 1
    assert a.model_dump_json() == c.model_dump_json()


@pytest.mark.parametrize("fault", ["unknown_rule", "no_catch_all", "not_handled"])
def test_durable_failure_fails_closed(mini_rs, monkeypatch, fault):
    # the backend drives the C extension directly: no Python action can fail inside durable-rules, but a fact that
    # durable-rules did not process completely (no catch-all, unknown rule name, unhandled) must never give a verdict
    from dfft.engine import compile as C

    eng = Engine(mini_rs, cache_size=0)
    real = C._dre

    class Faulty:
        def __getattr__(self, name):
            return getattr(real, name)

        def start_action_for_state(self, h, state):
            got = real.start_action_for_state(h, state)
            if fault == "unknown_rule" and got:
                return (got[0], '{"injected": {}}') + tuple(got[2:])
            if fault == "no_catch_all" and got:
                while real.complete_and_start_action(h, state):
                    pass
                return None
            return got

        def assert_fact(self, h, msg):
            got = real.assert_fact(h, msg)
            return (1, got[1]) if fault == "not_handled" else got

    monkeypatch.setattr(C, "_dre", Faulty())
    with pytest.raises(EngineError, match="durable-rules"):
        eng.check(req())
    monkeypatch.setattr(C, "_dre", real)
    assert eng.check(req()).verdict in ("allowed", "conditional", "blocked")


def test_internal_error_never_returns_a_verdict(mini_rs, monkeypatch):
    eng = Engine(mini_rs, cache_size=0)
    monkeypatch.setattr(eng.backend, "match", lambda *a: 1 / 0)
    with pytest.raises(EngineError, match="ZeroDivisionError"):
        eng.check(req())


def test_facts_are_retracted_after_each_check(mini_rs):
    # one long-lived durable state per ruleset: every fact a check asserts is retracted when the check ends
    import durable_rules_engine

    eng = Engine(mini_rs, cache_size=0)
    for i in range(5):
        eng.check(req(subjects=i))
    assert json.loads(durable_rules_engine.get_facts(eng.backend._handles["JP"], eng.backend._sid)) == []
    for code, handle in eng.backend._handles.items():
        try:
            assert json.loads(durable_rules_engine.get_facts(handle, eng.backend._sid)) == [], code
        except durable_rules_engine.error as e:  # 309: this ruleset never got a fact (no state)
            assert "309" in str(e)


def test_many_checks_do_not_exhaust_durable_states(mini_rs):
    # durable-rules raises MemoryError at the 1025th live sid; every check must delete its states,
    # including checks where no rule matched
    eng = Engine(mini_rs, cache_size=0)
    for i in range(1500):
        eng.check(req(origin="SG", destination="VN", data_categories=["anonymised"], subjects=i))


def test_compiler_refuses_rulesets_that_would_hang_durable_rules(mini_rs):
    with pytest.raises(CompileError, match=r"JP: 5\d\d rule variants in one rule set exceed the limit"):
        DurableBackend(overcrowded(mini_rs))


@pytest.mark.parametrize(
    "label, category",
    [
        ("user.health_and_medical", "health"),
        ("user.health_and_medical.genetic", "genomic"),
        ("user.contact.email", "personal"),  # nearest mapped fideslang ancestor: user
        ("user.biometric.fingerprint", "biometric"),
        ("dpv:PseudonymisedData", "pseudonymised"),
        ("pd:Financial", "financial"),
    ],
)
def test_fideslang_and_dpv_labels(mini_engine, label, category):
    d = mini_engine.check(req(data_categories=[label]))
    assert d.request.data_categories == (category,)
    assert any(label in n for n in d.notes)


def test_unknown_label_is_refused(mini_engine):
    with pytest.raises(RequestError, match="fideslang"):
        mini_engine.check(req(data_categories=["system.operations"]))
