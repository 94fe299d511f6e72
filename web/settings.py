"""Settings of the web workbench, from DFFT_WEB_* environment variables (documented in docs/web.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

SESSION_HOURS = 8.0  # a session ends this long after sign-in, whatever the activity
MAX_UPLOAD = 5 * 1024 * 1024  # bytes of one uploaded inventory or scenario file
MAX_ROWS = 5_000  # transfers in one inventory


def _list(v: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in v.split(",") if x.strip())


@dataclass
class WebSettings:
    # session lifetime in hours (absolute, from sign-in)
    session_hours: float = field(default_factory=lambda: float(os.environ.get("DFFT_WEB_SESSION_HOURS", SESSION_HOURS)))
    # Secure flag on the session cookie: auto (when the request came over HTTPS, directly or as X-Forwarded-Proto
    # from a trusted proxy), always, never
    cookie_secure: str = field(default_factory=lambda: os.environ.get("DFFT_WEB_COOKIE_SECURE", "auto").lower())
    # single sign-on behind a reverse proxy: the header carrying the authenticated user name (e.g. X-Forwarded-User);
    # empty (default): off. Only requests from trusted_proxies are believed; the user must have a local account
    # (its role applies).
    trusted_user_header: str = field(default_factory=lambda: os.environ.get("DFFT_WEB_TRUSTED_USER_HEADER", ""))
    trusted_proxies: tuple[str, ...] = field(
        default_factory=lambda: _list(os.environ.get("DFFT_WEB_TRUSTED_PROXIES", "127.0.0.1,::1"))
    )
    max_upload: int = field(default_factory=lambda: int(os.environ.get("DFFT_WEB_MAX_UPLOAD", MAX_UPLOAD)))
    max_rows: int = field(default_factory=lambda: int(os.environ.get("DFFT_WEB_MAX_ROWS", MAX_ROWS)))
