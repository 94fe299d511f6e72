"""The pre-transfer check service (FastAPI), versioned under /v1.

    create_app(Settings(...))  ->  FastAPI app; `dfft serve` runs it on uvicorn.

Everything a client can get wrong is answered with RFC 9457 problem details; anything that goes wrong inside is a
500 problem without a verdict and without a stack trace (fail closed). Every decision is committed to the audit
log before it is returned, and names the hash of the rule bundle that produced it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, Optional

import sqlalchemy as sa
from fastapi import Body, Depends, FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..engine import CompileError, Engine, EngineError, RequestError, TransferRequest
from ..engine.core import memo_bytes
from ..rules import RuleSetError, load_ruleset
from ..rules.loader import check_successor
from ..rules.model import Jurisdiction
from .audit import AuditLog, AuditUnavailable, Judged, new_id, row_for
from .db import open_database
from .keys import ApiKey, KeyStore
from .models import (
    LABELS,
    MAX_LABELS,
    PROBLEM,
    BatchResponse,
    CheckedDecision,
    DecisionPage,
    Health,
    JurisdictionSummary,
    Problem,
    ReloadResult,
    RulesetInfo,
    Vocabulary,
    internal_error,
    label_filter,
    problem,
    vocabulary_of,
)
from .openapi import DECISION_HEADERS, contract, request_body
from .settings import Settings

log = logging.getLogger("dfft.api")
MEMO_SIZE = 65_536
ALLOW_OTHER_DATE = (
    "judge a request whose `as_of` is not today (UTC): a what-if about the past or the future, "
    "recorded as such in the audit log (`other_date`). Without it such a request is refused (422): "
    "the check is the gate for a transfer about to happen, and a law that lapses or takes effect on "
    "another date would give another answer than today's"
)
OTHER_DATE = (
    "the as_of date {as_of} is not today ({today}, UTC): /v1/check judges a transfer about to happen, so "
    "another date is a what-if. Leave as_of out, or opt in with ?allow_other_date=true (recorded in the "
    "audit log), or use /v1/whatif"
)


def utc_today() -> date:
    return datetime.now(UTC).date()


JSONL = "application/x-ndjson"


# -- problems -------------------------------------------------------------------------------------------------------
class ProblemError(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: Optional[str] = None,
        type_: str = "about:blank",
        headers: Optional[dict[str, str]] = None,
        **extra: Any,
    ):
        self.status, self.title, self.detail, self.type, self.headers, self.extra = (
            status,
            title,
            detail,
            type_,
            headers,
            extra,
        )
        super().__init__(detail or title)


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "Missing or invalid API key",
        403: "The API key's scope does not allow this",
        404: "Not found",
        413: "Request body too large",
        415: "The body is not JSON (send `Content-Type: application/json`)",
        422: "Invalid request",
        429: "Too many distinct what-if scenarios for this API key: retry after `Retry-After` seconds",
        500: "Internal error: no verdict (treat the transfer as not allowed)",
        503: "Not ready, or the audit log is unavailable: no verdict",
    }
    return {c: {"model": Problem, "description": text[c], "content": {PROBLEM: {}}} for c in codes}


RETRY_AFTER = "5"  # seconds, on every 503


def unavailable() -> JSONResponse:
    return problem(
        503,
        "Service unavailable: no verdict",
        "the service database is unavailable; retry later",
        "urn:dfft:problem:database-unavailable",
        headers={"Retry-After": RETRY_AFTER},
    )


# -- bounded problem details: a 422 names the bad input, but never echoes more than a few KB of it --------------
MAX_ECHO = 200  # characters of any one string in a problem's detail or errors (the rest is counted, not shown)
MAX_ERRORS = 20  # errors listed in one problem; `more_errors` counts the rest


def clip(value: Any, limit: int = MAX_ECHO) -> Any:
    """`value` with every string in it cut to `limit` characters (with a count of what was cut)."""
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}… ({len(value) - limit:,} more characters)"
    if isinstance(value, dict):
        return {clip(k, limit): clip(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clip(v, limit) for v in value]
    return value


def clipped_errors(errors: Optional[list[dict[str, Any]]]) -> dict[str, Any]:
    """`errors=` and, when some were left out, `more_errors=` for problem(): at most MAX_ERRORS, every string clipped."""
    errors = list(errors or [])
    out: dict[str, Any] = {"errors": [clip(e) for e in errors[:MAX_ERRORS]] or None}
    if len(errors) > MAX_ERRORS:
        out["more_errors"] = len(errors) - MAX_ERRORS
    return out


# -- security headers (pure ASGI, outermost: every response, including 413s and 500s) ----------------------------
JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
# HTML this service renders (the what-if report): inline styles and SVG, no script, nothing from elsewhere
HTML_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)


NOSNIFF = (b"x-content-type-options", b"nosniff")
JSON_CSP_HEADER = (b"content-security-policy", JSON_CSP.encode())
HTML_CSP_HEADER = (b"content-security-policy", HTML_CSP.encode())


class SecurityHeaders:
    """`X-Content-Type-Options: nosniff` on every response, and a Content-Security-Policy unless the endpoint set its
    own (the docs pages do): strict for JSON and everything else, HTML_CSP for HTML."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers", ()))
                nosniff = csp = False
                ctype = b""
                for k, v in headers:
                    k = k.lower()
                    if k == b"x-content-type-options":
                        nosniff = True
                    elif k == b"content-security-policy":
                        csp = True
                    elif k == b"content-type":
                        ctype = v
                if not nosniff:
                    headers.append(NOSNIFF)
                if not csp:
                    headers.append(HTML_CSP_HEADER if ctype.lower().startswith(b"text/html") else JSON_CSP_HEADER)
                msg = {**msg, "headers": headers}
            await send(msg)

        await self.app(scope, receive, with_headers)


# -- API docs, served from the package (no CDN: they work offline) ---------------------------------------------
def docs_assets() -> Any:
    """The Swagger UI and ReDoc bundles shipped by the fastapi-offline package."""
    from pathlib import Path

    import fastapi_offline.core

    return Path(fastapi_offline.core.__file__).parent / "static"


def docs_page(html: str) -> Response:
    """An HTML docs page with a CSP that allows its own inline script (by hash) and everything else from self only."""
    import base64
    import re

    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(m.encode()).digest()).decode()}'"
        for m in re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    )
    csp = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return Response(html, media_type="text/html", headers={"Content-Security-Policy": csp})


# -- body size limit (pure ASGI, so it sees every byte before FastAPI parses anything) ---------------------------
class BodyLimit:
    def __init__(self, app: Any, default: int, larger: dict[str, int]):
        self.app, self.default, self.larger = app, default, larger

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        limit = self.larger.get(scope["path"], self.default)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    return await self._refuse(scope, receive, send, limit)
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await self._refuse(scope, receive, send, limit)
            chunks.append(chunk)
            if not msg.get("more_body"):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    async def _refuse(self, scope: dict, receive: Any, send: Any, limit: int) -> None:
        resp = problem(
            413,
            "Request body too large",
            f"the body of {scope['path']} may not exceed {limit:,} bytes",
            "urn:dfft:problem:body-too-large",
            headers={"Connection": "close"},
        )
        await resp(scope, receive, send)


class CatchAll:
    """Any exception that escapes the app becomes a 500 problem without a verdict or a stack trace; it is logged
    here and not re-raised, so the server keeps the connection healthy."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(msg: dict) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:  # noqa: BLE001
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await internal_error()(scope, receive, send)


def as_utc(t: datetime) -> datetime:
    """`t` in UTC (naive means UTC). A time whose UTC equivalent falls outside years 1-9999 (e.g.
    0001-01-01T00:00:00+14:00) is clamped to the nearest representable instant: as a bound of the audit-log filters
    it selects the same records (none is older than year 1 or newer than year 9999), where the conversion itself
    would overflow."""
    if t.tzinfo is None:
        return t.replace(tzinfo=UTC)
    try:
        return t.astimezone(UTC)
    except OverflowError:
        offset = t.utcoffset()
        early = offset is not None and offset > timedelta(0)  # a positive offset moves the instant earlier
        return (datetime.min if early else datetime.max).replace(tzinfo=UTC)


# -- bodies with labels: `labels` are split off here, before the request reaches the engine --------------------
_REQUESTS = TypeAdapter(list[TransferRequest])


class _BatchShape(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: list[dict[str, Any]] = Field(min_length=1)


def _invalid(e: ValidationError, *prefix: Any) -> list[dict[str, Any]]:
    return [{**err, "loc": ("body", *prefix, *err.get("loc", ()))} for err in e.errors(include_url=False)]


def split_labels(item: dict[str, Any], *prefix: Any) -> tuple[Optional[dict[str, str]], dict[str, Any], list[dict]]:
    """(labels, the request without them, validation errors of the labels) for one JSON object."""
    if "labels" not in item:
        return None, item, []
    rest = {k: v for k, v in item.items() if k != "labels"}
    try:
        return LABELS.validate_python(item["labels"]), rest, []
    except ValidationError as e:
        return None, rest, _invalid(e, *prefix, "labels")


def parse_check(body: Any) -> tuple[Optional[dict[str, str]], TransferRequest]:
    """The body of POST /v1/check as (labels, TransferRequest); RequestValidationError (422) naming each field."""
    if not isinstance(body, dict):
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "Input should be a JSON object (a transfer request)", "type": "dict_type"}]
        )
    labels, rest, errors = split_labels(body)
    try:
        request = TransferRequest.model_validate(rest)
    except ValidationError as e:
        raise RequestValidationError(errors + _invalid(e)) from None
    if errors:
        raise RequestValidationError(errors)
    return labels, request


def parse_batch(body: Any, max_batch: int) -> tuple[list[Optional[dict[str, str]]], list[TransferRequest]]:
    """The body of POST /v1/check/batch as (labels per request, requests). A batch over `max_batch` is refused
    before its requests are validated."""
    try:
        shape = _BatchShape.model_validate(body)
    except ValidationError as e:
        raise RequestValidationError(_invalid(e)) from None
    if len(shape.requests) > max_batch:
        raise ProblemError(
            422,
            "Batch too large",
            f"at most {max_batch:,} requests per batch; got {len(shape.requests):,}",
            "urn:dfft:problem:batch-too-large",
        )
    labels: list[Optional[dict[str, str]]] = []
    items: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(shape.requests):
        lab, rest, errs = split_labels(item, "requests", i)
        labels.append(lab)
        items.append(rest)
        errors += errs
    try:
        requests = _REQUESTS.validate_python(items)
    except ValidationError as e:
        raise RequestValidationError(errors + _invalid(e, "requests")) from None
    if errors:
        raise RequestValidationError(errors)
    return labels, requests


# -- rule sets, hot-reloadable ---------------------------------------------------------------------------------
class _Key:
    """A memo key that hashes its value once: a TransferRequest's hash walks all its fields, and a memo lookup, its
    insertion and its eviction each asked for it again."""

    __slots__ = ("value", "_hash")

    def __init__(self, value: tuple):
        self.value = value
        self._hash = hash(value)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and self._hash == other._hash and self.value == other.value


class Rules:
    """The engine currently serving. Engines are immutable, one per bundle: a reload validates and compiles the new
    bundle into a new Engine, then swaps the reference; a bundle that fails is refused and the old rules keep
    serving. Whoever judges takes a lease on the current engine (lease() / acquire()), so a batch or a what-if run
    judges every request with one bundle, and the old engine is closed (its durable-rules rulesets freed) only when
    its last user is done."""

    def __init__(self, rules_dir: Any, memo_budget: Optional[int] = None):
        self.rules_dir = rules_dir
        self.engine = Engine(load_ruleset(rules_dir))
        self.loaded_at = datetime.now(UTC)
        self._lock = threading.Lock()
        self._swap = threading.Lock()
        self._memo: OrderedDict[_Key, Judged] = OrderedDict()
        self._memo_bytes = 0
        self.memo_budget = memo_bytes() if memo_budget is None else memo_budget
        self._memo_lock = threading.Lock()
        # POST /v1/check bodies as received (bytes) -> (labels, request, decision, response head): a repeated body skips
        # JSON parsing and validation as well. Shares the byte budget and is emptied with the memo.
        self._bodies: OrderedDict[tuple, tuple[Any, TransferRequest, Judged, bytes]] = OrderedDict()
        self._bodies_bytes = 0
        self.reloads = 0
        self.memo_hits = 0  # GET /metrics: dfft_memo_lookups
        self.memo_misses = 0

    def acquire(self) -> Engine:
        """The current engine, leased: release() it when done."""
        with self._swap:
            return self.engine.acquire()

    @contextmanager
    def lease(self) -> Iterator[Engine]:
        eng = self.acquire()
        try:
            yield eng
        finally:
            eng.release()

    def judge(self, eng: Engine, request: TransferRequest, today: Optional[date] = None) -> Judged:
        """eng.check(request, today), memoised per engine on the request as sent and the date it is judged as of
        (`today` for a request without as_of): repeated requests skip normalisation and serialisation. The memo is
        bounded by count and by bytes (its serialised decisions and requests; DFFT_MEMO_BYTES)."""
        day = today or utc_today()
        key = _Key((eng.hash, request, day if request.as_of is None else None))
        with self._memo_lock:
            hit = self._memo.get(key)
            if hit is not None:
                self._memo.move_to_end(key)
                self.memo_hits += 1
                return hit
            self.memo_misses += 1
        j = Judged.of(eng.check(request, day))
        size = 2 * (len(j.json) + len(j.request_json)) + 512
        with self._memo_lock:
            if key not in self._memo and size <= self.memo_budget:
                self._memo[key] = j
                self._memo_bytes += size
                while len(self._memo) > MEMO_SIZE or self._memo_bytes > self.memo_budget:
                    _, old = self._memo.popitem(last=False)
                    self._memo_bytes -= 2 * (len(old.json) + len(old.request_json)) + 512
        return j

    def judge_body(
        self, eng: Engine, body: bytes, today: date
    ) -> tuple[Optional[dict[str, str]], TransferRequest, Judged, bytes]:
        """POST /v1/check's body judged: (labels, request, decision, the response up to its decision id). Memoised on
        the body's bytes, the engine and today's date (a repeated body skips JSON parsing and validation); raises
        what parse_check and judge raise (the caller answers those through the full route)."""
        key = (eng.hash, body, today)
        with self._memo_lock:
            hit = self._bodies.get(key)
            if hit is not None:
                self._bodies.move_to_end(key)
                self.memo_hits += 1
                return hit
        labels, request = parse_check(json.loads(body))
        j = self.judge(eng, request, today)
        entry = (labels, request, j, f'{j.json[:-1]},"decision_id":"'.encode())
        size = 2 * len(body) + len(entry[3]) + 512
        with self._memo_lock:
            if key not in self._bodies and size <= self.memo_budget // 4:
                self._bodies[key] = entry
                self._bodies_bytes += size
                while len(self._bodies) > MEMO_SIZE or self._bodies_bytes > self.memo_budget // 4:
                    (_, old_body, _), old = self._bodies.popitem(last=False)
                    self._bodies_bytes -= 2 * len(old_body) + len(old[3]) + 512
        return entry

    @property
    def memo_entries(self) -> int:
        return len(self._memo)

    def info(self) -> RulesetInfo:
        with self._swap:
            eng, at = self.engine, self.loaded_at
        rs = eng.ruleset
        return RulesetInfo(
            version=rs.version,
            hash=eng.hash,
            title=rs.title,
            loaded_at=at,
            jurisdictions=sorted(rs.jurisdictions),
            rules=len(rs.all_rules()),
        )

    def reload(self, rules_dir: Any = None) -> ReloadResult:
        """Raises RuleSetError / CompileError (or RuntimeError) when the bundle is refused. `rules_dir`: load from there
        and, once it is accepted, reload from there from now on (the bundle follower, api/distribution.py)."""
        with self._lock:
            previous = self.engine.ref
            rs = load_ruleset(rules_dir if rules_dir is not None else self.rules_dir)
            dropped = check_successor(self.engine.ruleset, rs)  # a jurisdiction dropped under the same version
            if dropped:
                raise RuleSetError(dropped)
            if rs.hash == self.engine.hash:
                if rules_dir is not None:
                    self.rules_dir = rules_dir
                return ReloadResult(status="unchanged", previous=previous, current=self.info())
            try:
                # compiles first: a failure leaves the old engine serving
                eng = Engine(rs)
            except CompileError:
                raise
            except Exception as e:  # noqa: BLE001 — any compilation failure refuses the bundle
                raise CompileError(f"{type(e).__name__}: {e}") from e
            with self._swap:
                old, self.engine = self.engine, eng
                self.loaded_at = datetime.now(UTC)
            if rules_dir is not None:
                self.rules_dir = rules_dir
            # closed (its durable-rules rulesets freed) once the batches and checks that leased it are done
            old.retire()
            with self._memo_lock:
                self._memo.clear()
                self._memo_bytes = 0
                self._bodies.clear()
                self._bodies_bytes = 0
            self.reloads += 1
            log.warning(
                "rule bundle reloaded: %s (%s) replaces %s (%s)",
                rs.version,
                eng.hash[:12],
                previous.version,
                previous.hash[:12],
            )
            return ReloadResult(status="reloaded", previous=previous, current=self.info())

    def reload_quietly(self) -> None:
        """For SIGHUP: reload, logging the outcome."""
        try:
            self.reload()
        except Exception as e:  # noqa: BLE001
            log.error("rule bundle refused, still serving %s: %s", self.engine.hash[:12], e)


def refused(e: Exception, current: Any) -> ProblemError:
    errors = [
        {"file": p.file, "rule_id": p.rule_id, "field": p.field, "message": p.message}
        for p in getattr(e, "problems", [])
    ] or [{"message": str(e)}]
    kind = "does not validate" if isinstance(e, RuleSetError) else "does not compile"
    return ProblemError(
        422,
        "Rule bundle refused",
        f"the new rule bundle {kind}; still serving {current.hash}",
        "urn:dfft:problem:ruleset-refused",
        errors=errors,
        serving=current.model_dump(),
    )


class DfftApp(FastAPI):
    """FastAPI, with the hot path of POST /v1/check (`hot`, set by create_app) answered ahead of the middleware stack.

    `hot` does what the stack would for the requests it answers in full (a valid key of scope check, a JSON body
    within the size limit that validates, a decision committed to the audit log): the body limit, the security
    headers, the request metrics and the catch-all, inline, without the ~10 ASGI layers and send wrappers in between,
    FastAPI's routing, dependency solving (the two security dependencies) and validation. Everything else (no key, a
    bad key, a bad or oversized body, an engine error, an unexpected query, a root_path) goes through the whole stack
    to the FastAPI route, which answers it exactly as before; nothing is recorded before that hand-over, so a request
    is never judged into the audit log twice."""

    hot: Any = None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        hot = self.hot
        if (
            hot is not None
            and scope["type"] == "http"
            and scope["path"] == "/v1/check"
            and scope["method"] == "POST"
            and not self.root_path
        ):
            return await hot(scope, receive, send)
        await super().__call__(scope, receive, send)

    async def stack(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """The whole app (middleware stack, routing, the FastAPI route), bypassing `hot`."""
        await super().__call__(scope, receive, send)


async def read_body(receive: Any, limit: int) -> Optional[tuple[bytes, bool]]:
    """(the request body, False); or, once it is over `limit` bytes, (what was read so far, whether more follows);
    or None when the client went away."""
    msg = await receive()
    if msg["type"] != "http.request":
        return None
    body = msg.get("body", b"")
    more = bool(msg.get("more_body"))
    if not more or len(body) > limit:
        return body, more
    chunks, size = [body], len(body)
    while more and size <= limit:
        msg = await receive()
        if msg["type"] != "http.request":
            return None
        chunks.append(msg.get("body", b""))
        size += len(chunks[-1])
        more = bool(msg.get("more_body"))
    return b"".join(chunks), more


def replaying(body: bytes, receive: Any, more: bool = False) -> Any:
    """An ASGI `receive` that hands the already-read body over once, then defers to the real one (disconnects, or
    the rest of the body when `more`)."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


def signal_worker_group(group: Optional[int]) -> None:
    """In a worker of `dfft serve --workers N`: ask the supervisor to pass SIGHUP to every worker, so that a reload
    through this one reaches all (each reloads its bundle from the rules directory; this one finds it unchanged)."""
    import os

    if group and os.getppid() == group and hasattr(signal, "SIGHUP"):
        try:
            os.kill(group, signal.SIGHUP)
        except OSError as e:  # the supervisor is gone: nothing to reach
            log.error("could not signal the worker group %s: %s", group, e)


# -- the app ---------------------------------------------------------------------------------------------------
def create_app(settings: Optional[Settings] = None, rules_dir: Any = None) -> FastAPI:
    settings = settings or Settings()
    if rules_dir is not None:
        settings.rules_dir = rules_dir
    rules = Rules(settings.rules_dir)
    db = open_database(settings.url)
    if settings.audit_writer:  # `dfft serve`: one writer process commits the rows of every worker (api/writer.py)
        from .writer import RemoteAuditLog

        audit: AuditLog = RemoteAuditLog(db, settings.audit_writer)
    else:
        audit = AuditLog(db, probe_interval=settings.ready_probe_interval)
    keys = KeyStore(db, cache_seconds=settings.key_cache_seconds)
    sink = None
    if settings.decision_log_url:
        from .sink import DecisionLogSink

        sink = DecisionLogSink(
            db,
            settings.decision_log_url,
            token=settings.decision_log_token,
            batch=settings.decision_log_batch,
            interval=settings.decision_log_interval,
            max_backoff=settings.decision_log_max_backoff,
            name=settings.decision_log_name,
        ).start()
        audit.on_commit.append(sink.wake)
    from .metrics import Metrics, MetricsMiddleware, audit_families, memo_families, sink_families

    metrics = Metrics()
    metrics.watch(lambda: memo_families(rules))
    metrics.watch(lambda: audit_families(audit))
    metrics.watch(lambda: sink_families(sink))
    from .distribution import BundleFollower

    # converge on the active published bundle (if any) before serving, then follow it (api/distribution.py)
    bundles = BundleFollower(db, rules, settings.bundle_poll_seconds)
    if bundles.enabled:
        bundles.poll_quietly()
    metrics.watch(bundles.families)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        previous = None
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            previous = signal.signal(
                signal.SIGHUP,
                lambda *_: threading.Thread(target=rules.reload_quietly, name="dfft-reload", daemon=True).start(),
            )
        bundles.start()
        audit.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            bundles.close()
            if previous is not None:
                signal.signal(signal.SIGHUP, previous)
            audit.close()
            if sink is not None:
                sink.close()
            db.dispose()

    app = DfftApp(
        title="dfft",
        version="1",
        description="Pre-transfer checks for cross-border data flows: allowed / conditional / blocked, with the "
        "article of law behind every finding. Authenticate with `Authorization: Bearer <key>` or "
        "`X-API-Key: <key>` (keys: `dfft keys create --scope check|admin`). Errors are RFC 9457 "
        "problem details. Every decision is recorded in the audit log before it is returned.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings, app.state.rules, app.state.audit, app.state.keys, app.state.db = (
        settings,
        rules,
        audit,
        keys,
        db,
    )
    app.state.sink, app.state.metrics = sink, metrics
    app.state.bundles = bundles
    app.add_middleware(CatchAll)
    # paths with a larger body limit; a room mounted on the app (the web workbench's uploads) may add its own
    app.state.body_limits = {"/v1/check/batch": settings.max_batch_body}
    app.add_middleware(BodyLimit, default=settings.max_body, larger=app.state.body_limits)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: sees every status, 413s and 500s included

    # -- docs (the assets are served from the package: the pages work offline) ---------------------------------
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount("/docs-assets", StaticFiles(directory=docs_assets()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(req: Request):
        root = req.scope.get("root_path", "")
        return docs_page(
            bytes(
                get_swagger_ui_html(
                    openapi_url=f"{root}{app.openapi_url}",
                    title="dfft API",
                    swagger_js_url=f"{root}/docs-assets/swagger-ui-bundle.js",
                    swagger_css_url=f"{root}/docs-assets/swagger-ui.css",
                    swagger_favicon_url=f"{root}/docs-assets/favicon.png",
                    swagger_ui_parameters={"validatorUrl": None},
                ).body
            ).decode()
        )  # no badge from the online validator

    @app.get("/redoc", include_in_schema=False)
    async def redoc(req: Request):
        root = req.scope.get("root_path", "")
        return docs_page(
            bytes(
                get_redoc_html(
                    openapi_url=f"{root}{app.openapi_url}",
                    title="dfft API",
                    redoc_js_url=f"{root}/docs-assets/redoc.standalone.js",
                    redoc_favicon_url=f"{root}/docs-assets/favicon.png",
                    with_google_fonts=False,
                ).body
            ).decode()
        )

    # -- errors -------------------------------------------------------------------------------------------------
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, e: ProblemError):
        return problem(e.status, e.title, e.detail, e.type, e.headers, **e.extra)

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, e: RequestError):
        return problem(
            422,
            "Invalid transfer request",
            clip(str(e), 4 * MAX_ECHO),
            "urn:dfft:problem:invalid-request",
            **clipped_errors(e.errors),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(req: Request, e: RequestValidationError):
        ctype = req.headers.get("content-type", "")
        if req.method == "POST" and ctype and "json" not in ctype.split(";")[0]:
            return problem(
                415,
                "Unsupported media type",
                f"send a JSON body with `Content-Type: application/json`; got {ctype[:100]!r}",
                "urn:dfft:problem:unsupported-media-type",
            )
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
                "message": err.get("msg", "invalid"),
                "type": err.get("type"),
            }
            for err in e.errors()
        ]
        detail = "; ".join(f"{clip(x['field'])}: {clip(x['message'])}" for x in errors[:10])
        return problem(
            422,
            "Invalid request",
            clip(detail, 4 * MAX_ECHO),
            "urn:dfft:problem:invalid-request",
            **clipped_errors(errors),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException):
        return problem(
            e.status_code,
            {404: "Not found", 405: "Method not allowed"}.get(e.status_code, "Error"),
            str(e.detail) if e.detail else None,
            headers=getattr(e, "headers", None),
        )

    @app.exception_handler(EngineError)
    async def _engine(_: Request, e: EngineError):
        log.error("engine error: %s", e)
        return problem(
            500,
            "Internal error: no verdict",
            "the engine failed on this request; treat the transfer as not allowed",
            "urn:dfft:problem:engine-error",
        )

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    @app.exception_handler(sa.exc.TimeoutError)
    async def _database(_: Request, e: Exception):
        # the database is down, unreachable, full or read-only (a key lookup, an audit-log query, ...): an outage,
        # not the caller's fault and not an internal bug, so 503 with a time to retry; never a verdict
        log.error("database unavailable: %s", f"{type(e).__name__}: {e}"[:500])
        return unavailable()

    def audit_unavailable() -> JSONResponse:
        return problem(
            503,
            "Audit log unavailable: no verdict",
            "the decision could not be recorded, so it is not returned; retry later",
            "urn:dfft:problem:audit-unavailable",
            headers={"Retry-After": RETRY_AFTER},
        )

    @app.exception_handler(AuditUnavailable)
    async def _audit(_: Request, e: AuditUnavailable):
        log.error("audit log unavailable: %s", e)
        return audit_unavailable()

    def other_date(request: TransferRequest, today: date) -> bool:
        return request.as_of is not None and request.as_of != today

    def audited_row(j: Judged, caller: str, other: bool, **kw: Any) -> dict[str, Any]:
        row = row_for(j, caller, **kw)  # labels (if any) go to their own column and table, never into the request
        if other:
            # the caller opted in to judge as of another date than today: recorded with the stored request (outside
            # its hash, which stays the hash of the normalised request); /v1/decisions shows it as `other_date`
            row["request"] = row["request"][:-1] + ',"other_date":true}'
        return row

    # -- auth ---------------------------------------------------------------------------------------------------
    bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer dfft_...`")
    header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: dfft_...`")

    def require(scope: str):
        async def dep(
            cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer), token: Optional[str] = Depends(header)
        ) -> ApiKey:
            presented = cred.credentials if cred else token
            challenge = {"WWW-Authenticate": 'Bearer realm="dfft"'}
            if not presented:
                raise ProblemError(
                    401,
                    "Missing API key",
                    "send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                    "urn:dfft:problem:unauthenticated",
                    headers=challenge,
                )
            try:
                key = keys.verify(presented)
            except sa.exc.SQLAlchemyError as e:  # the key store is unreachable: an outage, not a bad key
                log.error("key lookup failed: %s", f"{type(e).__name__}: {e}"[:500])
                raise ProblemError(
                    503,
                    "Service unavailable: no verdict",
                    "the API keys cannot be checked now (service database unavailable); retry later",
                    "urn:dfft:problem:database-unavailable",
                    headers={"Retry-After": RETRY_AFTER},
                ) from None
            if key is None:
                raise ProblemError(
                    401,
                    "Invalid API key",
                    "the key is unknown, malformed or revoked",
                    "urn:dfft:problem:unauthenticated",
                    headers=challenge,
                )
            if not key.allows(scope):
                raise ProblemError(
                    403,
                    "Insufficient scope",
                    f"this endpoint needs a key with scope {scope!r}; this key has scope {key.scope!r}",
                    "urn:dfft:problem:forbidden",
                )
            return key

        return dep

    check_scope, admin_scope = require("check"), require("admin")
    auth_errors = _problems(401, 403)

    # -- probes -------------------------------------------------------------------------------------------------
    # Unauthenticated: they say whether to send traffic and nothing else (the bundle hash is on the authenticated
    # /v1/rulesets/current).
    @app.get(
        "/healthz",
        operation_id="getHealth",
        response_model=Health,
        response_model_exclude_none=True,
        tags=["probes"],
        summary="Liveness: the process answers",
    )
    async def healthz():
        return {"status": "ok"}

    @app.get(
        "/readyz",
        operation_id="getReadiness",
        response_model=Health,
        response_model_exclude_none=True,
        tags=["probes"],
        responses=_problems(503),
        summary="Readiness: rule set loaded, audit database reachable and writable, audit writer running",
    )
    def readyz():
        def not_ready(why: str) -> ProblemError:
            return ProblemError(
                503, "Not ready", why, "urn:dfft:problem:not-ready", headers={"Retry-After": RETRY_AFTER}
            )

        try:
            with db.connect() as c:
                c.execute(sa.text("SELECT 1"))
        except Exception:  # noqa: BLE001
            raise not_ready("the audit database is unreachable") from None
        if not audit.alive:
            raise not_ready("the audit writer is stopped")
        if audit.writable() is not None:  # a decision could not be audited, so every check would be refused
            raise not_ready("the audit database cannot be written (disk full, read-only, ...)")
        return {"status": "ready"}

    @app.get(
        "/metrics",
        tags=["probes"],
        operation_id="getMetrics",
        summary="Prometheus metrics: requests, latencies, verdicts, memo hit rate, audit queue, decision-log backlog",
        response_class=Response,
        responses={200: {"description": "Prometheus text exposition format", "content": {"text/plain": {}}}},
    )
    def get_metrics():
        from .metrics import CONTENT_TYPE

        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    # -- checks -------------------------------------------------------------------------------------------------
    @app.post(
        "/v1/check",
        response_model=CheckedDecision,
        tags=["checks"],
        operation_id="checkTransfer",
        responses={200: {"headers": DECISION_HEADERS}, **auth_errors, **_problems(413, 415, 422, 500, 503)},
        summary="Judge one transfer",
        response_description="The decision; its audit-log id is `decision_id` and the `Dfft-Decision-Id` header",
        openapi_extra=request_body(
            "CheckRequest",
            "A transfer request, with optional `labels` (caller context stored with the audit record; they never "
            "change the verdict)",
        ),
    )
    async def check(
        body: Any = Body(...),
        key: ApiKey = Depends(check_scope),
        allow_other_date: bool = Query(False, description=ALLOW_OTHER_DATE),
    ):
        labels, request = parse_check(body)
        today = utc_today()
        other = other_date(request, today)
        if other and not allow_other_date:
            raise ProblemError(
                422,
                "as_of is not today",
                OTHER_DATE.format(as_of=request.as_of, today=today),
                "urn:dfft:problem:as-of-not-today",
                errors=[
                    {
                        "field": "as_of",
                        "message": f"{request.as_of} is not today ({today}, UTC); pass "
                        "?allow_other_date=true to judge as of another date",
                    }
                ],
            )
        with rules.lease() as eng:
            j = rules.judge(eng, request, today)
        row = audited_row(j, key.id, other, labels=labels)
        await audit.commit([row])
        metrics.decisions.labels(j.decision.verdict, "check").inc()
        # the memoised decision is shared by equal requests; the id is this check's own (its audit row)
        return Response(
            f'{j.json[:-1]},"decision_id":"{row["id"]}"}}',
            media_type="application/json",
            headers={"Dfft-Decision-Id": row["id"], "Dfft-Ruleset-Hash": j.decision.ruleset.hash},
        )

    # -- the hot path of /v1/check (see DfftApp): the same checks and the same answer as the route above, with what
    # the middleware stack does for it (body limit, security headers, metrics, catch-all) done inline ------------------
    json_type = (b"content-type", b"application/json")
    checked = {v: metrics.decisions.labels(v, "check") for v in ("allowed", "conditional", "blocked")}
    check_latency = metrics.latency.labels("/v1/check", "POST")  # as MetricsMiddleware labels the route
    check_status: dict[int, Any] = {}
    stack = app.stack

    def responded(status: int, t0: float) -> None:
        check_latency.observe(time.perf_counter() - t0)
        counter = check_status.get(status)
        if counter is None:
            counter = check_status[status] = metrics.requests.labels("/v1/check", "POST", str(status))
        counter.inc()

    async def hot_check(scope: dict, receive: Any, send: Any) -> None:
        t0 = time.perf_counter()
        started = False

        async def send_checked(
            msg: MutableMapping[str, Any],
        ) -> None:  # SecurityHeaders, MetricsMiddleware, CatchAll's tracking
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
                msg = {**msg, "headers": [*msg.get("headers", ()), NOSNIFF, JSON_CSP_HEADER]}
                responded(msg["status"], t0)
            await send(msg)

        try:
            await fast_check(scope, receive, send, send_checked, t0)
        except Exception:  # noqa: BLE001 — as CatchAll: a 500 problem without a verdict, logged, never re-raised
            log.exception("unhandled error in POST /v1/check")
            if started:
                raise
            await internal_error()(scope, receive, send_checked)

    async def fast_check(scope: dict, receive: Any, raw_send: Any, send: Any, t0: float) -> None:
        limit = app.state.body_limits.get("/v1/check", settings.max_body)
        got = await read_body(receive, limit)
        if got is None:
            return
        body, more = got
        if len(body) > limit:  # the body limit of the stack answers (413), reading the rest as it does
            return await stack(scope, replaying(body, receive, more=more), raw_send)
        query = scope.get("query_string", b"")
        allow = query == b"allow_other_date=true"
        # as the route reads them: the first of each header; a Bearer token before X-API-Key
        auth = api_key = ctype = None
        for name, value in scope["headers"]:
            if name == b"authorization" and auth is None:
                auth = value
            elif name == b"x-api-key" and api_key is None:
                api_key = value
            elif name == b"content-type" and ctype is None:
                ctype = value
        token = None
        if auth is not None:
            scheme, _, cred = auth.partition(b" ")
            if scheme.lower() == b"bearer" and cred:
                token = cred.decode("latin-1")
        if token is None and api_key:
            token = api_key.decode("latin-1")
        mime = ctype.split(b";")[0].strip().lower() if ctype is not None else b"application/json"
        json_body = mime == b"application/json" or (mime.startswith(b"application/") and mime.endswith(b"+json"))
        key = None
        if token and (query == b"" or allow) and json_body:
            try:
                key = keys.verify(token)
            except Exception:  # noqa: BLE001 — the full route answers (503 when the key store is down)
                key = None
        if key is None or not key.allows("check"):
            return await stack(scope, replaying(body, receive), raw_send)
        today = utc_today()
        with rules.lease() as eng:
            try:
                labels, request, j, head = rules.judge_body(eng, body, today)
            except Exception:  # noqa: BLE001 — invalid JSON or request, engine error: answered by the full route
                return await stack(scope, replaying(body, receive), raw_send)
        other = other_date(request, today)
        if other and not allow:
            return await stack(scope, replaying(body, receive), raw_send)
        row = audited_row(j, key.id, other, labels=labels)
        try:
            await audit.commit([row])
        except AuditUnavailable as e:
            log.error("audit log unavailable: %s", e)
            return await audit_unavailable()(scope, receive, send)
        checked[j.decision.verdict].inc()
        ident = row["id"].encode()
        out = b"".join((head, ident, b'"}'))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(out)).encode()),
                    json_type,
                    (b"dfft-decision-id", ident),
                    (b"dfft-ruleset-hash", j.decision.ruleset.hash.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": out})

    app.hot = hot_check

    @app.post(
        "/v1/check/batch",
        response_model=BatchResponse,
        tags=["checks"],
        operation_id="checkTransferBatch",
        responses={**auth_errors, **_problems(413, 415, 422, 500, 503)},
        openapi_extra=request_body(
            "BatchRequest", "`requests`: transfer requests, each with optional `labels`; judged in order"
        ),
        summary=f"Judge up to {settings.max_batch:,} transfers; results in order, one audit transaction",
        description="Requests that cannot be judged (unknown country code, category, an `as_of` other than "
        "today without `allow_other_date`, ...) get a problem in their result; the others a "
        "decision. All are judged by the same rule bundle (a reload during the batch does not "
        "affect it). Every decision is committed to the audit log, in one transaction, before the "
        "response starts; a large response is streamed.",
    )
    def check_batch(
        body: Any = Body(...),
        key: ApiKey = Depends(check_scope),
        allow_other_date: bool = Query(False, description=ALLOW_OTHER_DATE),
    ):
        labels, requests = parse_batch(body, settings.max_batch)
        today = utc_today()
        eng = rules.acquire()  # one bundle for the whole batch, even if a reload swaps engines meanwhile
        streaming = False
        try:
            batch_id, now = new_id(), datetime.now(UTC)
            rows: list[dict[str, Any]] = []
            # each result: its JSON, or (index, row) for a decision judged again while streaming (beyond the buffer)
            parts: list[Any] = []
            kept = 0
            summary = {"allowed": 0, "conditional": 0, "blocked": 0, "invalid": 0}
            for i, req in enumerate(requests):
                other = other_date(req, today)
                try:
                    if other and not allow_other_date:
                        raise RequestError(
                            [{"field": "as_of", "message": OTHER_DATE.format(as_of=req.as_of, today=today)}]
                        )
                    j = rules.judge(eng, req, today)
                except RequestError as e:
                    summary["invalid"] += 1
                    err = {
                        "type": "urn:dfft:problem:invalid-request",
                        "title": "Invalid transfer request",
                        "status": 422,
                        "detail": str(e),
                        "errors": e.errors,
                    }
                    parts.append(f'{{"index":{i},"error":{json.dumps(err)}}}')
                    continue
                row = audited_row(j, key.id, other, batch_id=batch_id, now=now, labels=labels[i])
                rows.append(row)
                summary[j.decision.verdict] += 1
                if kept + len(j.json) <= settings.batch_buffer:
                    kept += len(j.json)
                    parts.append(f'{{"index":{i},"decision_id":"{row["id"]}","decision":{j.json}}}')
                else:
                    parts.append((i, row))
            # the audit guarantee: every decision of the batch is committed (one transaction) before any is sent
            if rows:
                audit.record(rows)
                for verdict in ("allowed", "conditional", "blocked"):
                    if summary[verdict]:
                        metrics.decisions.labels(verdict, "batch").inc(summary[verdict])
            head = json.dumps(
                {"batch_id": batch_id, "ruleset": eng.ref.model_dump(), "count": len(parts), "summary": summary}
            )
            headers = {"Dfft-Batch-Id": batch_id, "Dfft-Ruleset-Hash": eng.hash}
            if all(type(p) is str for p in parts):
                return Response(
                    head[:-1] + ',"results":[' + ",".join(parts) + "]}", media_type="application/json", headers=headers
                )
            streaming = True
            released = threading.Event()

            def release() -> None:
                if not released.is_set():
                    released.set()
                    eng.release()

            gen = stream_batch(eng, head, parts, requests, today, release)
            weakref.finalize(gen, release)  # a stream never started (client gone) releases its lease too
            return StreamingResponse(gen, media_type="application/json", headers=headers)
        finally:
            if not streaming:
                eng.release()

    def stream_batch(
        eng: Engine, head: str, parts: list[Any], requests: list[TransferRequest], today: date, release: Any
    ) -> Iterator[str]:
        """The batch document, in chunks of ~64 KB. Decisions beyond the buffer are judged again with the same
        engine and date (a decision is a pure function of them) and must match their committed audit row; if one
        does not (it cannot, short of a bug), the stream is cut off, so the client gets an invalid document rather
        than an unrecorded decision."""
        try:
            buf = [head[:-1] + ',"results":[']
            size = 0
            for n, p in enumerate(parts):
                if n:
                    buf.append(",")
                if type(p) is not str:
                    i, row = p
                    j = rules.judge(eng, requests[i], today)
                    if (
                        j.request_hash != row["request_hash"]
                        or j.decision.verdict != row["verdict"]
                        or j.rule_ids != row["rule_ids"]
                    ):
                        log.error(
                            "batch %s: decision %s differs from its audit row; response cut off",
                            row["batch_id"],
                            row["id"],
                        )
                        raise EngineError("a streamed decision differs from its audit row")
                    p = f'{{"index":{i},"decision_id":"{row["id"]}","decision":{j.json}}}'
                buf.append(p)
                size += len(p)
                if size >= 65536:
                    yield "".join(buf)
                    buf, size = [], 0
            buf.append("]}")
            yield "".join(buf)
        finally:
            release()

    # -- rule sets ----------------------------------------------------------------------------------------------
    def jurisdiction(code: str) -> Jurisdiction:
        rs = rules.engine.ruleset
        j = rs.jurisdictions.get(code.upper())
        if j is None:
            covered = sorted(rs.jurisdictions)
            raise ProblemError(
                404,
                "Unknown jurisdiction",
                f"no rule set for {code!r}; covered jurisdictions: {', '.join(covered)}",
                "urn:dfft:problem:unknown-jurisdiction",
                valid=covered,
            )
        return j

    @app.get(
        "/v1/jurisdictions",
        operation_id="listJurisdictions",
        response_model=list[JurisdictionSummary],
        tags=["rule sets"],
        responses=auth_errors,
        summary="Covered jurisdictions with rule counts per domain",
    )
    async def jurisdictions(key: ApiKey = Depends(check_scope)):
        rs = rules.engine.ruleset
        return [
            JurisdictionSummary(
                code=c,
                name=j.name,
                laws=sorted(j.laws),
                rules={d: len(j.rules_in(d)) for d in ("data_protection", "localisation", "ip")},
                low_confidence=sum(1 for r in j.rules if r.confidence == "low"),
            )
            for c, j in sorted(rs.jurisdictions.items())
        ]

    @app.get(
        "/v1/jurisdictions/{code}/rules",
        operation_id="getJurisdictionRules",
        response_model=Jurisdiction,
        tags=["rule sets"],
        responses={**auth_errors, **_problems(404)},
        summary="A jurisdiction's laws, lists and rules",
    )
    async def jurisdiction_rules(
        code: str = PathParam(max_length=8, examples=["JP"]), key: ApiKey = Depends(check_scope)
    ):
        j = jurisdiction(code)
        return Response(j.model_dump_json(by_alias=True), media_type="application/json")

    @app.get(
        "/v1/rulesets/current",
        operation_id="getCurrentRuleset",
        response_model=RulesetInfo,
        tags=["rule sets"],
        responses=auth_errors,
        summary="The rule bundle serving now: version, content hash, time loaded, published bundle id",
    )
    async def ruleset_current(key: ApiKey = Depends(check_scope)):
        return rules.info().model_copy(update={"distribution": bundles.info()})

    @app.get(
        "/v1/vocabulary",
        response_model=Vocabulary,
        tags=["rule sets"],
        operation_id="getVocabulary",
        responses=auth_errors,
        summary="The values a request may use: data categories, safeguards, purposes, sectors, exporter kinds",
    )
    async def vocabulary(key: ApiKey = Depends(check_scope)):
        return vocabulary_of(rules.engine.ruleset.vocabulary)

    @app.post(
        "/v1/rulesets/reload",
        operation_id="reloadRuleset",
        response_model=ReloadResult,
        tags=["rule sets"],
        responses={**auth_errors, **_problems(422)},
        summary="Reload the rule bundle from its directory (admin); a bundle that fails is refused",
    )
    def ruleset_reload(key: ApiKey = Depends(admin_scope)):
        try:
            result = rules.reload()
        except (RuleSetError, CompileError) as e:
            raise refused(e, rules.engine.ref) from e
        signal_worker_group(settings.worker_group)
        return result

    # -- audit log ----------------------------------------------------------------------------------------------
    def filters(
        verdict: Optional[str] = Query(None, pattern="^(allowed|conditional|blocked)$"),
        origin: Optional[str] = Query(None, max_length=8),
        destination: Optional[str] = Query(None, max_length=8),
        caller: Optional[str] = Query(None, max_length=64),
        request_hash: Optional[str] = Query(None, max_length=64),
        ruleset_hash: Optional[str] = Query(None, max_length=64),
        batch_id: Optional[str] = Query(None, max_length=32),
        since: Optional[datetime] = Query(None, description="inclusive, ISO 8601 (UTC if no offset)"),
        until: Optional[datetime] = Query(None, description="exclusive, ISO 8601 (UTC if no offset)"),
        after: Optional[int] = Query(None, ge=0, le=2**62, description="seq cursor: entries after this one"),
        label: Optional[list[str]] = Query(
            None,
            max_length=MAX_LABELS,
            description="`key:value`: only decisions whose request carried this label (repeat: all of them)",
            examples=["job:etl-7"],
        ),
    ) -> dict[str, Any]:
        wanted: list[tuple[str, str]] = []
        for i, text in enumerate(label or []):
            try:
                wanted.append(label_filter(text))
            except ValueError as e:
                raise RequestValidationError(
                    [{"loc": ("query", "label", i), "msg": str(e), "type": "value_error"}]
                ) from None
        f: dict[str, Any] = dict(
            verdict=verdict,
            origin=origin.upper() if origin else None,
            destination=destination.upper() if destination else None,
            caller=caller,
            request_hash=request_hash,
            ruleset_hash=ruleset_hash,
            batch_id=batch_id,
            after=after,
            labels=wanted or None,
        )
        for name, t in (("since", since), ("until", until)):
            if t is not None:
                t = as_utc(t)
                f[name] = t.replace(tzinfo=None) if db.dialect.name == "sqlite" else t
        return f

    @app.get(
        "/v1/decisions",
        operation_id="listDecisions",
        response_model=DecisionPage,
        tags=["audit"],
        responses=auth_errors,
        summary="Query the audit log (admin), oldest first, keyset-paginated",
    )
    def decisions(
        f: dict = Depends(filters), limit: int = Query(100, ge=1, le=1000), key: ApiKey = Depends(admin_scope)
    ):
        items = audit.query(f, limit)
        return Response(
            json.dumps({"items": items, "next_after": items[-1]["seq"] if len(items) == limit else None}),
            media_type="application/json",
        )

    @app.get(
        "/v1/decisions/export",
        operation_id="exportDecisions",
        tags=["audit"],
        summary="Export the audit log as JSON Lines (admin)",
        responses={
            **auth_errors,
            200: {"description": "one DecisionRecord per line", "content": {JSONL: {"schema": {"type": "string"}}}},
        },
    )
    def decisions_export(f: dict = Depends(filters), key: ApiKey = Depends(admin_scope)):
        def lines():
            for r in audit.export(f):
                yield json.dumps(r) + "\n"

        return StreamingResponse(
            lines(), media_type=JSONL, headers={"Content-Disposition": 'attachment; filename="dfft-decisions.jsonl"'}
        )

    # -- what-if analyses (hypothetical: not written to the audit log) --------------------------------------------
    from .whatif import create_router

    async def whatif_key(request: Request, key: ApiKey = Depends(check_scope)) -> ApiKey:
        request.state.api_key = key  # the router bounds distinct scenarios per key
        return key

    whatif = create_router(
        lambda: rules.engine.ruleset,
        dependencies=[Depends(whatif_key)],
        max_engines=settings.whatif_engines,
        scenarios_per_minute=settings.whatif_scenarios_per_minute,
    )
    app.state.whatif = whatif.state  # its engine pool and scenario limiter (for probes, tests and benches)
    app.include_router(whatif, responses={**auth_errors, **_problems(413, 422, 429, 500)})

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = contract(default_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory dfft.api.app:app_from_env` (settings from DFFT_* environment variables)."""
    return create_app(Settings())
