from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from dfft.rules import load_ruleset
from dfft.rules.loader import write_manifest
from dfft.whatif import Engines

from ..conftest import MINI

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DAY = date(2026, 6, 1)


@pytest.fixture(scope="session")
def engines(mini_rs):
    return Engines(mini_rs, today=DAY)


@pytest.fixture(scope="session")
def mini_eu(tmp_path_factory):
    """The mini fixture plus an EU rule set with an adequacy list (the shape of the real corpus's EU)."""
    root = tmp_path_factory.mktemp("mini_eu") / "bundle"
    shutil.copytree(MINI, root)
    (root / "EU").mkdir()
    (root / "EU" / "jurisdiction.yaml").write_text(
        yaml.safe_dump(
            {
                "code": "EU",
                "name": "EU (fixture)",
                "laws": {
                    "GDPR": {
                        "title": "Fixture GDPR",
                        "url": "https://example.org/gdpr",
                        "effective_from": date(2018, 5, 25),
                    }
                },
                "lists": {
                    "adequacy": {"title": "adequate countries", "members": [{"code": "JP", "from": date(2019, 1, 23)}]}
                },
            }
        )
    )
    (root / "EU" / "data_protection.yaml").write_text(
        yaml.safe_dump(
            {
                "jurisdiction": "EU",
                "domain": "data_protection",
                "rules": [
                    {
                        "id": "EU-46",
                        "title": "appropriate safeguards needed",
                        "citation": {"law": "GDPR", "article": "Art. 46"},
                        "confidence": "high",
                        "when": {
                            "all": [
                                {"field": "data_categories", "contains": "personal"},
                                {"not": {"field": "to", "in_list": "adequacy"}},
                            ]
                        },
                        "unless": {"field": "safeguards", "contains_any": ["eu_scc", "bcr"]},
                        "then": {
                            "effect": "condition",
                            "obligations": [{"id": "EU-ob-46", "text": "SCCs or BCRs", "one_of": ["eu_scc", "bcr"]}],
                        },
                    }
                ],
            }
        )
    )
    write_manifest(root)
    return load_ruleset(root)
