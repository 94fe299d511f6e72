"""Rule-bundle distribution for several `dfft serve` instances on one database, like OPA's bundle service.

    dfft rules publish [DIR]        validate DIR (the loader's checks, its manifest, a compile), store it, activate it
    dfft rules published            list the stored bundles, the active one marked
    dfft rules publish --activate N make stored bundle N the active one again (a roll-back)

A published bundle is stored once in `rule_bundles` (its files, its manifest, its version, the rule-set hash that
decisions carry, the SHA-256 of its files, who published it and when); `rule_bundle_active` names the one bundle the
fleet serves. Every instance runs a BundleFollower: it reads the active id every DFFT_BUNDLE_POLL_SECONDS (default
5; 0.5 to 300, 0 turns following off) and, when it changed, unpacks that bundle into a private temporary directory
and reloads from it exactly as a SIGHUP or POST /v1/rulesets/reload does (the loader's checks with the manifest, the
same-version successor check, a compile): on success the engine is swapped, on failure the bundle is refused, the
last good bundle keeps serving, the refusal is logged and shown in GET /v1/rulesets/current (`distribution.refused`)
and /metrics (`dfft_bundle_refusals`, `dfft_bundle_converged`). A refused bundle is not tried again until another
bundle is activated (bundles are immutable, so it would be refused again). At start an instance converges once
before it serves, so it never judges with its local bundle while the database names another (unless that one is
refused: then it serves its local bundle and says so).
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Optional

import sqlalchemy as sa
import yaml

from ..rules import RuleSet, RuleSetError, load_ruleset
from ..rules.loader import MAX_FILE_BYTES, MAX_FILES, Problem
from .db import rule_bundle_active, rule_bundles
from .models import BundleDistribution

log = logging.getLogger("dfft.api.distribution")

POLL_SECONDS = 5.0  # default of DFFT_BUNDLE_POLL_SECONDS: every instance serves the active bundle within this (+ load)
POLL_MIN, POLL_MAX = 0.5, 300.0
MAX_BUNDLE_BYTES = 64 * 1024 * 1024  # the files of one bundle, uncompressed
SLOT = "default"
FORMAT = 1
_REL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,99})?$")


def poll_seconds(value: Any) -> float:
    """DFFT_BUNDLE_POLL_SECONDS, checked: 0 (off) or POLL_MIN..POLL_MAX seconds; anything else is a ValueError."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"DFFT_BUNDLE_POLL_SECONDS: expected a number of seconds, got {value!r}") from None
    if v != 0 and not POLL_MIN <= v <= POLL_MAX:
        raise ValueError(
            f"DFFT_BUNDLE_POLL_SECONDS: expected 0 (off) or {POLL_MIN} to {POLL_MAX:g} seconds, got {value!r}"
        )
    return v


def default_publisher() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 — no user name in this environment
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"[:128]


def _refuse(where: str, message: str) -> RuleSetError:
    return RuleSetError([Problem(where, None, None, message)])


# -- packing ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Packed:
    """A bundle's files as stored: `payload` is canonical JSON {"format": 1, "files": {path: base64}}, `archive` its
    gzip, `content_sha256` the SHA-256 of the payload."""

    files: dict[str, bytes]
    manifest: dict[str, Any]
    version: str
    payload: bytes
    archive: bytes
    content_sha256: str

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())


def _read(path: Path) -> bytes:
    """A regular file of at most MAX_FILE_BYTES (never a FIFO or device; links are not followed)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _refuse(str(path), "not a regular file")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise _refuse(str(path), f"more than {MAX_FILE_BYTES} bytes")
    return data


def pack_files(files: dict[str, bytes]) -> Packed:
    if len(files) > MAX_FILES:
        raise _refuse("bundle", f"more than {MAX_FILES} files")
    size = sum(len(b) for b in files.values())
    if size > MAX_BUNDLE_BYTES:
        raise _refuse("bundle", f"{size:,} bytes of files; a published bundle may have at most {MAX_BUNDLE_BYTES:,}")
    for rel in files:
        if not _REL.match(rel) or ".." in rel.split("/"):
            raise _refuse(rel, "not a bundle file path (FILE or CODE/FILE)")
    if "bundle.yaml" not in files:
        raise _refuse("bundle.yaml", "missing: the bundle needs a version and a manifest")
    bundle = yaml.safe_load(files["bundle.yaml"].decode("utf-8"))
    if not isinstance(bundle, dict) or not isinstance(bundle.get("manifest"), dict):
        raise _refuse("bundle.yaml", "no manifest: run `dfft rules manifest DIR` first")
    payload = json.dumps(
        {"format": FORMAT, "files": {k: base64.b64encode(v).decode("ascii") for k, v in sorted(files.items())}},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(payload)
    return Packed(
        files=dict(files),
        manifest=bundle["manifest"],
        version=str(bundle.get("version")),
        payload=payload,
        archive=buf.getvalue(),
        content_sha256=hashlib.sha256(payload).hexdigest(),
    )


def pack(root: Path) -> tuple[Packed, RuleSet]:
    """Validate the bundle under `root` with the loader (its manifest included) and pack exactly the files the loader
    reads: bundle.yaml and every file its manifest lists (which the loader has just checked is all of them)."""
    root = Path(root)
    rs = load_ruleset(root)
    bundle = yaml.safe_load(_read(root / "bundle.yaml").decode("utf-8"))
    names = ["bundle.yaml", *sorted((bundle.get("manifest") or {}).get("files") or {})]
    return pack_files({rel: _read(root / rel) for rel in names}), rs


def unpack(archive: bytes, dest: Path, content_sha256: str) -> None:
    """Write a stored bundle's files under `dest` (which must exist), after checking the payload's SHA-256; the
    decompressed size is bounded (a corrupted or hostile row cannot fill the disk)."""
    with gzip.GzipFile(fileobj=io.BytesIO(archive), mode="rb") as gz:
        payload = gz.read(2 * MAX_BUNDLE_BYTES + 1)
    if len(payload) > 2 * MAX_BUNDLE_BYTES:
        raise _refuse("archive", "decompresses to more than a bundle may hold")
    got = hashlib.sha256(payload).hexdigest()
    if got != content_sha256:
        raise _refuse("archive", f"content sha256 {got[:16]}... differs from the stored {content_sha256[:16]}...")
    doc = json.loads(payload)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("files"), dict):
        raise _refuse("archive", f"not a bundle archive of format {FORMAT}")
    for rel, b64 in doc["files"].items():
        if not isinstance(rel, str) or not _REL.match(rel) or ".." in rel.split("/") or not isinstance(b64, str):
            raise _refuse(str(rel)[:200], "not a bundle file path (FILE or CODE/FILE)")
        path = dest / rel
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(b64, validate=True))


def compile_check(rs: RuleSet) -> None:
    """Compile the rule set (what every instance will do) and free it; CompileError when it does not compile."""
    from ..engine import CompileError, Engine

    try:
        eng = Engine(rs, cache_size=0)
    except CompileError:
        raise
    except Exception as e:  # noqa: BLE001 — any compilation failure refuses the bundle
        raise CompileError(f"{type(e).__name__}: {e}") from e
    eng.close()


# -- the store -------------------------------------------------------------------------------------------------
def _row(r: Any, active: Optional[int]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "version": r["version"],
        "ruleset_hash": r["ruleset_hash"],
        "content_sha256": r["content_sha256"],
        "jurisdictions": json.loads(r["manifest"]).get("jurisdictions") or [],
        "size": r["size"],
        "published_by": r["published_by"],
        "published_at": r["published_at"].isoformat(),
        "active": r["id"] == active,
    }


def active_id(conn: sa.Connection) -> Optional[int]:
    return conn.execute(
        sa.select(rule_bundle_active.c.bundle_id).where(rule_bundle_active.c.slot == SLOT)
    ).scalar_one_or_none()


def activate(db: sa.Engine, bundle_id: int, by: str) -> None:
    """Make stored bundle `bundle_id` the one every instance serves (KeyError when there is no such bundle)."""
    now = datetime.now(UTC)
    with db.begin() as c:
        if c.execute(sa.select(rule_bundles.c.id).where(rule_bundles.c.id == bundle_id)).first() is None:
            raise KeyError(bundle_id)
        values = {"bundle_id": bundle_id, "activated_by": by[:128], "activated_at": now}
        n = c.execute(rule_bundle_active.update().where(rule_bundle_active.c.slot == SLOT).values(**values)).rowcount
        if n == 0:
            c.execute(rule_bundle_active.insert().values(slot=SLOT, **values))
    log.warning("rule bundle %s activated by %s", bundle_id, by)


def published(db: sa.Engine) -> list[dict[str, Any]]:
    """The stored bundles, newest first, without their files; `active` marks the one the fleet serves."""
    cols = [c for c in rule_bundles.c if c.name != "archive"]
    with db.connect() as c:
        active = active_id(c)
        rows = c.execute(sa.select(*cols).order_by(rule_bundles.c.id.desc())).mappings().all()
    return [_row(r, active) for r in rows]


def _successor_problems(old_manifest: dict[str, Any], old_version: str, packed: Packed) -> list[Problem]:
    """The reload rule (rules.loader.check_successor) on the manifests: a bundle may drop a jurisdiction of the active
    one only under a new version; every instance would refuse it."""
    dropped = sorted(set(old_manifest.get("jurisdictions") or []) - set(packed.manifest.get("jurisdictions") or []))
    if dropped and packed.version == old_version:
        return [
            Problem(
                "bundle.yaml",
                None,
                "version",
                f"jurisdiction(s) {', '.join(dropped)} dropped under the same version {old_version} as the active "
                "bundle; a bundle that removes a jurisdiction needs a new version",
            )
        ]
    return []


def publish(db: sa.Engine, root: Path, by: Optional[str] = None, activate_it: bool = True) -> dict[str, Any]:
    """Validate the bundle under `root`, store it (once: the same files published again reuse their row) and, unless
    told otherwise, activate it. What is stored is validated as every instance will load it: unpacked into a
    temporary directory, loaded with the manifest check and compiled. RuleSetError / CompileError when refused."""
    by = (by or default_publisher())[:128]
    packed, rs = pack(root)
    with tempfile.TemporaryDirectory(prefix="dfft-publish-") as tmp:
        unpack(packed.archive, Path(tmp), packed.content_sha256)
        stored = load_ruleset(Path(tmp))
    if stored.hash != rs.hash:
        raise _refuse(str(root), "the bundle changed while it was being published; publish again")
    compile_check(stored)
    with db.begin() as c:
        current = active_id(c)
        if current is not None:
            old = c.execute(
                sa.select(rule_bundles.c.manifest, rule_bundles.c.version).where(rule_bundles.c.id == current)
            ).first()
            if old is not None:
                problems = _successor_problems(json.loads(old.manifest), old.version, packed)
                if problems:
                    raise RuleSetError(problems)
        found = c.execute(
            sa.select(rule_bundles.c.id).where(rule_bundles.c.content_sha256 == packed.content_sha256)
        ).scalar_one_or_none()
        status = "already published"
        if found is None:
            status = "published"
            found = c.execute(
                rule_bundles.insert().values(
                    version=packed.version[:64],
                    ruleset_hash=stored.hash,
                    content_sha256=packed.content_sha256,
                    manifest=json.dumps(packed.manifest, sort_keys=True),
                    archive=packed.archive,
                    size=packed.size,
                    published_by=by,
                    published_at=datetime.now(UTC),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
    if activate_it:
        activate(db, found, by)
    return {
        "id": found,
        "status": status,
        "version": packed.version,
        "ruleset_hash": stored.hash,
        "content_sha256": packed.content_sha256,
        "files": len(packed.files),
        "size": packed.size,
        "active": activate_it or found == current,
    }


# -- every instance: follow the active bundle ----------------------------------------------------------------------
class BundleFollower:
    """Polls the active bundle id and converges the service's Rules on it (see the module doc). `rules` is the app's
    Rules: its reload(rules_dir) validates, compiles and swaps, or raises and leaves the old engine serving."""

    def __init__(self, db: sa.Engine, rules: Any, interval: float = POLL_SECONDS):
        self.db, self.rules = db, rules
        self.interval = poll_seconds(interval)
        self.serving_id: Optional[int] = None  # the published bundle serving now (None: the local bundle)
        self.active_id: Optional[int] = None  # what the database named at the last poll
        self.polled_at: Optional[datetime] = None  # the last successful poll
        self._polled_mono: Optional[float] = None
        self.poll_error: Optional[str] = None
        self.poll_errors = 0
        self.refusals = 0
        self.refused: Optional[dict[str, Any]] = None  # the last refusal, while that bundle is still the active one
        self._dir: Optional[Path] = None  # the unpacked bundle serving now (ours to delete)
        self._lock = threading.Lock()  # one convergence at a time
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    @property
    def converged(self) -> bool:
        return self.active_id == self.serving_id

    def poll_once(self) -> str:
        """Read the active id and converge on it: 'off', 'none' (nothing published), 'same', 'refused' (this bundle
        was refused before), 'loaded', 'unchanged' (same rule set as serving) or 'refused-now'. Database errors
        propagate (the caller counts and logs them)."""
        with self._lock:
            with self.db.connect() as c:
                active = active_id(c)
                row = None
                if active is not None and active != self.serving_id and (self.refused or {}).get("id") != active:
                    row = c.execute(sa.select(rule_bundles).where(rule_bundles.c.id == active)).mappings().first()
            self.active_id = active
            self.polled_at, self._polled_mono, self.poll_error = datetime.now(UTC), time.monotonic(), None
            if active is None:
                return "none"
            if active == self.serving_id:
                self.refused = None
                return "same"
            if (self.refused or {}).get("id") == active:
                return "refused"
            if row is None:  # deleted between the two reads: try again at the next poll
                return "none"
            return self._load(row)

    def _load(self, row: Any) -> str:
        tmp = Path(tempfile.mkdtemp(prefix=f"dfft-bundle-{row['id']}-"))
        try:
            unpack(row["archive"], tmp, row["content_sha256"])
            result = self.rules.reload(rules_dir=tmp)
        except Exception as e:  # noqa: BLE001 — whatever the reason, the bundle is refused and the old one serves
            shutil.rmtree(tmp, ignore_errors=True)
            self.refusals += 1
            errors = [
                {"file": p.file, "rule_id": p.rule_id, "field": p.field, "message": p.message}
                for p in getattr(e, "problems", [])
            ] or [{"message": f"{type(e).__name__}: {e}"}]
            self.refused = {
                "id": row["id"],
                "version": row["version"],
                "ruleset_hash": row["ruleset_hash"],
                "at": datetime.now(UTC).isoformat(),
                "reason": f"{type(e).__name__}: {e}"[:1000],
                "errors": [{k: (str(v)[:500] if v is not None else None) for k, v in x.items()} for x in errors[:20]],
            }
            log.error(
                "published rule bundle %s (version %s, %s) refused, still serving %s: %s",
                row["id"],
                row["version"],
                row["ruleset_hash"][:12],
                self.rules.engine.hash[:12],
                self.refused["reason"],
            )
            return "refused-now"
        old, self._dir = self._dir, tmp
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.serving_id, self.refused = row["id"], None
        log.warning("serving published rule bundle %s (version %s, %s)", row["id"], row["version"], result.status)
        return "loaded" if result.status == "reloaded" else "unchanged"

    def poll_quietly(self) -> None:
        try:
            self.poll_once()
        except Exception as e:  # noqa: BLE001 — the database is down or the row unreadable: try again next time
            self.poll_errors += 1
            self.poll_error = f"{type(e).__name__}: {e}"[:500]
            log.warning("rule bundle poll failed (still serving %s): %s", self.rules.engine.hash[:12], self.poll_error)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll_quietly()

    def start(self) -> BundleFollower:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dfft-bundle-follower", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        # the unpacked directory is no longer needed once loaded (the engine holds the rule set); it goes with us
        if self._dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._dir)

    def info(self) -> BundleDistribution:
        """For GET /v1/rulesets/current: where the serving bundle comes from and whether it is the active one."""
        return BundleDistribution.model_validate(
            {
                "source": "database" if self.serving_id is not None else "directory",
                "bundle_id": self.serving_id,
                "active_bundle_id": self.active_id,
                "converged": self.converged,
                "poll_seconds": self.interval,
                "poll_error": self.poll_error,
                "refused": self.refused,
            }
        )

    def families(self) -> Any:
        """Prometheus metric families (read at scrape time)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield GaugeMetricFamily(
            "dfft_bundle_serving_id",
            "Published rule bundle serving now (0: the local bundle)",
            value=self.serving_id or 0,
        )
        yield GaugeMetricFamily(
            "dfft_bundle_active_id",
            "Active published rule bundle at the last poll (0: none)",
            value=self.active_id or 0,
        )
        yield GaugeMetricFamily(
            "dfft_bundle_converged", "1 when the serving bundle is the active one", value=1 if self.converged else 0
        )
        age = time.monotonic() - self._polled_mono if self._polled_mono is not None else -1
        yield GaugeMetricFamily(
            "dfft_bundle_poll_age_seconds", "Seconds since the last successful poll (-1: never)", value=age
        )
        yield CounterMetricFamily("dfft_bundle_refusals", "Published rule bundles refused", value=self.refusals)
        yield CounterMetricFamily(
            "dfft_bundle_poll_errors", "Failed polls of the active bundle", value=self.poll_errors
        )
