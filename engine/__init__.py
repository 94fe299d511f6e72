"""dfft's evaluation engine: compile rules to durable-rules, judge requests, explain decisions."""

from .compile import CompileError, EvaluationError
from .core import Engine, EngineError
from .decision import Decision, Finding
from .request import RequestError, TransferRequest

__all__ = [
    "CompileError",
    "Decision",
    "Engine",
    "EngineError",
    "EvaluationError",
    "Finding",
    "RequestError",
    "TransferRequest",
]
