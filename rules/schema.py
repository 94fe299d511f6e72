"""Cerberus schemas for every YAML file of a rule bundle.

The schema is the first gate: nothing is compiled or evaluated until every file passes it.
Conditions are recursive, so they are checked by a custom ``check_with`` rule that walks the tree.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import cerberus

CODE_RE = r"^[A-Z]{2}$"
DATE: dict[str, Any] = {"type": "date", "nullable": True}
EFFECTS = ["allow", "condition", "block"]
DOMAINS = ["data_protection", "localisation", "ip"]
SCOPES = ["exporter", "importer", "origin"]
CONFIDENCE = ["high", "medium", "low"]
FLAG_RE = r"^[a-z][a-z0-9_]*$"

# Fields a condition may test, with the operators each accepts.
SCALAR_OPS = ("eq", "ne", "in", "not_in")
CODE_OPS = SCALAR_OPS + ("in_list",)
NUMBER_OPS = ("eq", "ne", "gte", "gt", "lte", "lt")
SET_OPS = ("contains", "contains_any", "contains_all")
# `only`: every value of the set is one of the listed (for data categories: is or falls under one of them). Allowed
# only where it narrows an exception (positive under `unless`, negative under `when`): rules/loader.py checks it.
ONLY_OPS = SET_OPS + ("only",)
BOOL_OPS = ("eq", "ne")
# Closed value sets of the request model v2 (engine/request.py declares them as enums; a test checks they agree)
ROLES = ("controller", "processor", "data_subject")
RECIPIENT_ROLES = ("controller", "processor")
RELATIONS = ("third_party", "group_company", "same_entity", "employee", "controller_of_exporter")
ACCESS = ("full", "none")
RECIPIENT_KINDS = ("private", "public_authority", "court", "international_organisation")
SIZES = ("unknown", "micro", "small", "medium", "large")
OUTCOMES = ("done", "favourable", "unfavourable")
# request model v2 (engine/request.py): parties, roles, access, data facts
FIELD_OPS: dict[str, tuple[str, ...]] = {
    "from": CODE_OPS,
    "to": CODE_OPS,
    "origin": CODE_OPS,
    "destination": CODE_OPS,
    "hop": NUMBER_OPS,
    "hops": NUMBER_OPS,
    "subjects": NUMBER_OPS,
    "exporter": SCALAR_OPS,
    "sector": SCALAR_OPS,
    "purpose": SCALAR_OPS,
    "data_categories": ONLY_OPS,
    "safeguards": SET_OPS,
    "purposes": ONLY_OPS,
    "outcomes": SET_OPS,
    "exporter_role": SCALAR_OPS,
    "exporter_size": SCALAR_OPS,
    "established": SET_OPS,
    "subjects_in": SET_OPS,
    "nationality": SET_OPS,
    "collected_in": CODE_OPS,
    "through": SET_OPS,
    "relation": SCALAR_OPS,
    "recipient_role": SCALAR_OPS,
    "access": SCALAR_OPS,
    "recipient_kind": SCALAR_OPS,
    "publicly_available": BOOL_OPS,
}
# per-category counts: `subjects.<category>` (e.g. subjects.sensitive_personal), compared like `subjects`
COUNT_FIELD_RE = r"^subjects\.[a-z][a-z0-9_]*$"
BOOL_FIELDS = ("publicly_available",)
LIST_VALUED_OPS = ("in", "not_in", "contains_any", "contains_all", "only")


def field_ops(field: str) -> Optional[tuple[str, ...]]:
    """The operators a field accepts, or None for an unknown field."""
    if field in FIELD_OPS:
        return FIELD_OPS[field]
    if re.match(COUNT_FIELD_RE, field):
        return NUMBER_OPS
    return None


ALL_OPS = sorted({op for ops in FIELD_OPS.values() for op in ops})


def condition_problems(cond: Any, path: str = "") -> list[str]:
    """Structural problems of a condition tree, as human-readable strings (empty when fine)."""
    here = path or "condition"
    if not isinstance(cond, dict):
        return [f"{here}: expected a mapping with one of all/any/not/flag/field, got {type(cond).__name__}"]
    keys = set(cond)
    if keys & {"all", "any"}:
        (key,) = keys & {"all", "any"} if len(keys) == 1 else (None,)
        if key is None:
            return [f"{here}: '{'/'.join(sorted(keys))}' together; expected exactly one of all/any/not/flag/field"]
        items = cond[key]
        if not isinstance(items, list) or not items:
            return [f"{here}.{key}: expected a non-empty list of conditions"]
        out: list[str] = []
        for i, item in enumerate(items):
            out += condition_problems(item, f"{here}.{key}[{i}]")
        return out
    if "not" in keys:
        if keys != {"not"}:
            return [f"{here}: 'not' takes no sibling keys, found {sorted(keys - {'not'})}"]
        return condition_problems(cond["not"], f"{here}.not")
    if "flag" in keys:
        if keys != {"flag"}:
            return [f"{here}: 'flag' takes no sibling keys, found {sorted(keys - {'flag'})}"]
        if not isinstance(cond["flag"], str) or not re.match(FLAG_RE, cond["flag"]):
            return [f"{here}.flag: expected a lower_snake_case flag name, got {cond['flag']!r}"]
        return []
    if "field" in keys:
        field = cond["field"]
        valid_ops = field_ops(field) if isinstance(field, str) else None
        if valid_ops is None:
            return [
                f"{here}.field: unknown field {field!r}; expected one of {sorted(FIELD_OPS)} or subjects.<category>"
            ]
        ops = keys - {"field"}
        if len(ops) != 1:
            return [
                f"{here}: expected exactly one operator beside 'field', one of {list(valid_ops)}; got {sorted(ops)}"
            ]
        (op,) = ops
        if op not in valid_ops:
            return [f"{here}.{op}: operator not valid for field {field!r}; expected one of {list(valid_ops)}"]
        val = cond[op]
        if op in LIST_VALUED_OPS:
            if not isinstance(val, list) or not val or not all(isinstance(v, str) for v in val):
                return [f"{here}.{op}: expected a non-empty list of strings"]
        elif field in BOOL_FIELDS:
            if not isinstance(val, bool):
                return [f"{here}.{op}: expected true or false, got {val!r}"]
        elif field in ("hop", "hops", "subjects") or field.startswith("subjects."):
            if not isinstance(val, int) or isinstance(val, bool) or val < 0:
                return [f"{here}.{op}: expected a non-negative integer, got {val!r}"]
        elif not isinstance(val, str):
            return [f"{here}.{op}: expected a string, got {val!r}"]
        return []
    return [f"{here}: expected one of all/any/not/flag/field, got keys {sorted(keys)}"]


def _rule_validator() -> type[cerberus.Validator]:
    import cerberus

    class RuleValidator(cerberus.Validator):
        def _check_with_condition(self, field: str, value: Any) -> None:
            for problem in condition_problems(value, field):
                self._error(field, problem)

    return RuleValidator


_lazy: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """`RuleValidator` (a cerberus.Validator) is built on first use: cerberus is imported only when a bundle is
    validated, not by a start-up that finds it in the validated-bundle cache."""
    if name == "RuleValidator":
        if name not in _lazy:
            _lazy[name] = _rule_validator()
        return _lazy[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CITATION = {
    "type": "dict",
    "required": True,
    "schema": {
        "law": {"type": "string", "required": True, "empty": False},
        "article": {"type": "string", "required": True, "empty": False},
        "url": {"type": "string", "regex": r"^https?://\S+$"},
        "quote": {"type": "string"},
    },
}

OBLIGATION = {
    "type": "dict",
    "schema": {
        "id": {"type": "string", "required": True, "regex": r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"},
        "text": {"type": "string", "required": True, "empty": False},
        "one_of": {"type": "list", "schema": {"type": "string"}, "empty": False},
        "deadline": {"type": "string", "empty": False},
    },
}

RULE: dict[str, Any] = {
    "type": "dict",
    "schema": {
        "id": {"type": "string", "required": True, "regex": r"^[A-Z]{2}-[A-Za-z0-9][A-Za-z0-9_.\-]*$"},
        "title": {"type": "string", "required": True, "empty": False},
        "scope": {"type": "string", "allowed": SCOPES},
        "citation": CITATION,
        "effective_from": DATE,
        "effective_until": DATE,
        "confidence": {"type": "string", "required": True, "allowed": CONFIDENCE},
        "note": {"type": "string", "empty": False},
        "when": {"type": "dict", "required": True, "check_with": "condition"},
        "unless": {"type": "dict", "check_with": "condition"},
        "then": {
            "type": "dict",
            "required": True,
            "schema": {
                "effect": {"type": "string", "allowed": EFFECTS, "excludes": "derive", "required": True},
                "obligations": {"type": "list", "schema": OBLIGATION, "excludes": "derive"},
                "derive": {
                    "type": "list",
                    "schema": {"type": "string", "regex": FLAG_RE},
                    "empty": False,
                    "excludes": ["effect", "obligations"],
                    "required": True,
                },
            },
        },
    },
}

RULE_FILE: dict[str, Any] = {
    "jurisdiction": {"type": "string", "required": True, "regex": CODE_RE},
    "domain": {"type": "string", "required": True, "allowed": DOMAINS},
    "rules": {"type": "list", "required": True, "schema": RULE},
}

MEMBER = {
    "type": "dict",
    "schema": {
        "code": {"type": "string", "required": True, "regex": CODE_RE},
        "from": DATE,
        "until": DATE,
        "note": {"type": "string"},
    },
}

LIST = {
    "type": "dict",
    "schema": {
        "title": {"type": "string", "required": True, "empty": False},
        "citation": {**CITATION, "required": False},
        "source": {"type": "string"},
        "confidence": {"type": "string", "allowed": CONFIDENCE},
        "note": {"type": "string"},
        "members": {"type": "list", "required": True, "schema": MEMBER},
    },
}

SCOPE_ENTRIES = {
    "type": "list",
    "schema": {
        "type": "dict",
        "schema": {
            "id": {"type": "string", "required": True, "regex": r"^[A-Z]{2}-[A-Za-z0-9_.\-]+$"},
            "title": {"type": "string", "required": True, "empty": False},
            "citation": CITATION,
            "confidence": {"type": "string", "required": True, "allowed": CONFIDENCE},
            "note": {"type": "string"},
            "when": {"required": True, "check_with": "condition"},
            "domains": {"type": "list", "empty": False, "schema": {"type": "string", "allowed": DOMAINS}},
            "roles": {"type": "list", "empty": False, "schema": {"type": "string", "allowed": SCOPES}},
        },
    },
}

# A jurisdiction's inventory of localisation / cross-border restriction measures (issue 13 item 3): every measure
# found, `encoded` (naming the rules that encode it; rules/loader.py checks they exist) or `reviewed` (with the reason
# it is not encoded). Rendered per jurisdiction by `dfft rules coverage --markdown` (rules/coverage.py).
INVENTORY_DOMAINS = (
    "personal_data",
    "important_data",
    "banking",
    "payments",
    "insurance",
    "securities",
    "credit_reporting",
    "telecom",
    "health",
    "genetic",
    "public_sector",
    "geospatial",
    "vehicles",
    "corporate_records",
    "export_control",
    "sanctions",
)
INVENTORY_STATUS = ("encoded", "reviewed")
INVENTORY = {
    "type": "list",
    "schema": {
        "type": "dict",
        "schema": {
            "measure": {"type": "string", "required": True, "empty": False},
            "instrument": {"type": "string", "required": True, "empty": False},
            "url": {"type": "string", "required": True, "regex": r"^https?://\S+$"},
            "domain": {"type": "string", "required": True, "allowed": list(INVENTORY_DOMAINS)},
            "status": {"type": "string", "required": True, "allowed": list(INVENTORY_STATUS)},
            "rules": {"type": "list", "empty": False, "schema": {"type": "string", "empty": False}},
            "reason": {"type": "string", "empty": False},
            "confidence": {"type": "string", "required": True, "allowed": CONFIDENCE},
            "source_date": {**DATE, "required": True, "nullable": False},
            "note": {"type": "string"},
        },
    },
}

JURISDICTION_FILE = {
    "code": {"type": "string", "required": True, "regex": CODE_RE},
    "name": {"type": "string", "required": True, "empty": False},
    "note": {"type": "string"},
    "regulators": {
        "type": "list",
        "schema": {"type": "dict", "schema": {"name": {"type": "string", "required": True}, "url": {"type": "string"}}},
    },
    "laws": {
        "type": "dict",
        "required": True,
        "keysrules": {"type": "string", "regex": r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"},
        "valuesrules": {
            "type": "dict",
            "schema": {
                "title": {"type": "string", "required": True, "empty": False},
                "url": {"type": "string", "required": True, "regex": r"^https?://\S+$"},
                "effective_from": DATE,
                "effective_until": DATE,
                "source_date": DATE,
                "note": {"type": "string"},
            },
        },
    },
    "lists": {"type": "dict", "keysrules": {"type": "string", "regex": r"^[a-z][a-z0-9_]*$"}, "valuesrules": LIST},
    # territorial scope, decided before the transfer rules (docs/rule-language.md, "Applicable law")
    "reach": SCOPE_ENTRIES,
    "not_transfer": SCOPE_ENTRIES,
    # localisation / cross-border restriction measures found, encoded or reviewed (rules/coverage.py renders them)
    "inventory": INVENTORY,
    # periods a regime governed but no rule encodes (docs/rule-language.md, "Coverage")
    "uncovered": {
        "type": "list",
        "schema": {
            "type": "dict",
            "schema": {
                "id": {"type": "string", "required": True, "regex": r"^[A-Z]{2}-[A-Za-z0-9_.\-]+$"},
                "provision": {"type": "string", "required": True, "empty": False},
                "url": {"type": "string", "required": True, "regex": r"^https?://\S+$"},
                "law": {"type": "string"},
                "from": {**DATE, "required": True},
                "until": {**DATE, "required": True},
                "scope": {"type": "string", "allowed": ["exporter", "importer", "origin"]},
                "data_categories": {"type": "list", "schema": {"type": "string"}},
                "except_to": {"type": "list", "schema": {"type": "string", "regex": CODE_RE}},
                "exporters": {"type": "list", "schema": {"type": "string"}},
                "confidence": {"type": "string", "required": True, "allowed": ["high", "medium", "low"]},
                "note": {"type": "string"},
            },
        },
    },
}

GROUPS_FILE = {
    "aliases": {
        "type": "dict",
        "keysrules": {"type": "string", "regex": CODE_RE},
        "valuesrules": {
            "type": "dict",
            "schema": {
                "title": {"type": "string"},
                "members": {"type": "list", "schema": {"type": "string", "regex": CODE_RE}},
            },
        },
    },
    "groups": {"type": "dict", "keysrules": {"type": "string", "regex": r"^[A-Z][A-Z0-9_]*$"}, "valuesrules": LIST},
}

BUNDLE_FILE = {
    "version": {"type": "string", "required": True, "regex": r"^\d+\.\d+\.\d+$"},
    "title": {"type": "string"},
    # written by `dfft rules manifest`; verified by the loader
    "manifest": {
        "type": "dict",
        "schema": {
            "jurisdictions": {"type": "list", "required": True, "schema": {"type": "string", "regex": CODE_RE}},
            "files": {
                "type": "dict",
                "required": True,
                "keysrules": {"type": "string", "regex": r"^[A-Za-z0-9_./\-]+$"},
                "valuesrules": {"type": "string", "regex": r"^[0-9a-f]{64}$"},
            },
        },
    },
}

VOCABULARY_FILE = {
    "data_categories": {
        "type": "dict",
        "required": True,
        "keysrules": {"type": "string", "regex": FLAG_RE},
        "valuesrules": {
            "type": "dict",
            "schema": {
                "title": {"type": "string", "required": True},
                "parents": {"type": "list", "schema": {"type": "string"}},
                "fideslang": {"type": "list", "schema": {"type": "string"}},
                "dpv": {"type": "list", "schema": {"type": "string"}},
            },
        },
    },
    "safeguards": {
        "type": "dict",
        "required": True,
        "keysrules": {"type": "string", "regex": FLAG_RE},
        "valuesrules": {"type": "string"},
    },
    "purposes": {
        "type": "dict",
        "required": True,
        "keysrules": {"type": "string", "regex": FLAG_RE},
        "valuesrules": {"type": "string"},
    },
    "sectors": {"type": "list", "required": True, "schema": {"type": "string", "regex": FLAG_RE}},
    "exporters": {
        "type": "dict",
        "required": True,
        "keysrules": {"type": "string", "regex": FLAG_RE},
        "valuesrules": {"type": "string"},
    },
}
