"""What every `dfft` command group shares: exit codes, consoles, the rule-bundle state set by `--rules`, and the
helpers that turn the transfer options (--from, --to, --via, --data, ...) into a request. Imports no other CLI module,
and not typer (`dfft check`'s fast front, cli/fast.py, runs without it): a refused value raises typer's BadParameter,
imported then (bad_parameter)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Optional

from rich.console import Console

from ..rules import RuleSet, load_ruleset

EXIT_ALLOWED, EXIT_CONDITIONAL, EXIT_BLOCKED, EXIT_BAD_REQUEST, EXIT_BAD_RULES, EXIT_INTERNAL = range(6)
EXIT_OF_VERDICT = {"allowed": EXIT_ALLOWED, "conditional": EXIT_CONDITIONAL, "blocked": EXIT_BLOCKED}

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class State:
    rules_dir: Optional[Path] = None
    _ruleset: Optional[RuleSet] = None

    def ruleset(self) -> RuleSet:
        if self._ruleset is None:
            self._ruleset = load_ruleset(self.rules_dir)
        return self._ruleset


state = State()


def bad_parameter(message: str, param_hint: Optional[str] = None) -> Exception:
    """typer.BadParameter: the usage error click prints naming the option (typer is imported only for it here)."""
    import typer

    return typer.BadParameter(message, param_hint=param_hint)


def split_values(values: Optional[list[str]]) -> list[str]:
    """Values of a repeatable option that also takes comma-separated lists."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def parse_day(value: Optional[str], option: str) -> Optional[date]:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise bad_parameter(f"{value!r} is not a date in YYYY-MM-DD form", param_hint=option) from None


def transfer_request(
    origin: str,
    destination: str,
    via: Optional[list[str]],
    data: list[str],
    subjects: Optional[int],
    safeguard: Optional[list[str]],
    exporter: str,
    sector: str,
    purpose: str,
) -> dict[str, Any]:
    """A TransferRequest dict from the transfer options every command shares (--from, --to, --via, --data, ...)."""
    return dict(
        origin=origin,
        destination=destination,
        via=split_values(via),
        data_categories=split_values(data),
        subjects=subjects,
        safeguards=split_values(safeguard),
        exporter=exporter,
        sector=sector,
        purpose=purpose,
    )


_stdin: Optional[str] = None


def request_from_file(source: str) -> dict[str, Any]:
    """A request in the API's schema (JSON or YAML, which JSON is a subset of) from a file or `-` (stdin). The size
    is bounded like the API's request body."""
    import sys

    import yaml

    global _stdin
    limit = 64 * 1024
    try:
        if source == "-":
            # read once per process: the typer command may run after the fast front (cli/fast.py) has read it
            text = _stdin = sys.stdin.read(limit + 1) if _stdin is None else _stdin
        else:
            text = Path(source).read_text(encoding="utf-8")[: limit + 1]
    except OSError as e:
        raise bad_parameter(f"cannot read {source}: {e.strerror}", param_hint="--request") from None
    if len(text) > limit:
        raise bad_parameter(f"the request is larger than {limit} bytes", param_hint="--request")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise bad_parameter(f"not JSON or YAML: {e}", param_hint="--request") from None
    if not isinstance(doc, dict):
        raise bad_parameter(
            "expected one request: a JSON/YAML object with origin, destination, ...", param_hint="--request"
        )
    # YAML reads 2026-06-01 as a date: the request model takes ISO strings
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in doc.items()}


def v2_facts(
    transit: Optional[list[str]],
    safeguard: Optional[list[str]],
    purpose: Optional[list[str]],
    role: str,
    size: str,
    established: Optional[list[str]],
    relation: str,
    recipient_role: str,
    access: str,
    recipient_kind: str,
    subjects_in: Optional[list[str]],
    nationality: Optional[list[str]],
    collected_in: Optional[str],
    public: bool,
    count: Optional[list[str]],
) -> dict[str, Any]:
    """The request model v2 facts from `dfft check`'s options (only those given, so a v1 call stays v1-shaped)."""
    out: dict[str, Any] = {}
    safeguards: list[Any] = []
    for s in split_values(safeguard):
        name, sep, outcome = s.partition("=")
        safeguards.append({"id": name, "outcome": outcome} if sep else s)
    out["safeguards"] = safeguards
    purposes = split_values(purpose)
    if len(purposes) == 1:
        out["purpose"] = purposes[0]
    elif purposes:
        out["purposes"] = purposes
    if role != "controller":
        out["exporter_role"] = role
    if size != "unknown":
        out["exporter_size"] = size
    recipient = {
        k: v
        for k, v, default in (
            ("relation", relation, "third_party"),
            ("role", recipient_role, "controller"),
            ("access", access, "full"),
            ("kind", recipient_kind, "private"),
        )
        if v != default
    }
    if recipient:
        out["recipient"] = recipient
    for key, values in (("established", established), ("subjects_in", subjects_in), ("nationality", nationality)):
        if values:
            out[key] = split_values(values)
    if collected_in:
        out["collected_in"] = collected_in
    if public:
        out["publicly_available"] = True
    counts: dict[str, int] = {}
    for c in split_values(count):
        cat, sep, n = c.partition("=")
        if not sep or not n.strip().isdigit():
            raise bad_parameter(f"expected CATEGORY=N, got {c!r}", param_hint="--count")
        counts[cat.strip()] = int(n)
    if counts:
        out["counts"] = counts
    if transit:
        out["_transit"] = split_values(transit)
    return out


# -- closed sets: checked when the command line is parsed ------------------------------------------------------------
# Every option whose values come from a closed set is checked before anything runs, and a wrong value is refused
# (exit 3) naming the option and listing the valid values. The sets are the rule language's own: the fixed ones from
# rules/schema.py, the vocabulary ones (categories, safeguards, purposes, sectors, exporter kinds) from the rule
# bundle's vocabulary (rules/vocabulary.yaml), read only when such an option is given.
from collections.abc import Callable as _Callable  # noqa: E402

from ..rules import schema as _S  # noqa: E402

ENGINES = ("durable", "reference")
ROLES, SIZES, RELATIONS = _S.ROLES, _S.SIZES, _S.RELATIONS
RECIPIENT_ROLES, ACCESS, RECIPIENT_KINDS, OUTCOMES = _S.RECIPIENT_ROLES, _S.ACCESS, _S.RECIPIENT_KINDS, _S.OUTCOMES
VOCABULARY_SETS = ("data_categories", "safeguards", "purposes", "sectors", "exporters")


def one_of(values: tuple[str, ...] | list[str]) -> str:
    return " | ".join(values)


def _refuse(option: str, value: str, valid: Any, what: str = "valid") -> Exception:
    valid = list(valid)
    return bad_parameter(f"{value!r} is not {what}; expected one of {', '.join(valid)}", param_hint=option)


def choice(option: str, values: tuple[str, ...]) -> _Callable[[Any], Any]:
    """A callback for an option (or a repeatable option) whose values must be in `values`."""

    def check(value: Any) -> Any:
        for v in value if isinstance(value, list) else [value]:
            if v is not None and v not in values:
                raise _refuse(option, v, values)
        return value

    return check


def vocabulary_sets() -> Any:
    """The rule bundle's vocabulary (the one the engine judges with)."""
    return state.ruleset().vocabulary


def vocabulary_choice(option: str, kind: str, default: Optional[str] = None) -> _Callable[[Any], Any]:
    """A callback for an option whose values are terms of the vocabulary: `kind` is data_categories (names or mapped
    fideslang / DPV labels, comma-separated or repeated), safeguards (NAME or NAME=OUTCOME), purposes, sectors or
    exporters. The option's default is not checked (it needs no vocabulary)."""
    assert kind in VOCABULARY_SETS

    def check(value: Any) -> Any:
        if value is None or value == default or value == []:
            return value
        items = split_values(value) if isinstance(value, list) else [value]
        v = vocabulary_sets()
        known = getattr(v, kind)
        for item in items:
            if kind == "data_categories":
                if v.resolve(item) is None:
                    raise _refuse(option, item, sorted(known), "a data category (nor a mapped fideslang / DPV label)")
            elif kind == "safeguards":
                name, sep, outcome = item.partition("=")
                if name not in known:
                    raise _refuse(option, name, sorted(known), "a safeguard")
                if sep and outcome not in OUTCOMES:
                    raise _refuse(option, f"{name}={outcome}", OUTCOMES, f"an outcome of {name}")
            elif item not in known:
                raise _refuse(option, item, sorted(known))
        return value

    return check


def count_choice(value: Any) -> Any:
    """--count CATEGORY=N: the category must be one (N is checked when the request is built)."""
    if not value:
        return value
    v = vocabulary_sets()
    for item in split_values(value):
        cat = item.partition("=")[0].strip()
        if v.resolve(cat) is None:
            raise _refuse("--count", cat, sorted(v.data_categories), "a data category")
    return value


def _placeholders_not_type_names() -> None:
    """Recent typer prints a type name (`<str>`, `<path>`, `<bool>`) beside every option and argument in --help.
    Show a placeholder instead: the option's metavar, else its name in capitals (--data-dir DATA_DIR); nothing for
    a flag (it takes no value) or an argument (its name is already shown); choices stay listed. Older typers print
    click's metavars and are left as they are."""
    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:
        return
    for cls in (TyperOption, TyperArgument):
        shown = getattr(cls, "display_type_rich", None)
        if shown is None or getattr(shown, "_dfft", False):
            continue

        def display_type_rich(self: Any, ctx: Any, _shown: Any = shown, _arg: bool = cls is TyperArgument) -> Any:
            if _arg or getattr(self, "is_flag", False):
                return ""
            if self.metavar is not None:
                return self.metavar
            try:
                if self.type_descriptor.is_choice:
                    return _shown(self, ctx)
            except AttributeError:
                return _shown(self, ctx)
            return (self.name or "value").upper() + ("..." if self.nargs != 1 else "")

        display_type_rich._dfft = True  # type: ignore[attr-defined]
        cls.display_type_rich = display_type_rich  # type: ignore[method-assign]


# the vocabulary callbacks the commands share (module-level: option defaults are built once)
DATA_CHOICE = vocabulary_choice("--data", "data_categories")
SAFEGUARD_CHOICE = vocabulary_choice("--safeguard", "safeguards")
PURPOSE_CHOICE = vocabulary_choice("--purpose", "purposes")
PURPOSE_CHOICE_DEFAULT = vocabulary_choice("--purpose", "purposes", "general")
EXPORTER_CHOICE = vocabulary_choice("--exporter", "exporters", "private")
SECTOR_CHOICE = vocabulary_choice("--sector", "sectors", "general")
OUTCOMES_TEXT = one_of(OUTCOMES)
BULK_FORMATS = ("csv", "jsonl", "parquet", "openlineage")  # plugins.bulk.FORMATS (a test keeps them equal)
BULK_BACKENDS = ("ray", "local")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's (dfft serve --log-level)
WEB_ROLES = ("viewer", "analyst", "admin")  # web.accounts.ROLES (a test keeps them equal)
