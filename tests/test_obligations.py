"""Every gating obligation can be met (ISSUE13 item 6).

An obligation on a rule with effect `condition` gates the transfer: the decision stays *conditional* until it is met,
and only a safeguard in its `one_of` can meet it. One without `one_of` keeps every such transfer conditional for ever,
however compliant (the legal review found RU 152-FZ Art. 18(5) and the RBI 24-hour return duty in that state). Such a
duty must either name the safeguard that meets it or be an ongoing duty of a lawful transfer (effect `allow`).
"""

from __future__ import annotations

from rules.model import Citation, Obligation, Rule


def gating_without_one_of(rules) -> list[str]:
    return [f"{r.id}: {o.id}" for r in rules if r.effect == "condition" for o in r.obligations if not o.one_of]


def test_every_gating_obligation_has_a_one_of(corpus_rs):
    bad = gating_without_one_of(corpus_rs.all_rules())
    assert not bad, (
        f"gating obligations that nothing can meet (add one_of, or make the rule allow + ongoing duty): {bad}"
    )


def test_every_one_of_names_a_vocabulary_safeguard(corpus_rs):
    known = set(corpus_rs.vocabulary.safeguards)
    for r in corpus_rs.all_rules():
        for o in r.obligations:
            assert set(o.one_of) <= known, f"{r.id}: {o.id} names unknown safeguards {set(o.one_of) - known}"


def _rule(effect: str, one_of: tuple[str, ...]) -> Rule:
    return Rule(
        id="XX-probe",
        jurisdiction="XX",
        domain="localisation",
        title="probe",
        scope="origin",
        citation=Citation(law="L", article="Art. 1"),
        confidence="high",
        when={"field": "data_categories", "contains": "personal"},
        effect=effect,
        obligations=(Obligation(id="XX-duty", text="keep it local", one_of=one_of),),
    )


def test_the_check_catches_a_condition_nothing_can_meet():
    # the check itself: a condition without one_of is reported; the same duty as an ongoing duty, or met by a
    # named safeguard, is not
    assert gating_without_one_of([_rule("condition", ())]) == ["XX-probe: XX-duty"]
    assert gating_without_one_of([_rule("allow", ())]) == []
    assert gating_without_one_of([_rule("condition", ("local_primary_copy",))]) == []
