"""The README's example scenarios on the embedded corpus: each loads, judges the sample inventory without errors,
and changes what it says it changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfft.whatif.context import Engines, load_requests
from dfft.whatif.diff import diff
from dfft.whatif.scenario import load_scenario

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def corpus_engines(corpus_rs):
    return Engines(corpus_rs)


@pytest.mark.parametrize(
    "example, transfer, before, after",
    [
        ("asean-mcc.yaml", "support-desk", "conditional", "allowed"),  # SG PDPA s.26 met by the MCCs
        (
            "eu-adequacy-indonesia.yaml",
            "eu-shared-service",
            "conditional",
            "allowed",
        ),  # GDPR Art. 45 instead of Art. 46
        ("vn-pdpl-not-in-force.yaml", "analytics", "conditional", "conditional"),  # Decree 13 Art. 25 applies instead
    ],
)
def test_example_on_the_corpus(corpus_engines, example, transfer, before, after):
    sc = load_scenario(EXAMPLES / example, corpus_engines.baseline)
    d = diff(corpus_engines, load_requests(EXAMPLES / "inventory.csv"), sc)
    assert d.counts["errors"] == 0
    item = next(x for x in d.items if x.id == transfer)
    assert (item.baseline, item.scenario) == (before, after)
    assert item.appeared or item.disappeared
