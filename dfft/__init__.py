"""dfft: before data crosses a border, tell whether the transfer is allowed, conditional or blocked, and why.

>>> import dfft
>>> d = dfft.check(origin="JP", destination="VN", data_categories=["personal"], subjects=1000)
>>> d.verdict, [f.rule_id for f in d.findings]
"""

from __future__ import annotations

from typing import Any

from .engine import Decision, Engine, EngineError, RequestError, TransferRequest
from .engine.default import default_engine
from .plugins.guard import Guard, GuardResult, TransferBlocked, guard
from .rules import RuleSet, RuleSetError, load_ruleset

__all__ = [
    "Decision",
    "Engine",
    "EngineError",
    "Guard",
    "GuardResult",
    "RequestError",
    "RuleSet",
    "RuleSetError",
    "TransferBlocked",
    "TransferRequest",
    "check",
    "default_engine",
    "guard",
    "load_ruleset",
]


def check(request: Any = None, **fields: Any) -> Decision:
    """Judge a transfer: `check(TransferRequest(...))`, `check({...})` or `check(origin=..., destination=..., ...)`."""
    return default_engine().check(request if request is not None else fields)
