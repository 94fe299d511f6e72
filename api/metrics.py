"""Prometheus metrics (the standard client library, prometheus_client), served at GET /metrics.

One registry per app (tests run several apps in one process). Counted as they happen: HTTP requests by route
template, method and status, and their latency; decisions by verdict and endpoint. Read at scrape time: the memo's
hits and misses (the cache hit rate is hits / (hits + misses)), decisions waiting for their audit commit (the audit
queue), and the decision-log sink's backlog.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Optional

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "dfft_http_requests",
            "HTTP requests answered, by route template, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dfft_http_request_duration_seconds",
            "Time to answer an HTTP request (until the response has started), by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "dfft_decisions",
            "Decisions returned (each committed to the audit log), by verdict and endpoint",
            ["verdict", "endpoint"],
            registry=self.registry,
        )
        self._readers: list[Callable[[], Any]] = []

    def watch(self, collect: Callable[[], Any]) -> None:
        """Add a function yielding metric families at scrape time."""
        self._readers.append(collect)
        if len(self._readers) == 1:
            self.registry.register(_Scrape(self._readers))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Scrape:
    def __init__(self, readers: list[Callable[[], Any]]):
        self.readers = readers

    def collect(self) -> Any:
        for read in self.readers:
            yield from read()

    def describe(self) -> list:
        return []


def memo_families(rules: Any) -> Any:
    hits = CounterMetricFamily(
        "dfft_memo_lookups", "Decision memo lookups by result (hit rate: hit / all)", labels=["result"]
    )
    hits.add_metric(["hit"], rules.memo_hits)
    hits.add_metric(["miss"], rules.memo_misses)
    yield hits
    yield GaugeMetricFamily("dfft_memo_entries", "Decisions held in the memo", value=rules.memo_entries)


def audit_families(audit: Any) -> Any:
    yield GaugeMetricFamily(
        "dfft_audit_queue_depth", "Decisions waiting for their audit-log commit (rows queued)", value=audit.queued()
    )
    yield CounterMetricFamily("dfft_audit_transactions", "Audit-log transactions committed", value=audit.transactions)


def sink_families(sink: Optional[Any]) -> Any:
    if sink is None:
        return
    yield GaugeMetricFamily(
        "dfft_decision_log_pending",
        "Audit records not yet acknowledged by the decision-log endpoint",
        value=sink.pending,
    )
    yield CounterMetricFamily("dfft_decision_log_sent", "Audit records acknowledged by the endpoint", value=sink.sent)
    yield CounterMetricFamily("dfft_decision_log_failures", "Failed pushes (retried with backoff)", value=sink.failures)


class MetricsMiddleware:
    """Pure ASGI: counts and times every HTTP response by route template (never the raw path: bounded labels)."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app, self.metrics = app, metrics
        # the labelled children, looked up once per (route, method[, status]): labels() takes a lock and builds a key
        self._latency: dict[tuple[str, str], Any] = {}
        self._requests: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 500

        async def timed(msg: dict) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
                route = scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                method = scope["method"]
                lat = self._latency.get((path, method))
                if lat is None:
                    lat = self._latency[(path, method)] = self.metrics.latency.labels(path, method)
                lat.observe(time.perf_counter() - t0)
                req = self._requests.get((path, method, status))
                if req is None:
                    req = self._requests[(path, method, status)] = self.metrics.requests.labels(
                        path, method, str(status)
                    )
                req.inc()
            await send(msg)

        await self.app(scope, receive, timed)
