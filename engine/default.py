"""The process-wide engine on the embedded rule bundle: what `dfft.check` and an in-process `dfft.guard` judge with."""

from __future__ import annotations

import threading
from typing import Optional

from ..rules import load_ruleset
from .core import Engine

_default: Optional[Engine] = None
_lock = threading.Lock()


def default_engine() -> Engine:
    """The process-wide engine on the embedded rule bundle (loaded and compiled on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = Engine(load_ruleset())
        return _default
