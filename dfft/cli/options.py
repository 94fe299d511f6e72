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
