"""The engine's failure types, in a module of their own so that compile.py and probe.py can both raise them without
importing each other."""

from __future__ import annotations


class CompileError(Exception):
    """A rule set that cannot (or must not) be compiled into durable-rules rulesets: refused before it serves."""


class EvaluationError(Exception):
    """durable-rules reported a failure during a check. Callers must fail closed."""
