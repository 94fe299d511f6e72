"""dfft: before data crosses a border, tell whether the transfer is allowed, conditional or blocked, and why.

>>> import dfft
>>> d = dfft.check(origin="JP", destination="VN", data_categories=["personal"], subjects=1000)
>>> d.verdict, [f.rule_id for f in d.findings]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .engine import Decision, Engine, EngineError, RequestError, TransferRequest
from .engine.default import default_engine
from .rules import RuleSet, RuleSetError, load_ruleset

if TYPE_CHECKING:
    from .plugins.guard import Guard, GuardResult, TransferBlocked, guard

_LAZY = {"Guard", "GuardResult", "TransferBlocked", "guard"}


def __getattr__(name: str) -> Any:
    """The guard (dfft.plugins.guard) is imported on first use: the CLI and the service start without it."""
    if name in _LAZY:
        from .plugins import guard as _guard

        return getattr(_guard, name)
    raise AttributeError(f"module 'dfft' has no attribute {name!r}")


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
