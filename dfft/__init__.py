"""dfft: before data crosses a border, tell whether the transfer is allowed, conditional or blocked, and why.

    >>> import dfft
    >>> d = dfft.check(origin="JP", destination="VN", data_categories=["personal"], subjects=1000)
    >>> d.verdict, [f.rule_id for f in d.findings]
"""
from __future__ import annotations

import threading
from typing import Any, Optional

from .engine import Decision, Engine, EngineError, RequestError, TransferRequest
from .rules import RuleSet, RuleSetError, load_ruleset
from .guard import Guard, GuardResult, TransferBlocked, guard  # noqa: E402  (after .engine: guard builds on it)

__all__ = ["Decision", "Engine", "EngineError", "Guard", "GuardResult", "RequestError", "RuleSet", "RuleSetError",
           "TransferBlocked", "TransferRequest", "check", "default_engine", "guard", "load_ruleset"]

_default: Optional[Engine] = None
_lock = threading.Lock()


def default_engine() -> Engine:
    """The process-wide engine on the embedded rule bundle (loaded and compiled on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = Engine(load_ruleset())
        return _default


def check(request: Any = None, **fields: Any) -> Decision:
    """Judge a transfer: `check(TransferRequest(...))`, `check({...})` or `check(origin=..., destination=..., ...)`."""
    return default_engine().check(request if request is not None else fields)
