"""Service settings: command-line options override environment variables, which override the embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

MAX_BATCH = 10_000  # requests per POST /v1/check/batch
MAX_BODY = 64 * 1024  # bytes, every endpoint but the batch
MAX_BATCH_BODY = 16 * 1024 * 1024  # bytes, POST /v1/check/batch (10,000 requests of ~1.5 KB)
WHATIF_ENGINES = 16  # compiled what-if engines kept
WHATIF_SCENARIOS_PER_MINUTE = 30  # distinct law-changing what-if scenarios per API key and minute
KEY_CACHE_SECONDS = 1.0  # see api/keys.py
BATCH_BUFFER = 8 * 1024 * 1024  # bytes of decisions a batch response holds in memory; larger ones are streamed


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name}: expected a number of seconds, got {str(raw)[:50]!r}") from None


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("DFFT_DATA_DIR", "./data")))
    database_url: Optional[str] = field(default_factory=lambda: os.environ.get("DFFT_DATABASE_URL") or None)
    rules_dir: Optional[Path] = field(
        default_factory=lambda: Path(os.environ["DFFT_RULES"]) if os.environ.get("DFFT_RULES") else None
    )
    # /readyz trusts the audit database's last successful write for this many seconds, then probes it with a write
    ready_probe_interval: float = field(default_factory=lambda: float(os.environ.get("DFFT_READY_PROBE_SECONDS", 10)))
    max_batch: int = field(default_factory=lambda: int(os.environ.get("DFFT_MAX_BATCH", MAX_BATCH)))
    max_body: int = field(default_factory=lambda: int(os.environ.get("DFFT_MAX_BODY", MAX_BODY)))
    max_batch_body: int = field(default_factory=lambda: int(os.environ.get("DFFT_MAX_BATCH_BODY", MAX_BATCH_BODY)))
    # what-if: compiled engines kept (evicted ones are freed when idle) and distinct law-changing scenarios one API
    # key may send per minute (0: unlimited)
    whatif_engines: int = field(default_factory=lambda: int(os.environ.get("DFFT_WHATIF_ENGINES", WHATIF_ENGINES)))
    whatif_scenarios_per_minute: int = field(
        default_factory=lambda: int(os.environ.get("DFFT_WHATIF_SCENARIOS_PER_MINUTE", WHATIF_SCENARIOS_PER_MINUTE))
    )
    # how long each process trusts a verified API key before looking it up again: the bound on how long a revoked key
    # keeps working on any instance or worker (api/keys.py)
    key_cache_seconds: float = field(
        default_factory=lambda: float(os.environ.get("DFFT_KEY_CACHE_SECONDS", KEY_CACHE_SECONDS))
    )
    # set by `dfft serve --workers N` in its workers: the supervisor's pid, signalled (SIGHUP) by a reload through the
    # admin endpoint so that every worker reloads
    worker_group: Optional[int] = None
    # a batch response larger than this (bytes of decisions) is streamed, its decisions re-read from the engine
    batch_buffer: int = field(default_factory=lambda: int(os.environ.get("DFFT_BATCH_BUFFER", BATCH_BUFFER)))

    @property
    def url(self) -> str:
        """The audit database: DFFT_DATABASE_URL (e.g. postgresql+psycopg://...) or SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(Path(self.data_dir) / 'dfft.db').resolve()}"

    # Decision-log sink (api/sink.py): push audit records to this URL in batches (off when unset)
    decision_log_url: Optional[str] = field(default_factory=lambda: os.environ.get("DFFT_DECISION_LOG_URL") or None)
    decision_log_token: Optional[str] = field(default_factory=lambda: os.environ.get("DFFT_DECISION_LOG_TOKEN") or None)
    decision_log_batch: int = field(default_factory=lambda: int(os.environ.get("DFFT_DECISION_LOG_BATCH", 500)))
    decision_log_interval: float = field(default_factory=lambda: float(os.environ.get("DFFT_DECISION_LOG_INTERVAL", 5)))
    decision_log_max_backoff: float = field(
        default_factory=lambda: float(os.environ.get("DFFT_DECISION_LOG_MAX_BACKOFF", 60))
    )
    decision_log_name: str = field(default_factory=lambda: os.environ.get("DFFT_DECISION_LOG_NAME", "default"))
    # Rule-bundle distribution (api/distribution.py): seconds between polls of the active published bundle (0: off;
    # otherwise 0.5 to 300); every instance serves a newly activated bundle within this time plus its load time
    bundle_poll_seconds: float = field(default_factory=lambda: _seconds("DFFT_BUNDLE_POLL_SECONDS", 5.0))
    # set by `dfft serve` (DFFT_AUDIT_WRITER=process, the default): the unix socket of the audit writer process that
    # commits the rows of every worker (api/writer.py); None: this process writes its own rows (a writer thread)
    audit_writer: Optional[str] = None
