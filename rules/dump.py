"""Write a RuleSet back to YAML files in the layout the loader reads (round trip: load(dump(rs)) == rs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml

from .model import CodeList, Rule, RuleSet, ScopeEntry


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != () and v != [] and v != {}}


def _list_doc(lst: CodeList) -> dict[str, Any]:
    d = lst.model_dump(mode="python", by_alias=True, exclude={"name"})
    members = [_clean(m) for m in d["members"]]
    if d.get("citation"):
        d["citation"] = _clean(d["citation"])
    return {**_clean(d), "members": members}  # an empty list (e.g. no country restricted yet) is still a list


def _scope_doc(e: ScopeEntry) -> dict[str, Any]:
    return _clean(
        {
            **e.model_dump(),
            "citation": _clean(e.citation.model_dump()),
            "domains": list(e.domains),
            "roles": list(e.roles),
        }
    )


def rule_doc(r: Rule) -> dict[str, Any]:
    then: dict[str, Any] = {"derive": list(r.derive)} if r.derive else {"effect": r.effect}
    if r.obligations:
        then["obligations"] = [_clean({**o.model_dump(), "one_of": list(o.one_of)}) for o in r.obligations]
    return _clean(
        {
            "id": r.id,
            "title": r.title,
            "scope": r.scope,
            "citation": _clean(r.citation.model_dump()),
            "effective_from": r.effective_from,
            "effective_until": r.effective_until,
            "confidence": r.confidence,
            "note": r.note,
            "when": r.when,
            "unless": r.unless,
            "then": then,
        }
    )


def dump_ruleset(rs: RuleSet, root: Path, vocabulary: Optional[Path] = None) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)

    def write(path: Path, doc: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")

    write(root / "bundle.yaml", _clean({"version": rs.version, "title": rs.title}))
    write(
        root / "groups.yaml",
        _clean(
            {
                "aliases": {k: {"members": list(v)} for k, v in rs.aliases.items()},
                "groups": {k: _list_doc(v) for k, v in rs.groups.items()},
            }
        ),
    )
    for code, j in rs.jurisdictions.items():
        write(
            root / code / "jurisdiction.yaml",
            _clean(
                {
                    "code": code,
                    "name": j.name,
                    "note": j.note,
                    "regulators": [_clean(r.model_dump()) for r in j.regulators],
                    "laws": {k: _clean(law.model_dump(exclude={"key"})) for k, law in j.laws.items()},
                    "lists": {k: _list_doc(v) for k, v in j.lists.items()},
                    "uncovered": [
                        _clean(
                            {
                                **u.model_dump(by_alias=True),
                                "data_categories": list(u.data_categories),
                                "except_to": list(u.except_to),
                                "exporters": list(u.exporters),
                            }
                        )
                        for u in j.uncovered
                    ],
                    "reach": [_scope_doc(e) for e in j.reach],
                    "not_transfer": [_scope_doc(e) for e in j.not_transfer],
                    "inventory": [_clean({**e.model_dump(), "rules": list(e.rules)}) for e in j.inventory],
                }
            ),
        )
        for domain in ("data_protection", "localisation", "ip"):
            rules = j.rules_in(domain)
            if rules:
                write(
                    root / code / f"{domain}.yaml",
                    {"jurisdiction": code, "domain": domain, "rules": [rule_doc(r) for r in rules]},
                )
    from .loader import write_manifest

    write_manifest(root)
    if vocabulary is not None:
        vocabulary.write_text(yaml.safe_dump(_vocab_doc(rs), sort_keys=False, allow_unicode=True), encoding="utf-8")
    return root


def _vocab_doc(rs: RuleSet) -> dict[str, Any]:
    v = rs.vocabulary
    return {
        "data_categories": {
            n: _clean(
                {"title": c.title, "parents": list(c.parents), "fideslang": list(c.fideslang), "dpv": list(c.dpv)}
            )
            for n, c in v.data_categories.items()
        },
        "safeguards": dict(v.safeguards),
        "purposes": dict(v.purposes),
        "sectors": list(v.sectors),
        "exporters": dict(v.exporters),
    }
