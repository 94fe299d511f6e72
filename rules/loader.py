"""Load a rule bundle from YAML: schema-check every file, then check meaning, then build the models.

The loader never half-loads: it collects every problem in every file and raises one RuleSetError listing them all,
or returns a complete RuleSet.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from . import schema as S
from .conditions import leaf_op, leaf_values, stratify, walk
from .model import (
    DEFAULT_SCOPE,
    Category,
    Citation,
    CodeList,
    InventoryEntry,
    Jurisdiction,
    Law,
    Member,
    Obligation,
    Regulator,
    Rule,
    RuleSet,
    ScopeEntry,
    Uncovered,
    Vocabulary,
)

DOMAIN_FILES = {f"{d}.yaml": d for d in S.DOMAINS}
from .schema import ACCESS, OUTCOMES, RECIPIENT_KINDS, RECIPIENT_ROLES, RELATIONS, ROLES, SIZES  # noqa: E402

CODE_FIELDS = (
    "from",
    "to",
    "origin",
    "destination",
    "collected_in",
    "established",
    "subjects_in",
    "nationality",
    "through",
)
# Fields whose one value relaxes (no access, transit): tested only where they narrow a restriction, so that "no
# access" or "transit" can never make a verdict more severe (property-tested).
RELAXING_FIELDS = ("access", "through")


@dataclass(frozen=True)
class Problem:
    file: str
    rule_id: Optional[str]
    field: Optional[str]
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.rule_id:
            where += f" rule {self.rule_id}"
        if self.field:
            where += f" field {self.field}"
        return f"{where}: {self.message}"


class RuleSetError(Exception):
    """A rule bundle that failed validation. `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the rule files:\n" + "\n".join(f"  - {p}" for p in problems))


# libyaml's parser (yaml.CSafeLoader: the C scanner and parser, the safe constructor) reads the bundle about ten
# times faster than the pure-Python one; without libyaml (a PyYAML built without it) the pure-Python loader is used.
# Both refuse duplicate keys with the same constructor below. PyYAML is imported on first use (a start-up that finds
# the bundle in the validated-bundle cache parses no YAML): `_UniqueKeyLoader` and `_PyUniqueKeyLoader` are built
# then (module attributes, see __getattr__).
def _construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict:
    import yaml

    seen: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen[key] = loader.construct_object(value_node, deep=deep)
    return seen


_yaml_loaders: dict[str, Any] = {}
_yaml_lock = threading.Lock()


def _loader(name: str) -> Any:
    """The duplicate-refusing loader `_UniqueKeyLoader` (libyaml's where available) or `_PyUniqueKeyLoader`."""
    hit = _yaml_loaders.get(name)
    if hit is not None:
        return hit
    import yaml

    with _yaml_lock:
        if not _yaml_loaders:

            class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
                """SafeLoader (libyaml's where available) that refuses duplicate keys instead of silently keeping the
                last one."""

            class _PyUniqueKeyLoader(yaml.SafeLoader):
                """The pure-Python loader with the same duplicate-key check (tests compare the two)."""

            for cls in (_UniqueKeyLoader, _PyUniqueKeyLoader):
                cls.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
            _yaml_loaders.update(_UniqueKeyLoader=_UniqueKeyLoader, _PyUniqueKeyLoader=_PyUniqueKeyLoader)
    return _yaml_loaders[name]


def __getattr__(name: str) -> Any:
    if name in ("_UniqueKeyLoader", "_PyUniqueKeyLoader"):
        return _loader(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MAX_FILE_BYTES = 2 * 1024 * 1024  # one rule file (the largest embedded one is ~40 KB)
MAX_FILES = 2000  # entries read or listed in one bundle


class _Reader:
    """Reads the files of one bundle: only regular files (never a FIFO, device or socket: opened non-blocking and
    checked with fstat before reading), only inside the bundle (a symlink that resolves outside is refused), at most
    MAX_FILE_BYTES each and MAX_FILES entries in all. Remembers the SHA-256 of every file read, relative path ->
    hash, for the manifest check: the bytes hashed are the bytes parsed.

    `prefetched` (relative path -> bytes, from a snapshot taken to key the validated-bundle cache) is used instead of
    reading those files again, so the bytes validated are the bytes the cache key was computed from; `fresh` counts
    files read from disk anyway, and `listed` records each folder's listing (relative path -> names)."""

    def __init__(self, root: Path, problems: list[Problem], prefetched: Optional[dict[str, bytes]] = None):
        self.root = root
        self.real_root = os.path.realpath(root)
        self.problems = problems
        self.hashes: dict[str, str] = {}
        self.entries = 0
        self.prefetched = prefetched
        self.data: dict[str, bytes] = {}
        self.fresh = 0
        self.listed: dict[str, tuple[str, ...]] = {}
        self._reals: dict[str, str] = {str(root): self.real_root}

    def realpath(self, path: Path) -> str:
        """os.path.realpath, without resolving again a folder already resolved (a name that is not a link, in a
        folder already resolved, resolves to that folder's real path joined with the name)."""
        p = str(path)
        real = self._reals.get(p)
        if real is None:
            parent = self._reals.get(os.path.dirname(p))
            name = os.path.basename(p)
            if parent is not None and name not in ("", ".", "..") and not os.path.islink(p):
                real = os.path.join(parent, name)
            else:
                real = os.path.realpath(p)
            self._reals[p] = real
        return real

    def inside(self, path: Path) -> bool:
        real = self.realpath(path)
        if real != self.real_root and not real.startswith(self.real_root.rstrip(os.sep) + os.sep):
            self.problems.append(
                Problem(
                    str(path),
                    None,
                    None,
                    f"leads outside the bundle directory (to {real}); links out of the bundle are not followed",
                )
            )
            return False
        return True

    def listdir(self, path: Path) -> list[Path]:
        out = []
        with os.scandir(path) as it:
            for e in it:
                self.entries += 1
                if self.entries > MAX_FILES:
                    raise RuleSetError(
                        [Problem(str(self.root), None, None, f"more than {MAX_FILES} files and folders; refused")]
                    )
                out.append(Path(path) / e.name)
        out.sort()
        self.listed[os.path.relpath(path, self.root)] = tuple(p.name for p in out)
        return out

    def read(self, path: Path) -> Optional[bytes]:
        if not self.inside(path):
            return None
        rel = os.path.relpath(path, self.root).replace(os.sep, "/")
        if self.prefetched is not None and rel in self.prefetched:
            data = self.prefetched[rel]
            self.hashes[rel] = hashlib.sha256(data).hexdigest()
            return data
        self.fresh += 1
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.realpath(path), flags)
        except OSError as e:
            self.problems.append(Problem(str(path), None, None, f"cannot be read: {e.strerror or e}"))
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self.problems.append(
                    Problem(
                        str(path),
                        None,
                        None,
                        "not a regular file (a FIFO, device, socket or folder); rule files must be regular files",
                    )
                )
                return None
            if st.st_size > MAX_FILE_BYTES:
                self.problems.append(
                    Problem(str(path), None, None, f"{st.st_size} bytes; a rule file may have at most {MAX_FILE_BYTES}")
                )
                return None
            chunks, size = [], 0
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    self.problems.append(Problem(str(path), None, None, f"more than {MAX_FILE_BYTES} bytes"))
                    return None
                chunks.append(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        self.hashes[rel] = hashlib.sha256(data).hexdigest()
        self.data[rel] = data
        return data

    def yaml(self, path: Path) -> Any:
        data = self.read(path)
        if data is None:
            return None
        return parse_yaml(data, path, self.problems)


def parse_yaml(data: bytes, path: Path, problems: list[Problem]) -> Any:
    import yaml

    try:
        return yaml.load(data.decode("utf-8"), Loader=_loader("_UniqueKeyLoader"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        problems.append(Problem(str(path), None, None, f"cannot be read as YAML: {e}"))
        return None


def read_yaml(path: Path, problems: list[Problem]) -> Any:
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_loader("_UniqueKeyLoader"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as e:
        problems.append(Problem(str(path), None, None, f"cannot be read as YAML: {e}"))
        return None


def default_rules_dir() -> Path:
    return Path(str(resources.files("dfft.jurisdictions")))


def default_vocabulary_path() -> Path:
    return Path(str(resources.files("dfft.rules") / "vocabulary.yaml"))


def _flatten_errors(errors: Any, path: str = "") -> Iterable[tuple[str, str]]:
    """Cerberus nests errors as {field: [msg | {index: [...]}]}; yield (dotted path, message)."""
    if isinstance(errors, dict):
        for key, val in errors.items():
            sub = (
                f"{path}.{key}"
                if path and not isinstance(key, int)
                else (f"{path}[{key}]" if isinstance(key, int) else str(key))
            )
            yield from _flatten_errors(val, sub)
    elif isinstance(errors, list):
        for item in errors:
            yield from _flatten_errors(item, path)
    else:
        yield path, str(errors)


_validators = threading.local()


def _validator(schema: dict) -> S.RuleValidator:
    """One validator per schema and thread, reused: building one checks the schema itself, which cost about as much
    as validating the documents (a validator resets its errors on each validate(); it is not thread-safe, hence one
    per thread)."""
    cache: dict[int, tuple[dict, S.RuleValidator]] = getattr(_validators, "by_schema", None) or {}
    _validators.by_schema = cache
    hit = cache.get(id(schema))
    if hit is None or hit[0] is not schema:
        if len(cache) >= 32:  # the loader's schemas are a handful of constants; bound it anyway
            cache.clear()
        hit = cache[id(schema)] = (schema, S.RuleValidator(schema))
    return hit[1]


def _schema_check(doc: Any, schema: dict, path: Path, problems: list[Problem]) -> bool:
    if not isinstance(doc, dict):
        problems.append(Problem(str(path), None, None, f"expected a YAML mapping at the top, got {type(doc).__name__}"))
        return False
    v = _validator(schema)
    if v.validate(doc):
        return True
    rules: list[Any] = doc["rules"] if isinstance(doc.get("rules"), list) else []
    for field, msg in _flatten_errors(v.errors):
        rule_id = None
        m = re.match(r"rules\[(\d+)\]\.?(.*)", field)
        if m:
            idx = int(m.group(1))
            if idx < len(rules) and isinstance(rules[idx], dict):
                rule_id = str(rules[idx].get("id", f"#{idx}"))
            field = m.group(2) or None  # type: ignore[assignment]  # a Problem field may be None
        hint = ""
        if "unallowed value" in msg:
            hint = _allowed_hint(schema, field)
        problems.append(Problem(str(path), rule_id, field, msg + hint))
    return False


def _allowed_hint(schema: dict, field: Optional[str]) -> str:
    if not field:
        return ""
    leaf = field.split(".")[-1]
    for candidate in (S.RULE["schema"], S.RULE["schema"]["then"]["schema"], S.RULE_FILE):
        if leaf in candidate and "allowed" in candidate[leaf]:
            return f"; expected one of {candidate[leaf]['allowed']}"
    return ""


def load_vocabulary(path: Optional[Path] = None, data: Optional[bytes] = None) -> Vocabulary:
    """The vocabulary at `path` (or parsed from `data`, that file's bytes as already read)."""
    path = path or default_vocabulary_path()
    problems: list[Problem] = []
    doc = read_yaml(path, problems) if data is None else parse_yaml(data, path, problems)
    if doc is not None and _schema_check(doc, S.VOCABULARY_FILE, path, problems):
        cats = doc["data_categories"]
        owner: dict[str, str] = {}
        for name, c in cats.items():
            for label in c.get("fideslang", []) + c.get("dpv", []):
                if label in owner:
                    problems.append(
                        Problem(
                            str(path),
                            None,
                            f"data_categories.{name}",
                            f"label {label!r} is also mapped to {owner[label]!r}; a label maps to one category",
                        )
                    )
                owner[label] = name
            for p in c.get("parents", []):
                if p not in cats:
                    problems.append(
                        Problem(
                            str(path),
                            None,
                            f"data_categories.{name}.parents",
                            f"unknown parent {p!r}; expected one of {sorted(cats)}",
                        )
                    )
    if problems:
        raise RuleSetError(problems)
    return Vocabulary(
        data_categories={
            n: Category(name=n, **{k: tuple(v) if isinstance(v, list) else v for k, v in c.items()})
            for n, c in doc["data_categories"].items()
        },
        safeguards=doc["safeguards"],
        purposes=doc["purposes"],
        sectors=tuple(doc["sectors"]),
        exporters=doc["exporters"],
    )


def _code_list(name: str, d: dict) -> CodeList:
    return CodeList(
        name=name,
        title=d["title"],
        citation=Citation(**d["citation"]) if d.get("citation") else None,
        source=d.get("source"),
        confidence=d.get("confidence"),
        note=d.get("note"),
        members=tuple(Member(**m) for m in d["members"]),
    )


def load_ruleset(
    root: Optional[Path] = None,
    vocabulary: Optional[Path] = None,
    *,
    require_manifest: bool = True,
    cache: bool = True,
) -> RuleSet:
    """Load and validate the bundle under `root` (default: the embedded `jurisdictions/`).

    bundle.yaml's `manifest` (the jurisdictions and the SHA-256 of every file; `dfft rules manifest DIR` writes it)
    is always verified when present. A bundle without one is refused unless the caller passes
    require_manifest=False (the service and the CLI never do).

    A bundle validated before, byte for byte, by the same code, is taken from the validated-bundle cache
    (rules/cache.py; DFFT_CACHE_DIR, off with DFFT_CACHE_DIR=off or cache=False); any other is validated in full
    and, when valid, cached."""
    from . import cache as _cache

    root = Path(root) if root else default_rules_dir()
    vpath = Path(vocabulary) if vocabulary else default_vocabulary_path()
    if not root.is_dir():
        raise RuleSetError([Problem(str(root), None, None, "rule directory does not exist")])
    folder = _cache.cache_dir() if cache else None
    snap = _snapshot(root, vpath) if folder is not None else None
    if folder is None or snap is None:
        return _load(root, vpath, require_manifest, None)[0]
    material, files, vdata, listed = snap
    key = _cache.key_of(material, require_manifest)
    at = _cache.entry_path(folder, root, vpath)
    hit = _cache.read(at, key)
    if isinstance(hit, tuple) and len(hit) == 2 and isinstance(hit[0], RuleSet) and isinstance(hit[1], str):
        hit[0]._remember_hash(hit[1])  # RuleSet.hash dumps the whole bundle: cached with it
        return hit[0]
    rs, reader = _load(root, vpath, require_manifest, (files, vdata))
    # cache only what was validated from the snapshot's bytes and listing (nothing changed during the load)
    if reader.fresh == 0 and all(listed.get(d) == names for d, names in reader.listed.items()):
        _cache.write(at, key, (rs, rs.hash))
    return rs


def _snapshot(
    root: Path, vocabulary: Path
) -> Optional[tuple[list[tuple[str, str]], dict[str, bytes], bytes, dict[str, tuple[str, ...]]]]:
    """Everything a load of `root` depends on, read once: (key material: every entry's name and kind and every
    file's SHA-256; the bytes of the files the loader reads; the vocabulary's bytes; each folder's listing). None
    when the bundle cannot be read cleanly (a link out of the bundle, a FIFO, an oversized file...): the full load
    then reports it."""
    problems: list[Problem] = []
    reader = _Reader(root, problems)
    try:
        with open(vocabulary, "rb") as fh:
            vdata = fh.read(MAX_FILE_BYTES + 1)
        if len(vdata) > MAX_FILE_BYTES:
            return None
        material = [("vocabulary " + str(vocabulary), hashlib.sha256(vdata).hexdigest())]
        for entry in reader.listdir(root):
            is_dir = entry.is_dir()
            material.append((f"entry {entry.name} {'dir' if is_dir else 'other'}", ""))
            if not is_dir:
                if entry.name in ("bundle.yaml", "groups.yaml"):
                    reader.read(entry)
                continue
            if entry.name.startswith((".", "_")):
                continue
            if not reader.inside(entry):
                return None
            for f in reader.listdir(entry):
                material.append((f"entry {entry.name}/{f.name} {'dir' if f.is_dir() else 'other'}", ""))
                if f.name == "jurisdiction.yaml" or f.name in DOMAIN_FILES:
                    reader.read(f)
    except (OSError, RuleSetError):
        return None
    if problems:
        return None
    material += sorted(("file " + rel, h) for rel, h in reader.hashes.items())
    return material, reader.data, vdata, reader.listed


def _load(
    root: Path, vocabulary: Path, require_manifest: bool, prefetched: Optional[tuple[dict[str, bytes], bytes]]
) -> tuple[RuleSet, _Reader]:
    """The full load and validation (no cache), from the prefetched bytes where given."""
    problems: list[Problem] = []
    vocab = load_vocabulary(vocabulary, prefetched[1] if prefetched else None)
    reader = _Reader(root, problems, prefetched[0] if prefetched else None)

    bundle = None
    if not (root / "bundle.yaml").exists():
        problems.append(Problem(str(root / "bundle.yaml"), None, None, "missing: the bundle needs a version"))
    else:
        bundle = reader.yaml(root / "bundle.yaml")
        if bundle is not None:
            _schema_check(bundle, S.BUNDLE_FILE, root / "bundle.yaml", problems)

    groups_doc: dict = {}
    if (root / "groups.yaml").exists():
        g = reader.yaml(root / "groups.yaml")
        if g is not None and _schema_check(g, S.GROUPS_FILE, root / "groups.yaml", problems):
            groups_doc = g

    raw: dict[str, tuple[dict, list[tuple[Path, dict]]]] = {}
    folders: list[str] = []
    for entry in reader.listdir(root):
        if entry.name.startswith((".", "_")) or entry.name in ("bundle.yaml", "groups.yaml", "__init__.py"):
            continue
        if not reader.inside(entry):
            continue
        if not entry.is_dir():
            problems.append(
                Problem(
                    str(entry), None, None, "unexpected file; expected bundle.yaml, groups.yaml or jurisdiction folders"
                )
            )
            continue
        folders.append(entry.name)
        jpath = entry / "jurisdiction.yaml"
        if not jpath.exists():
            problems.append(Problem(str(entry), None, None, "jurisdiction folder without jurisdiction.yaml"))
            continue
        jdoc = reader.yaml(jpath)
        if jdoc is None or not _schema_check(jdoc, S.JURISDICTION_FILE, jpath, problems):
            continue
        if jdoc["code"] != entry.name:
            problems.append(
                Problem(str(jpath), None, "code", f"{jdoc['code']!r} does not match the folder name {entry.name!r}")
            )
            continue
        files = []
        for f in reader.listdir(entry):
            if f.name == "jurisdiction.yaml" or f.name.startswith("."):
                continue
            if f.name not in DOMAIN_FILES:
                problems.append(Problem(str(f), None, None, f"unexpected file; expected one of {sorted(DOMAIN_FILES)}"))
                continue
            doc = reader.yaml(f)
            if doc is None or not _schema_check(doc, S.RULE_FILE, f, problems):
                continue
            if doc["jurisdiction"] != entry.name:
                problems.append(
                    Problem(
                        str(f),
                        None,
                        "jurisdiction",
                        f"{doc['jurisdiction']!r} does not match the folder {entry.name!r}",
                    )
                )
            if doc["domain"] != DOMAIN_FILES[f.name]:
                problems.append(
                    Problem(str(f), None, "domain", f"{doc['domain']!r} does not match the file name {f.name!r}")
                )
            files.append((f, doc))
        raw[entry.name] = (jdoc, files)

    if not folders and not problems:
        problems.append(
            Problem(
                str(root),
                None,
                None,
                "no jurisdiction folders: a bundle without rule sets would refuse every request; refused",
            )
        )
    if isinstance(bundle, dict):
        problems += _check_manifest(root, bundle.get("manifest"), folders, reader, require_manifest)

    if problems:
        raise RuleSetError(problems)

    groups = {n: _code_list(n, d) for n, d in (groups_doc.get("groups") or {}).items()}
    aliases = {bloc: tuple(d.get("members", [])) for bloc, d in (groups_doc.get("aliases") or {}).items()}
    jurisdictions: dict[str, Jurisdiction] = {}
    seen_ids: dict[str, str] = {}
    for code, (jdoc, files) in raw.items():
        jpath = root / code / "jurisdiction.yaml"
        lists = {n: _code_list(n, d) for n, d in (jdoc.get("lists") or {}).items()}
        rules: list[Rule] = []
        for f, doc in files:
            for r in doc["rules"]:
                if r["id"] in seen_ids:
                    problems.append(Problem(str(f), r["id"], "id", f"duplicate rule id (also in {seen_ids[r['id']]})"))
                    continue
                seen_ids[r["id"]] = str(f)
                then = r["then"]
                law = jdoc["laws"].get(r["citation"]["law"]) or {}
                rules.append(
                    Rule(
                        id=r["id"],
                        jurisdiction=code,
                        domain=doc["domain"],
                        title=r["title"],
                        scope=r.get("scope") or DEFAULT_SCOPE[doc["domain"]],
                        citation=Citation(**r["citation"]),
                        # a rule's window defaults to its law's: no rule is in force before the law it cites
                        effective_from=r.get("effective_from") or law.get("effective_from"),
                        effective_until=r.get("effective_until") or law.get("effective_until"),
                        confidence=r["confidence"],
                        note=r.get("note"),
                        when=r["when"],
                        unless=r.get("unless"),
                        effect=then.get("effect"),
                        obligations=tuple(Obligation(**o) for o in then.get("obligations", [])),
                        derive=tuple(then.get("derive", [])),
                    )
                )
        jurisdictions[code] = Jurisdiction(
            code=code,
            name=jdoc["name"],
            note=jdoc.get("note"),
            regulators=tuple(Regulator(**x) for x in jdoc.get("regulators", [])),
            laws={k: Law(key=k, **v) for k, v in jdoc["laws"].items()},
            lists=lists,
            rules=tuple(rules),
            uncovered=tuple(
                Uncovered(
                    **{
                        **u,
                        "data_categories": tuple(u.get("data_categories", ())),
                        "except_to": tuple(u.get("except_to", ())),
                        "exporters": tuple(u.get("exporters", ())),
                    }
                )
                for u in jdoc.get("uncovered", [])
            ),
            reach=tuple(_scope_entry(x) for x in jdoc.get("reach", [])),
            not_transfer=tuple(_scope_entry(x) for x in jdoc.get("not_transfer", [])),
            inventory=tuple(
                InventoryEntry(**{**x, "rules": tuple(x.get("rules", ()))}) for x in jdoc.get("inventory", [])
            ),
        )

    assert bundle is not None  # a missing or unreadable bundle.yaml is a problem, raised above
    rs = RuleSet(
        version=bundle["version"],
        title=bundle.get("title"),
        vocabulary=vocab,
        aliases=aliases,
        groups=groups,
        jurisdictions=jurisdictions,
    )
    problems += check_meaning(rs, root)
    if problems:
        raise RuleSetError(problems)
    return rs, reader


MANIFEST_HINT = "run `dfft rules manifest DIR` after changing the bundle (and bump its version)"


def _check_manifest(root: Path, manifest: Any, folders: list[str], reader: _Reader, require: bool) -> list[Problem]:
    """The bundle is exactly what bundle.yaml's manifest lists: the same jurisdictions, the same files, the same
    bytes (SHA-256)."""
    out: list[Problem] = []
    if manifest is None:
        if require:
            out.append(
                Problem(
                    str(root / "bundle.yaml"),
                    None,
                    "manifest",
                    f"missing: a bundle lists its jurisdictions and file hashes; {MANIFEST_HINT}",
                )
            )
        return out
    listed = set(manifest.get("jurisdictions") or [])
    for code in sorted(listed - set(folders)):
        out.append(Problem(str(root / code), None, None, f"jurisdiction {code} is listed in the manifest but missing"))
    for code in sorted(set(folders) - listed):
        out.append(
            Problem(
                str(root / code), None, None, f"jurisdiction {code} is not listed in the manifest; " + MANIFEST_HINT
            )
        )
    files: dict[str, str] = manifest.get("files") or {}
    for rel, want in sorted(files.items()):
        got = reader.hashes.get(rel)
        if got is None:
            if not (root / rel).exists():
                out.append(Problem(str(root / rel), None, None, "listed in the manifest but missing"))
        elif got != want:
            out.append(
                Problem(
                    str(root / rel),
                    None,
                    None,
                    f"content changed: sha256 {got[:16]}..., the manifest says {want[:16]}...; {MANIFEST_HINT}",
                )
            )
    for rel in sorted(set(reader.hashes) - set(files) - {"bundle.yaml"}):
        out.append(Problem(str(root / rel), None, None, f"not listed in the manifest; {MANIFEST_HINT}"))
    return out


def manifest_of(root: Path) -> dict[str, Any]:
    """The manifest of the bundle under `root` as it is now (the files the loader reads, read the way it reads)."""
    root = Path(root)
    problems: list[Problem] = []
    reader = _Reader(root, problems)
    if (root / "groups.yaml").exists():
        reader.read(root / "groups.yaml")
    codes = []
    for entry in reader.listdir(root):
        if entry.name.startswith((".", "_")) or not entry.is_dir() or not reader.inside(entry):
            continue
        codes.append(entry.name)
        for f in reader.listdir(entry):
            if f.name == "jurisdiction.yaml" or f.name in DOMAIN_FILES:
                reader.read(f)
    if problems:
        raise RuleSetError(problems)
    return {"jurisdictions": codes, "files": dict(sorted(reader.hashes.items()))}


def write_manifest(root: Path) -> dict[str, Any]:
    """(Re)write the `manifest:` of root/bundle.yaml (kept as the last key; comments and keys above it are kept)."""
    import yaml

    root = Path(root)
    path = root / "bundle.yaml"
    text = path.read_text(encoding="utf-8")
    m = re.search(r"^manifest:", text, flags=re.M)
    head = (text[: m.start()] if m else text).rstrip("\n") + "\n"
    man = manifest_of(root)
    block = yaml.safe_dump({"manifest": man}, sort_keys=False, default_flow_style=False, width=200)
    header = (
        "# written by `dfft rules manifest`: the jurisdictions and the SHA-256 of every file; the loader refuses\n"
        "# a bundle that differs from it\n"
    )
    if header not in head:
        head += header
    path.write_text(head + block, encoding="utf-8")
    return man


def check_successor(old: RuleSet, new: RuleSet) -> list[Problem]:
    """A bundle replacing a serving one (reload) may drop a jurisdiction only under a new version."""
    dropped = sorted(set(old.jurisdictions) - set(new.jurisdictions))
    if dropped and new.version == old.version:
        return [
            Problem(
                "bundle.yaml",
                None,
                "version",
                f"jurisdiction(s) {', '.join(dropped)} dropped under the same "
                f"version {old.version}; a bundle that removes a jurisdiction needs a new version",
            )
        ]
    return []


def _check_uncovered(
    j: Jurisdiction, file: str, categories: set[str], out: list[Problem], exporters: Optional[set[str]] = None
) -> None:
    seen: set[str] = set()
    for i, u in enumerate(j.uncovered):
        where = f"uncovered[{i}]"
        if not u.id.startswith(j.code + "-"):
            out.append(Problem(file, u.id, where + ".id", f"must start with the jurisdiction code '{j.code}-'"))
        if u.id in seen or any(r.id == u.id for r in j.rules):
            out.append(Problem(file, u.id, where + ".id", "duplicate id (rules and uncovered periods share ids)"))
        seen.add(u.id)
        if u.law is not None and u.law not in j.laws:
            out.append(Problem(file, u.id, where + ".law", f"unknown law {u.law!r}; expected one of {sorted(j.laws)}"))
        if u.from_ >= u.until:
            out.append(Problem(file, u.id, where, "from is not before until"))
        for k in u.exporters:
            if exporters is not None and k not in exporters:
                out.append(
                    Problem(
                        file,
                        u.id,
                        where + ".exporters",
                        f"unknown exporter kind {k!r}; expected one of {sorted(exporters)}",
                    )
                )
        for c in u.data_categories:
            if c not in categories:
                out.append(
                    Problem(
                        file,
                        u.id,
                        where + ".data_categories",
                        f"unknown value {c!r}; expected one of {sorted(categories)}",
                    )
                )
        if u.confidence != "high" and not u.note:
            out.append(Problem(file, u.id, where + ".note", f"confidence {u.confidence} needs a note saying why"))


def _check_inventory(j: Jurisdiction, file: str, out: list[Problem]) -> None:
    """An encoded measure names the rules of this jurisdiction that encode it; a reviewed one says why it is not."""
    ids = {r.id for r in j.rules}
    for i, e in enumerate(j.inventory):
        where = f"inventory[{i}]"
        if e.status == "encoded":
            if not e.rules:
                out.append(
                    Problem(file, None, where + ".rules", "an encoded measure names the rule ids that encode it")
                )
            for rid in e.rules:
                if rid not in ids:
                    out.append(
                        Problem(file, rid, where + ".rules", f"unknown rule id {rid!r}; expected a rule of {j.code}")
                    )
        else:
            if e.rules:
                out.append(Problem(file, None, where + ".rules", "a reviewed measure is not encoded: name no rules"))
            if not e.reason:
                out.append(
                    Problem(file, None, where + ".reason", "a reviewed measure needs the reason it is not encoded")
                )


def _scope_entry(x: dict[str, Any]) -> ScopeEntry:
    return ScopeEntry(
        **{
            **x,
            "citation": Citation(**x["citation"]),
            "domains": tuple(x.get("domains", ("data_protection",))),
            "roles": tuple(x.get("roles", ("exporter",))),
        }
    )


def check_meaning(rs: RuleSet, root: Path) -> list[Problem]:
    """Checks the schema cannot express: references resolve, values are in the vocabulary, semantics hold."""
    out: list[Problem] = []
    vocab = rs.vocabulary
    scalar_vocab = {
        "exporter": set(vocab.exporters),
        "sector": set(vocab.sectors),
        "purpose": set(vocab.purposes),
        "exporter_role": set(ROLES),
        "exporter_size": set(SIZES),
        "relation": set(RELATIONS),
        "recipient_role": set(RECIPIENT_ROLES),
        "access": set(ACCESS),
        "recipient_kind": set(RECIPIENT_KINDS),
    }
    set_vocab = {
        "data_categories": set(vocab.data_categories),
        "safeguards": set(vocab.safeguards),
        "purposes": set(vocab.purposes),
        "outcomes": {f"{sg}:{o}" for sg in vocab.safeguards for o in OUTCOMES},
    }
    for code, j in rs.jurisdictions.items():
        for name, lst in j.lists.items():
            _check_list(lst, str(root / code / "jurisdiction.yaml"), f"lists.{name}", out)
        law: Optional[Law]
        for key, law in j.laws.items():
            if law.effective_from and law.effective_until and law.effective_from >= law.effective_until:
                out.append(
                    Problem(
                        str(root / code / "jurisdiction.yaml"),
                        None,
                        f"laws.{key}",
                        "effective_from is not before effective_until",
                    )
                )
        _check_uncovered(
            j, str(root / code / "jurisdiction.yaml"), set_vocab["data_categories"], out, scalar_vocab["exporter"]
        )
        _check_inventory(j, str(root / code / "jurisdiction.yaml"), out)
        derived = {f for r in j.rules for f in r.derive}
        for r in j.rules:
            file = str(root / code / f"{r.domain}.yaml")

            def bad(field: str, msg: str) -> None:
                out.append(Problem(file, r.id, field, msg))  # noqa: B023 - used only within this iteration

            if not r.id.startswith(code + "-"):
                bad("id", f"must start with the jurisdiction code '{code}-'")
            if r.citation.law not in j.laws:
                bad("citation.law", f"unknown law {r.citation.law!r}; expected one of {sorted(j.laws)}")
            if r.effective_from and r.effective_until and r.effective_from >= r.effective_until:
                bad("effective_until", "must be after effective_from")
            law = j.laws.get(r.citation.law)
            if law and law.effective_from and r.effective_from and r.effective_from < law.effective_from:
                bad("effective_from", f"{r.effective_from} is before {law.key} took effect ({law.effective_from})")
            if law and law.effective_until and r.effective_until and r.effective_until > law.effective_until:
                bad("effective_until", f"{r.effective_until} is after {law.key} ended ({law.effective_until})")
            if r.confidence != "high" and not r.note:
                bad("note", f"confidence {r.confidence} needs a note saying what could not be verified")
            for part, cond in (("when", r.when), ("unless", r.unless)):
                if cond is None:
                    continue
                for leaf, positive in walk(cond):
                    if "flag" in leaf:
                        if leaf["flag"] not in derived:
                            bad(
                                part,
                                f"flag {leaf['flag']!r} is not derived by any rule of {code}; derived flags: {sorted(derived)}",
                            )
                        continue
                    field = leaf["field"]
                    op, _ = leaf_op(leaf)
                    if field.startswith("subjects.") and field[9:] not in set_vocab["data_categories"]:
                        bad(part, f"{field}: unknown data category {field[9:]!r}")
                    narrows = positive == (part == "unless")  # the test can only take an exception away
                    if op == "only" and (r.derive or not narrows):
                        bad(
                            part,
                            "`only` may narrow an exception only (positive under `unless`, negated under `when`, "
                            "never in a rule that derives flags): adding data must never relax a verdict",
                        )
                    if field in RELAXING_FIELDS and (r.derive or not narrows):
                        bad(
                            part,
                            f"`{field}` may be tested only where it takes a restriction away (positive under "
                            "`unless`, negated under `when`) or in `not_transfer`: no access and transit must never "
                            "make a verdict more severe",
                        )
                    for v in leaf_values(leaf):
                        if field in set_vocab and v not in set_vocab[field]:
                            bad(part, f"unknown {field} value {v!r}; expected one of {sorted(set_vocab[field])}")
                        elif field in scalar_vocab and v not in scalar_vocab[field]:
                            bad(part, f"unknown {field} value {v!r}; expected one of {sorted(scalar_vocab[field])}")
                        elif field in CODE_FIELDS and op != "in_list" and not re.match(S.CODE_RE, str(v)):
                            bad(part, f"{field} value {v!r} is not a two-letter code")
                        elif op == "in_list":
                            try:
                                rs.code_list(code, v)
                            except KeyError:
                                bad(
                                    part,
                                    f"unknown list {v!r}; own lists {sorted(j.lists)}, groups {sorted(rs.groups)}, "
                                    "or another jurisdiction's as CODE.name",
                                )
                    if field == "safeguards" and r.effect in ("condition", "block") and (positive == (part == "when")):
                        bad(
                            part,
                            "a safeguard here would make the rule fire when it is added "
                            "(adding a safeguard must never make a verdict more severe)",
                        )
            held_in_unless = (
                {
                    v
                    for leaf, pos in walk(r.unless)
                    if pos and leaf.get("field") == "safeguards"
                    for v in leaf_values(leaf)
                }
                if r.unless
                else set()
            )
            for ob in r.obligations:
                for s in ob.one_of:
                    if s not in vocab.safeguards:
                        bad(
                            "then.obligations",
                            f"obligation {ob.id}: unknown safeguard {s!r}; expected one of {sorted(vocab.safeguards)}",
                        )
                    elif r.effect == "condition" and s not in held_in_unless:
                        bad(
                            "unless",
                            f"obligation {ob.id} is met by {s!r}, but holding {s!r} does not make `unless` true",
                        )
            if r.effect == "block" and any(ob.one_of for ob in r.obligations):
                bad(
                    "then.obligations",
                    "a block rule cannot list obligations that a safeguard meets; use effect: condition",
                )
        _check_scope(j, str(root / code / "jurisdiction.yaml"), scalar_vocab, set_vocab, out)
        try:
            stratify(list(j.rules))
        except ValueError as e:
            out.append(Problem(str(root / code), None, "derive", str(e)))
    for name, lst in rs.groups.items():
        _check_list(lst, str(root / "groups.yaml"), f"groups.{name}", out)
    return out


def _check_scope(
    j: Jurisdiction, file: str, scalar_vocab: dict[str, set[str]], set_vocab: dict[str, set[str]], out: list[Problem]
) -> None:
    """`reach` and `not_transfer` entries: ids unique and prefixed, laws known, values in the vocabulary, no flags
    (they are decided before any rule derives one)."""
    ids = {r.id for r in j.rules} | {u.id for u in j.uncovered}
    for part, entries in (("reach", j.reach), ("not_transfer", j.not_transfer)):
        for i, e in enumerate(entries):
            where = f"{part}[{i}]"
            if not e.id.startswith(j.code + "-"):
                out.append(Problem(file, e.id, where + ".id", f"must start with the jurisdiction code '{j.code}-'"))
            if e.id in ids:
                out.append(Problem(file, e.id, where + ".id", "duplicate id (rules, uncovered and scope share ids)"))
            ids.add(e.id)
            if e.citation.law not in j.laws:
                out.append(
                    Problem(
                        file,
                        e.id,
                        where + ".citation.law",
                        f"unknown law {e.citation.law!r}; expected one of {sorted(j.laws)}",
                    )
                )
            if e.confidence != "high" and not e.note:
                out.append(Problem(file, e.id, where + ".note", f"confidence {e.confidence} needs a note"))
            for leaf, _ in walk(e.when):
                if "flag" in leaf:
                    out.append(Problem(file, e.id, where + ".when", "scope conditions cannot test flags"))
                    continue
                field = leaf["field"]
                op, _ = leaf_op(leaf)
                if op == "in_list":
                    continue
                for v in leaf_values(leaf):
                    valid = set_vocab.get(field) or scalar_vocab.get(field)
                    if valid is not None and v not in valid:
                        out.append(
                            Problem(
                                file,
                                e.id,
                                where + ".when",
                                f"unknown {field} value {v!r}; expected one of {sorted(valid)}",
                            )
                        )
                    elif field in CODE_FIELDS and not re.match(S.CODE_RE, str(v)):
                        out.append(
                            Problem(file, e.id, where + ".when", f"{field} value {v!r} is not a two-letter code")
                        )


def _check_list(lst: CodeList, file: str, field: str, out: list[Problem]) -> None:
    if lst.confidence in ("medium", "low") and not lst.note:
        out.append(Problem(file, None, field, f"confidence {lst.confidence} needs a note"))
    for m in lst.members:
        if m.from_ and m.until and m.from_ >= m.until:
            out.append(Problem(file, None, f"{field}.members.{m.code}", "from is not before until"))
