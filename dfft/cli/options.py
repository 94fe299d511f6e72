"""What every `dfft` command group shares: exit codes, consoles, the rule-bundle state set by `--rules`, and the
helpers that turn the transfer options (--from, --to, --via, --data, ...) into a request. Imports no other CLI module."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Optional

import typer
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


def split_values(values: Optional[list[str]]) -> list[str]:
    """Values of a repeatable option that also takes comma-separated lists."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def parse_day(value: Optional[str], option: str) -> Optional[date]:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form", param_hint=option) from None


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


def request_from_file(source: str) -> dict[str, Any]:
    """A request in the API's schema (JSON or YAML, which JSON is a subset of) from a file or `-` (stdin). The size
    is bounded like the API's request body."""
    import sys

    import yaml

    limit = 64 * 1024
    try:
        text = sys.stdin.read(limit + 1) if source == "-" else Path(source).read_text(encoding="utf-8")[: limit + 1]
    except OSError as e:
        raise typer.BadParameter(f"cannot read {source}: {e.strerror}", param_hint="--request") from None
    if len(text) > limit:
        raise typer.BadParameter(f"the request is larger than {limit} bytes", param_hint="--request")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise typer.BadParameter(f"not JSON or YAML: {e}", param_hint="--request") from None
    if not isinstance(doc, dict):
        raise typer.BadParameter(
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
            raise typer.BadParameter(f"expected CATEGORY=N, got {c!r}", param_hint="--count")
        counts[cat.strip()] = int(n)
    if counts:
        out["counts"] = counts
    if transit:
        out["_transit"] = split_values(transit)
    return out
