"""Local accounts, sessions and the workbench's audit trail, in the service database.

Passwords are hashed with scrypt (hashlib; N=2^15, r=8, p=1, 16-byte salt), compared in constant time; a sign-in for
an unknown user spends the same work on a dummy hash. Session tokens are 32 random bytes; only their SHA-256 is
stored, with the session's CSRF token and its expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

import sqlalchemy as sa

from ..api.db import web_events, web_sessions, web_users

ROLES = ("viewer", "analyst", "admin")
RANK = {r: i for i, r in enumerate(ROLES)}
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
SCRYPT = {"n": 2**15, "r": 8, "p": 1}


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def hash_password(password: str, *, salt: Optional[bytes] = None) -> str:
    salt = salt or secrets.token_bytes(16)
    n, r, p = SCRYPT["n"], SCRYPT["r"], SCRYPT["p"]
    dk = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(dk)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        alg, n, r, p, salt, dk = stored.split("$")
        if alg != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
            dklen=len(base64.b64decode(dk)),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(dk))


_DUMMY = hash_password("dfft-dummy-password", salt=b"\0" * 16)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    username: str
    role: str

    def can(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


class AccountError(ValueError):
    pass


def check_username(username: str) -> str:
    if not USERNAME.match(username or ""):
        raise AccountError(
            "user names are 1-64 characters: letters, digits and . _ @ - (starting with a letter or digit)"
        )
    return username


def check_password(password: str) -> str:
    if not (MIN_PASSWORD <= len(password or "") <= MAX_PASSWORD):
        raise AccountError(f"passwords are {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    return password


class Accounts:
    def __init__(self, db: sa.Engine, session_seconds: float = 8 * 3600):
        self.db = db
        self.session_seconds = session_seconds

    # -- users ----------------------------------------------------------------------------------------------------
    def add_user(self, username: str, password: str, role: str) -> User:
        check_username(username)
        check_password(password)
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
        with self.db.begin() as c:
            if c.execute(sa.select(web_users.c.id).where(web_users.c.username == username)).first():
                raise AccountError(f"a user {username!r} already exists")
            c.execute(
                web_users.insert().values(
                    username=username, password_hash=hash_password(password), role=role, created_at=datetime.now(UTC)
                )
            )
        return User(username, role)

    def set_role(self, username: str, role: str) -> None:
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
        with self.db.begin() as c:
            n = c.execute(web_users.update().where(web_users.c.username == username).values(role=role)).rowcount
        if not n:
            raise AccountError(f"no user {username!r}")

    def set_password(self, username: str, password: str) -> None:
        check_password(password)
        with self.db.begin() as c:
            n = c.execute(
                web_users.update().where(web_users.c.username == username).values(password_hash=hash_password(password))
            ).rowcount
            c.execute(web_sessions.delete().where(web_sessions.c.username == username))
        if not n:
            raise AccountError(f"no user {username!r}")

    def disable(self, username: str) -> None:
        with self.db.begin() as c:
            n = c.execute(
                web_users.update().where(web_users.c.username == username).values(disabled_at=datetime.now(UTC))
            ).rowcount
            c.execute(web_sessions.delete().where(web_sessions.c.username == username))
        if not n:
            raise AccountError(f"no user {username!r}")

    def users(self) -> list[dict[str, Any]]:
        with self.db.connect() as c:
            rows = c.execute(sa.select(web_users).order_by(web_users.c.username)).mappings().all()
        return [
            {
                "username": r["username"],
                "role": r["role"],
                "created_at": r["created_at"],
                "disabled": bool(r["disabled_at"]),
            }
            for r in rows
        ]

    def get(self, username: str) -> Optional[User]:
        with self.db.connect() as c:
            r = c.execute(
                sa.select(web_users.c.username, web_users.c.role).where(
                    web_users.c.username == username, web_users.c.disabled_at.is_(None)
                )
            ).first()
        return User(r[0], r[1]) if r else None

    def authenticate(self, username: str, password: str) -> Optional[User]:
        if not username or not password or len(password) > MAX_PASSWORD or len(username) > 64:
            return None
        with self.db.connect() as c:
            r = c.execute(
                sa.select(web_users.c.username, web_users.c.role, web_users.c.password_hash).where(
                    web_users.c.username == username, web_users.c.disabled_at.is_(None)
                )
            ).first()
        if r is None:
            verify_password(password, _DUMMY)  # the same work as for a known user
            return None
        return User(r[0], r[1]) if verify_password(password, r[2]) else None

    # -- sessions -------------------------------------------------------------------------------------------------
    def new_session(self, username: str) -> tuple[str, str]:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.db.begin() as c:
            c.execute(web_sessions.delete().where(web_sessions.c.expires_at < now))
            c.execute(
                web_sessions.insert().values(
                    token_hash=token_hash(token),
                    username=username,
                    csrf=csrf,
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.session_seconds),
                )
            )
        return token, csrf

    def session(self, token: str) -> Optional[tuple[User, str]]:
        """The user and CSRF token of a live session; None for an unknown, expired or disabled one."""
        if not token or len(token) > 128:
            return None
        with self.db.connect() as c:
            r = c.execute(
                sa.select(web_sessions.c.username, web_sessions.c.csrf, web_sessions.c.expires_at).where(
                    web_sessions.c.token_hash == token_hash(token)
                )
            ).first()
        if r is None:
            return None
        expires = r[2] if r[2].tzinfo else r[2].replace(tzinfo=UTC)
        if expires <= datetime.now(UTC):
            self.end_session(token)
            return None
        user = self.get(r[0])
        return (user, r[1]) if user else None

    def end_session(self, token: str) -> None:
        with self.db.begin() as c:
            c.execute(web_sessions.delete().where(web_sessions.c.token_hash == token_hash(token)))

    # -- audit trail ----------------------------------------------------------------------------------------------
    def record(self, username: str, action: str, detail: Any = None) -> None:
        with self.db.begin() as c:
            c.execute(
                web_events.insert().values(
                    at=datetime.now(UTC),
                    username=username[:64],
                    action=action[:64],
                    detail=json.dumps(detail if detail is not None else {}, ensure_ascii=False, default=str)[:20_000],
                )
            )

    def events(self, limit: int = 200) -> list[dict[str, Any]]:
        with self.db.connect() as c:
            rows = c.execute(sa.select(web_events).order_by(web_events.c.seq.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in rows]
