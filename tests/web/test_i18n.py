"""Japanese and English: the catalogue covers every message, the Japan rule texts and the vocabulary labels name
things that exist, placeholders survive translation, and the language follows the switch or the browser."""

from __future__ import annotations

import re

import pytest

from dfft.rules import load_ruleset
from dfft.web.i18n import Translator, catalogue, country_name, labels, negotiate, source_messages

from .conftest import BUNDLE, page


@pytest.fixture(scope="module")
def rs():
    return load_ruleset(BUNDLE)


def test_every_message_has_a_japanese_translation():
    missing = sorted(source_messages() - set(catalogue("ja")))
    assert not missing, f"add these to web/locale/ja/LC_MESSAGES/messages.po: {missing}"


def test_placeholders_survive_translation():
    for msgid, msgstr in catalogue("ja").items():
        assert set(re.findall(r"\{\w+\}", msgid)) == set(re.findall(r"\{\w+\}", msgstr)), msgid


def test_japanese_labels_name_what_exists(rs):
    ja = labels("ja")
    vocab = rs.vocabulary
    for kind, known in (
        ("safeguards", vocab.safeguards),
        ("data_categories", vocab.data_categories),
        ("purposes", vocab.purposes),
        ("exporters", vocab.exporters),
        ("sectors", dict.fromkeys(vocab.sectors)),
    ):
        assert set(ja[kind]) == set(known), f"ja.yaml {kind} differs from the vocabulary"
    jp = {r.id: r for r in rs.jurisdictions["JP"].rules}
    assert set(ja["rules"]) == set(jp), "ja.yaml rules: every Japan rule, and nothing else"
    obligations = {o.id for r in jp.values() for o in r.obligations}
    assert set(ja["obligations"]) == obligations
    assert set(ja["groups"]) <= set(rs.groups) | set(rs.aliases)


def test_country_names_and_negotiation():
    assert (country_name("JP"), country_name("JP", "ja"), country_name("VN", "ja")) == ("Japan", "日本", "ベトナム")
    assert country_name("ZZ") == "ZZ"
    assert negotiate(None, "ja-JP,ja;q=0.9,en;q=0.8") == "ja"
    assert negotiate(None, "fr-FR, en;q=0.5, ja;q=0.4") == "en"
    assert negotiate("en", "ja") == "en" and negotiate("xx", None) == "en"
    t = Translator("ja")
    assert t.verdict("blocked") == "禁止" and t.why("now met by asean_mcc") == "asean_mccにより充足されるようになった"
    assert Translator("en").why("now met by asean_mcc") == "now met by asean_mcc"


def test_pages_in_japanese(web):
    with web.client("ana", headers={"Accept-Language": "ja,en;q=0.5"}) as c:
        html = page(c, "/ui/check")
        assert '<html lang="ja">' in html and "個別判定" in html and "日本 (JP)" in html
        r = c.get("/ui/lang/en", params={"next": "/ui/check"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/check"
        assert '<html lang="en">' in page(c, "/ui/check")  # the cookie wins over Accept-Language
        assert c.get("/ui/lang/ja", params={"next": "https://elsewhere.example/"}).headers["location"] == "/ui/"
        r = c.post(
            "/ui/check",
            data={
                "csrf": re.search(r'name="csrf" value="([^"]+)"', page(c, "/ui/check")).group(1),
                "origin": "JP",
                "destination": "VN",
                "data_categories": "personal",
                "as_of": "2026-06-01",
            },
        )
        assert r.status_code == 200
        assert "外国にある第三者への個人データの提供には、本人の事前の同意が必要" in r.text  # the Japan rule's title


def test_japanese_labels_have_no_duplicate_keys():
    """PyYAML keeps the last of two equal keys silently; a label merged twice (or two different ones) must fail here."""
    from pathlib import Path

    import yaml

    class _Strict(yaml.SafeLoader):
        pass

    def _mapping(loader, node):
        keys = [loader.construct_object(k) for k, _ in node.value]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        assert not dupes, f"web/ja.yaml line {node.start_mark.line + 1}: duplicate keys {dupes}"
        return loader.construct_mapping(node)

    _Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    path = Path(__file__).resolve().parents[2] / "web" / "ja.yaml"
    yaml.load(path.read_text(encoding="utf-8"), Loader=_Strict)  # noqa: S506 - a SafeLoader subclass
