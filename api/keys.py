"""API keys: `dfft_<id>_<secret>`. Only the SHA-256 of the secret is stored (the secret is 256 random bits, so a
plain hash is enough: there is nothing to brute-force). Scopes: `check` (judge transfers, browse rule sets) and
`admin` (also reload rule sets and read the audit log)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Optional

import sqlalchemy as sa

from .db import api_keys

SCOPES = ("check", "admin")
PREFIX = "dfft_"
# A verified key is trusted for this long by each process (instance or `dfft serve --workers` worker) before it is
# looked up again: the bound on how long a revoked key keeps working anywhere. DFFT_KEY_CACHE_SECONDS overrides it.
CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scope: str
    created_at: datetime
    revoked_at: Optional[datetime] = None

    def allows(self, scope: str) -> bool:
        return self.scope == "admin" or self.scope == scope


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(token: str) -> Optional[tuple[str, str]]:
    if not token.startswith(PREFIX):
        return None
    rest = token[len(PREFIX) :]
    key_id, sep, secret = rest.partition("_")
    if not sep or len(key_id) != 12 or not secret:
        return None
    return key_id, secret


class KeyStore:
    def __init__(self, db: sa.Engine, cache_seconds: float = CACHE_SECONDS):
        self.db = db
        self.cache_seconds = max(0.0, cache_seconds)
        self._cache: dict[str, tuple[float, Optional[tuple[str, ApiKey]]]] = {}
        self._lock = threading.Lock()

    def create(self, scope: str, name: str = "") -> tuple[str, ApiKey]:
        """Create a key; returns the token (shown once, never stored) and its record."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        key = ApiKey(id=key_id, name=name or f"{scope} key", scope=scope, created_at=now)
        with self.db.begin() as c:
            c.execute(
                api_keys.insert().values(
                    id=key_id, name=key.name, scope=scope, secret_hash=_hash(secret), created_at=now
                )
            )
        return f"{PREFIX}{key_id}_{secret}", key

    def list(self) -> list[ApiKey]:
        with self.db.connect() as c:
            rows = c.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).mappings().all()
        return [
            ApiKey(id=r["id"], name=r["name"], scope=r["scope"], created_at=r["created_at"], revoked_at=r["revoked_at"])
            for r in rows
        ]

    def revoke(self, key_id: str) -> bool:
        with self.db.begin() as c:
            n = c.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            ).rowcount
        with self._lock:
            self._cache.pop(key_id, None)
        return n > 0

    def _lookup(self, key_id: str) -> Optional[tuple[str, ApiKey]]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
            if hit and now - hit[0] < self.cache_seconds:
                return hit[1]
        with self.db.connect() as c:
            r = c.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        val = None
        if r is not None and r["revoked_at"] is None:
            val = (r["secret_hash"], ApiKey(id=r["id"], name=r["name"], scope=r["scope"], created_at=r["created_at"]))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_id] = (now, val)
        return val

    def verify(self, token: str) -> Optional[ApiKey]:
        """The key for a presented token, or None (unknown, malformed, wrong secret or revoked)."""
        parsed = parse(token.strip())
        if parsed is None:
            return None
        key_id, secret = parsed
        found = self._lookup(key_id)
        if found is None:
            return None
        stored, key = found
        return key if hmac.compare_digest(stored, _hash(secret)) else None
