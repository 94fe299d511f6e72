"""A cache of validated rule bundles, so that a process starting on a bundle it has already validated skips the YAML
parse, the schema check and the meaning checks (about nine tenths of `dfft check`'s rule loading).

What is cached: the RuleSet that `load_ruleset` built (pickled), only after a load that found no problem.

The key covers everything validation depends on, so a cache entry is used only for exactly the bytes it was built
from, by exactly the code that built it:
  - every byte the loader reads (bundle.yaml, groups.yaml, every jurisdiction.yaml and domain file; SHA-256 each),
    the listing of the bundle (every entry's name and kind, including ones the loader would refuse), and the
    vocabulary file's bytes;
  - the dfft version, a hash of the validating code's own source (rules/loader.py, schema.py, model.py,
    conditions.py, cache.py: a schema or check changed in a checkout without a version bump still misses), the
    cache format, and the Python, pydantic and PyYAML versions (pickles are not trusted across them);
  - require_manifest.
A changed, added or removed file changes the key: the bundle is then validated again in full, and refused if invalid.
The bytes hashed for the key are the bytes the loader then validates (read once, see loader._Reader), so a file
changing during a load can never leave an entry that maps old bytes to a new result.

Where: DFFT_CACHE_DIR, else $XDG_CACHE_HOME/dfft, else ~/.cache/dfft; DFFT_CACHE_DIR=off (or an empty value, 0, no,
none) disables the cache. One file per bundle location (rules-<hash of the paths>.pickle), at most MAX_ENTRIES files
(the least recently written are removed). Files are written atomically (a temporary file in the same folder, then
os.replace), mode 0600 in a 0700 folder. A file is unpickled only when it and its folder belong to the current user
and are writable by no one else (a pickle is code: no other user can plant one), its header names this format and
key, and the SHA-256 of its payload matches; anything else -- stale, truncated, corrupted, foreign -- is ignored and
rewritten after a full validation. No failure of the cache ever fails a load: it only costs the full validation.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
from pathlib import Path
from typing import Any, Optional

FORMAT = b"dfft-ruleset-cache 1"
MAX_ENTRIES = 64
_OFF = ("", "0", "off", "no", "none", "false")
_CODE = ("loader.py", "schema.py", "model.py", "conditions.py", "cache.py")

_code_hash: Optional[str] = None


def cache_dir() -> Optional[Path]:
    """The cache folder, or None when the cache is off (DFFT_CACHE_DIR=off)."""
    v = os.environ.get("DFFT_CACHE_DIR")
    if v is not None:
        return None if v.strip().lower() in _OFF else Path(v)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "dfft"


def dfft_version() -> str:
    try:
        from importlib.metadata import version

        return version("dfft")
    except Exception:  # not installed (a checkout on sys.path): the code hash still keys the cache
        return "unknown"


def _package_files(name: str) -> str:
    """A fingerprint of an installed package's files (name, size, mtime of each in its folder: its version, and
    whether PyYAML's libyaml extension is there), without importing it (a start-up on a cache hit parses no YAML)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        return f"{name}:absent"
    folder = Path(spec.origin).parent
    h = hashlib.sha256()
    with os.scandir(folder) as entries:
        for e in sorted(entries, key=lambda e: e.name):
            if e.is_file():
                st = e.stat()
                h.update(f"{e.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return f"{name}:{h.hexdigest()[:16]}"


def code_version() -> str:
    """What the cached result depends on besides the bundle: versions of dfft, the format, the interpreter and the
    libraries whose objects are pickled, and a hash of the validating code itself."""
    global _code_hash
    if _code_hash is None:
        import pydantic

        h = hashlib.sha256()
        here = Path(__file__).parent
        for name in _CODE:
            h.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
        _code_hash = "|".join(
            (
                FORMAT.decode(),
                dfft_version(),
                h.hexdigest(),
                sys.version,
                pydantic.VERSION,
                _package_files("yaml"),
            )
        )
    return _code_hash


def key_of(material: list[tuple[str, str]], require_manifest: bool) -> str:
    """The key of a load: `material` is (what, digest) pairs describing every input (see loader._snapshot)."""
    h = hashlib.sha256()
    h.update(code_version().encode() + b"\0")
    h.update(f"require_manifest={require_manifest}\0".encode())
    for what, digest in material:
        h.update(what.encode("utf-8", "surrogateescape") + b"\0" + digest.encode() + b"\n")
    return h.hexdigest()


def entry_path(folder: Path, root: Path, vocabulary: Path) -> Path:
    where = f"{os.path.realpath(root)}\0{os.path.realpath(vocabulary)}".encode("utf-8", "surrogateescape")
    return folder / f"rules-{hashlib.sha256(where).hexdigest()[:32]}.pickle"


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def read(path: Path, key: str) -> Any:
    """The object cached at `path` under `key`, or None (missing, stale, corrupted, or not private to this user)."""
    try:
        if not _private(os.stat(path.parent)):
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            if not _private(os.fstat(fh.fileno())):
                return None
            data = fh.read()
    except OSError:
        return None
    header, sep, rest = data.partition(b"\n")
    want_key, sep2, rest = rest.partition(b"\n")
    digest, sep3, payload = rest.partition(b"\n")
    if not (sep and sep2 and sep3) or header != FORMAT or want_key != key.encode():
        return None
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        return None
    try:
        return pickle.loads(payload)
    except Exception:  # written by a broken process or for classes that changed: rebuilt by the caller
        return None


def write(path: Path, key: str, obj: Any) -> bool:
    """Store `obj` at `path` under `key`, atomically; False (and nothing written) on any error."""
    import tempfile  # only when an entry is written (not on a hit)

    tmp = None
    try:
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        folder = path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _private(os.stat(folder)):
            return False
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pickle")  # mode 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(FORMAT + b"\n" + key.encode() + b"\n" + hashlib.sha256(payload).hexdigest().encode() + b"\n")
            fh.write(payload)
        os.replace(tmp, path)
        tmp = None
        _prune(folder)
        return True
    except Exception:  # a read-only home, a full disk, an unpicklable object: the cache is only an optimisation
        return False
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _prune(folder: Path) -> None:
    entries = []
    for p in folder.glob("rules-*.pickle"):
        with contextlib.suppress(OSError):
            entries.append((p.stat().st_mtime, p))
    for _, p in sorted(entries)[: max(0, len(entries) - MAX_ENTRIES)]:
        with contextlib.suppress(OSError):
            p.unlink()
