"""A pipeline guard: stop a job before it ships data to a place the law forbids.

    import dfft

    with dfft.guard(origin="JP", destination="VN", data_categories=["personal"], subjects=1000):
        ship()                      # runs only if the transfer is allowed (or conditional and on_conditional="warn")

    @dfft.guard(origin="JP", destination="VN", data_categories=["personal"])
    def ship(): ...

Plain Python (API mode goes through dfft.client, on httpx, a core dependency): usable from Dagster, Prefect, cron jobs
or the Airflow provider (which builds on it). The guard judges the transfer in-process (the embedded rule bundle, or
an Engine you pass) or through the HTTP API (`api_url=`), and raises `TransferBlocked` -- with the Decision attached
-- when the transfer may not go ahead.

Policies:
- `on_conditional`: "fail" (default: a conditional verdict means gating obligations are not met yet) or "warn"
  (log the obligations and proceed).
- `on_unavailable`: "block" (default: fail closed) or "allow" (log and proceed) when no verdict can be had -- the API is
  unreachable or answers 5xx, the engine raises EngineError, or the audit sink fails.
An invalid request (unknown code, category, ...) always raises `RequestError`: it is a bug in the pipeline, not an
outage, and no policy lets it through.

Audit: pass `audit=` (a callable taking one dict, or "module:callable") to receive one record per decision. In API mode
the API keeps its own audit log of every check it answers; the sink is for in-process mode (wire it to the API's audit
store) or for a local trail.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Optional, Protocol, Union

from ..engine import Decision, Engine, EngineError, RequestError, TransferRequest

log = logging.getLogger("dfft.guard")

OnConditional = Literal["fail", "warn"]
OnUnavailable = Literal["block", "allow"]
AuditSink = Callable[[dict[str, Any]], Any]


class GuardLogger(Protocol):
    """What the guard logs through: a `logging.Logger` or an adapter with the same three methods."""

    def info(self, msg: str, /, *args: Any) -> Any: ...
    def warning(self, msg: str, /, *args: Any) -> Any: ...
    def error(self, msg: str, /, *args: Any) -> Any: ...


ENV_API_URL = "DFFT_API_URL"
ENV_API_KEY = "DFFT_API_KEY"
ENV_ON_CONDITIONAL = "DFFT_ON_CONDITIONAL"
ENV_ON_UNAVAILABLE = "DFFT_ON_UNAVAILABLE"

_REQUEST_FIELDS = tuple(TransferRequest.model_fields)


class CheckUnavailable(RuntimeError):
    """No verdict could be obtained: the API is unreachable or failed, or the engine raised EngineError."""


class TransferBlocked(Exception):
    """The guarded transfer may not go ahead.

    `reason` is "blocked" (the law forbids it), "conditional" (gating obligations unmet and on_conditional="fail") or
    "unavailable" (no verdict could be had and on_unavailable="block"; `decision` is then None and `error` says why).
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        request: dict[str, Any],
        decision: Optional[Decision] = None,
        error: Optional[BaseException] = None,
    ):
        super().__init__(message)
        self.reason = reason
        self.request = request
        self.decision = decision
        self.error = error

    def __reduce__(self) -> Any:
        # Picklable (Prefect stores exceptions in task states; multiprocessing sends them across processes). The
        # original error may hold a socket or a response: carry its text only.
        error = (
            self.error
            if self.error is None or isinstance(self.error, CheckUnavailable)
            else CheckUnavailable(f"{type(self.error).__name__}: {self.error}")
        )
        return (_rebuild_blocked, (str(self), self.reason, self.request, self.decision, error))


def _rebuild_blocked(
    message: str, reason: str, request: dict[str, Any], decision: Optional[Decision], error: Optional[BaseException]
) -> TransferBlocked:
    return TransferBlocked(message, reason=reason, request=request, decision=decision, error=error)


@dataclass(frozen=True)
class GuardResult:
    """The outcome of one guarded check, without raising (for asset checks and custom handling)."""

    request: dict[str, Any]
    decision: Optional[Decision]  # None when no verdict could be had
    proceed: bool  # whether the guard lets the work run
    reason: str  # allowed | conditional | blocked | unavailable
    message: str
    mode: str  # "in-process" or "api"
    error: Optional[BaseException] = field(default=None, compare=False)
    decision_id: Optional[str] = None  # the API's audit-log id of the decision (API mode; None in-process)

    @property
    def verdict(self) -> Optional[str]:
        return self.decision.verdict if self.decision else None

    def raise_if_stopped(self) -> None:
        if not self.proceed:
            raise TransferBlocked(
                self.message, reason=self.reason, request=self.request, decision=self.decision, error=self.error
            )


# -- checkers ---------------------------------------------------------------------------------------------------------


class InProcessChecker:
    """Judge with an Engine in this process (default: the embedded bundle via dfft.default_engine())."""

    mode = "in-process"

    def __init__(self, engine: Optional[Engine] = None, rules_dir: Union[str, Path, None] = None):
        self._engine = engine
        self._rules_dir = Path(rules_dir) if rules_dir is not None else None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if self._rules_dir is not None:
                self._engine = _engine_for_dir(self._rules_dir)
            else:
                from ..engine.default import default_engine

                self._engine = default_engine()
        return self._engine

    def check(self, request: dict[str, Any]) -> Decision:
        try:
            return self.engine.check(request)
        except RequestError:
            raise
        except EngineError as e:
            raise CheckUnavailable(f"engine failed: {e}") from e
        except Exception as e:  # loading/compiling the rule set failed, ...: no verdict
            raise CheckUnavailable(f"engine unavailable: {type(e).__name__}: {e}") from e


_engines: dict[Path, Engine] = {}
_engines_lock = threading.Lock()


def _engine_for_dir(rules_dir: Path) -> Engine:
    """One Engine per rules folder per process (compiling registers durable-rules rulesets; do it once)."""
    from ..rules import load_ruleset

    key = rules_dir.resolve()
    with _engines_lock:
        if key not in _engines:
            _engines[key] = Engine(load_ruleset(key))
        return _engines[key]


class ApiChecker:
    """Judge through the dfft HTTP API (POST {api_url}/v1/check) with `dfft.client.Client`: the same HTTP path as the
    client (httpx), retrying connection failures and 429/502/503/504 (after Retry-After) with backoff. The decision
    comes back with its audit-log id (`decision_id`)."""

    mode = "api"

    def __init__(
        self,
        api_url: str,
        api_key: Optional[str] = None,
        timeout: float = 10.0,
        api_key_header: str = "Authorization",
        retries: int = 3,
        backoff: float = 0.5,
    ):
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.api_key_header = api_key_header
        self.retries, self.backoff = retries, backoff

    def check(self, request: dict[str, Any]) -> Decision:
        return self.check_with_id(request)[0]

    def check_with_id(self, request: dict[str, Any]) -> tuple[Decision, Optional[str]]:
        """The decision and its audit-log id (the API returns it with the decision)."""
        from ..client import ApiError, Client

        # a guard given an explicit as_of asks for that date on purpose: that is its opt-in to a what-if date (the
        # API refuses an as_of other than today without it, and records the opt-in in the audit log)
        body = json.loads(json.dumps(request, default=str))
        client = Client(
            self.api_url,
            self.api_key,
            self.timeout,
            retries=self.retries,
            backoff=self.backoff,
            api_key_header=self.api_key_header,
            user_agent="dfft-guard",
        )
        try:
            with client:
                d = client.check(body, allow_other_date=bool(request.get("as_of")))
                return d, getattr(d, "decision_id", None)
        except ApiError as e:
            if e.status == 422:
                errors = e.errors or [{"field": "request", "message": e.problem.detail or str(e)}]
                raise RequestError(errors) from None
            if e.status == 0:
                raise CheckUnavailable(f"dfft API at {self.api_url} unreachable: {e.problem.detail}") from e
            raise CheckUnavailable(
                f"dfft API at {self.api_url} answered {e.status}: {e.problem.detail or e.problem.title}"
            ) from e
        except ValueError as e:  # pydantic: a 2xx body that is not a decision
            raise CheckUnavailable(f"dfft API at {self.api_url} returned something that is not a decision: {e}") from e


# -- the guard --------------------------------------------------------------------------------------------------------


def resolve_audit(audit: Union[AuditSink, str, None]) -> Optional[AuditSink]:
    """A sink from a callable, "module:callable" (or "module.callable"), or None."""
    if audit is None or callable(audit):
        return audit
    mod, _, attr = audit.partition(":") if ":" in audit else audit.rpartition(".")
    fn = getattr(importlib.import_module(mod), attr)
    if not callable(fn):
        raise TypeError(f"audit sink {audit!r} is not callable")
    return fn


class JsonlAuditSink:
    """Append each audit record as one JSON line to a file (thread-safe within a process)."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self._lock = threading.Lock()

    def __call__(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str, sort_keys=True)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


def describe(decision: Decision) -> str:
    """A few human lines: verdict, findings with citations, gating obligations."""
    r = decision.request
    path = " -> ".join((r.origin, *r.via_codes, r.destination))
    lines = [
        f"dfft: {path} [{', '.join(r.data_categories)}] as of {decision.as_of}: {decision.verdict.upper()} "
        f"(rule set {decision.ruleset.version} {decision.ruleset.hash[:12]})"
    ]
    for f in decision.findings:
        cit = f" -- {f.citation.law_title}, {f.citation.article}" if f.citation else ""
        lines.append(f"  [{f.effect}/{f.status}] {f.rule_id}: {f.title}{cit}")
    for ob in decision.obligations:
        if ob.kind == "gating":
            alt = f" (one of: {', '.join(ob.one_of)})" if ob.one_of else ""
            lines.append(f"  obligation {ob.id}: {ob.text}{alt}")
    return "\n".join(lines)


class Guard:
    """Check a transfer; a context manager and a decorator (sync and async functions). See the module docstring."""

    def __init__(
        self,
        request: Union[TransferRequest, dict[str, Any], None] = None,
        *,
        engine: Optional[Engine] = None,
        rules_dir: Union[str, Path, None] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        timeout: float = 10.0,
        api_key_header: str = "Authorization",
        on_conditional: Optional[OnConditional] = None,
        on_unavailable: Optional[OnUnavailable] = None,
        audit: Union[AuditSink, str, None] = None,
        context: Optional[dict[str, Any]] = None,
        checker: Any = None,
        logger: Optional[GuardLogger] = None,
        **fields: Any,
    ):
        req = (
            request.model_dump(mode="json", exclude_none=True)
            if isinstance(request, TransferRequest)
            else dict(request or {})
        )
        unknown = set(fields) - set(_REQUEST_FIELDS)
        if unknown:
            raise TypeError(f"unknown guard argument(s) {sorted(unknown)}; request fields are {list(_REQUEST_FIELDS)}")
        req.update({k: v for k, v in fields.items() if v is not None})
        self.request = _jsonable(req)
        self.on_conditional = on_conditional or os.environ.get(ENV_ON_CONDITIONAL) or "fail"
        self.on_unavailable = on_unavailable or os.environ.get(ENV_ON_UNAVAILABLE) or "block"
        if self.on_conditional not in ("fail", "warn"):
            raise ValueError(f"on_conditional must be 'fail' or 'warn', not {self.on_conditional!r}")
        if self.on_unavailable not in ("block", "allow"):
            raise ValueError(f"on_unavailable must be 'block' or 'allow', not {self.on_unavailable!r}")
        if checker is None:
            api_url = api_url if api_url is not None else (None if engine or rules_dir else os.environ.get(ENV_API_URL))
            if api_url and (engine is not None or rules_dir is not None):
                raise ValueError("give either api_url or engine/rules_dir, not both")
            checker = (
                ApiChecker(api_url, api_key or os.environ.get(ENV_API_KEY), timeout, api_key_header)
                if api_url
                else InProcessChecker(engine, rules_dir)
            )
        self.checker = checker
        self.audit = resolve_audit(audit)
        self.context = dict(context or {})
        self.log: GuardLogger = logger or log
        self.last: Optional[GuardResult] = None

    # -- evaluation -------------------------------------------------------------------------------------------
    def evaluate(self) -> GuardResult:
        """Check now and return the outcome without raising (except RequestError for an invalid request)."""
        mode = getattr(self.checker, "mode", type(self.checker).__name__)
        try:
            check_with_id = getattr(self.checker, "check_with_id", None)
            decision, decision_id = (
                check_with_id(self.request) if check_with_id else (self.checker.check(self.request), None)
            )
        except RequestError:
            raise
        except CheckUnavailable as e:
            result = self._unavailable(e, mode)
        except Exception as e:  # anything else from a custom checker: no verdict, same policy
            result = self._unavailable(CheckUnavailable(f"{type(e).__name__}: {e}"), mode, cause=e)
        else:
            result = self._judge(decision, mode)
            if decision_id:
                result = replace(result, decision_id=decision_id)
        result = self._record(result)
        self.last = result
        self._log(result)
        return result

    def check(self) -> Optional[Decision]:
        """Check now; raise TransferBlocked if the work must not run, else return the decision."""
        result = self.evaluate()
        result.raise_if_stopped()
        return result.decision

    def _judge(self, d: Decision, mode: str) -> GuardResult:
        text = describe(d)
        if d.verdict == "allowed":
            return GuardResult(self.request, d, True, "allowed", text, mode)
        if d.verdict == "blocked":
            return GuardResult(self.request, d, False, "blocked", "transfer blocked\n" + text, mode)
        if self.on_conditional == "warn":
            return GuardResult(
                self.request,
                d,
                True,
                "conditional",
                "transfer conditional (on_conditional=warn: proceeding)\n" + text,
                mode,
            )
        return GuardResult(
            self.request,
            d,
            False,
            "conditional",
            "transfer conditional: gating obligations not met (on_conditional=fail)\n" + text,
            mode,
        )

    def _unavailable(self, e: BaseException, mode: str, cause: Optional[BaseException] = None) -> GuardResult:
        proceed = self.on_unavailable == "allow"
        what = "proceeding (on_unavailable=allow)" if proceed else "failing closed (on_unavailable=block)"
        return GuardResult(
            self.request, None, proceed, "unavailable", f"no dfft verdict: {e}; {what}", mode, error=cause or e
        )

    def _record(self, result: GuardResult) -> GuardResult:
        if self.audit is None:
            return result
        record = {
            "time": datetime.now(UTC).isoformat(),
            "source": "dfft.guard",
            "mode": result.mode,
            "request": result.request,
            "verdict": result.verdict,
            "outcome": "proceed" if result.proceed else "stop",
            "reason": result.reason,
            "decision": result.decision.model_dump(mode="json") if result.decision else None,
            "error": str(result.error) if result.error else None,
            "decision_id": result.decision_id,
            "context": self.context,
        }
        try:
            self.audit(record)
        except Exception as e:
            if self.on_unavailable == "allow":
                self.log.warning(
                    "dfft audit sink failed (%s: %s); proceeding (on_unavailable=allow)", type(e).__name__, e
                )
                return result
            return GuardResult(
                result.request,
                result.decision,
                False,
                "unavailable",
                f"dfft audit sink failed ({type(e).__name__}: {e}): failing closed "
                f"(on_unavailable=block)\n{result.message}",
                result.mode,
                error=e,
            )
        return result

    def _log(self, r: GuardResult) -> None:
        if r.reason == "allowed":
            self.log.info("%s", r.message)
        elif r.proceed:
            self.log.warning("%s", r.message)
        else:
            self.log.error("%s", r.message)

    # -- context manager / decorator --------------------------------------------------------------------------
    def __enter__(self) -> Optional[Decision]:
        return self.check()

    def __exit__(self, *exc: Any) -> None:
        return None

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                self.check()
                return await fn(*args, **kwargs)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.check()
            return fn(*args, **kwargs)

        return wrapper


def _jsonable(req: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in req.items():
        if isinstance(v, (list, tuple, set, frozenset)):
            v = list(v) if not isinstance(v, (set, frozenset)) else sorted(v)
        elif hasattr(v, "isoformat"):
            v = v.isoformat()
        out[k] = v
    return out


def guard(request: Union[TransferRequest, dict[str, Any], None] = None, **kwargs: Any) -> Guard:
    """`with dfft.guard(origin=..., destination=..., data_categories=[...]):` or `@dfft.guard(...)`.

    Raises TransferBlocked (decision attached) when the transfer may not go ahead; see the module docstring for the
    options (engine / rules_dir / api_url, on_conditional, on_unavailable, audit, context)."""
    return Guard(request, **kwargs)
