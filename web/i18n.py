"""Languages of the workbench: gettext catalogues (locale/<lang>/LC_MESSAGES/messages.po, read at run time with Babel:
no build step), country names (pycountry's ISO 3166 translations), and labels for the vocabulary and the Japan rules
(ja.yaml). English is the source language. Add a language: a messages.po under locale/, a <lang>.yaml like ja.yaml,
and its code in LANGS."""

from __future__ import annotations

import gettext
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import pycountry
import yaml

LANGS = ("en", "ja")
DEFAULT = "en"
HERE = Path(__file__).parent


@cache
def catalogue(lang: str) -> dict[str, str]:
    """msgid -> msgstr of the language's messages.po (empty translations left out)."""
    if lang == DEFAULT:
        return {}
    from babel.messages.pofile import read_po

    path = HERE / "locale" / lang / "LC_MESSAGES" / "messages.po"
    with open(path, "rb") as f:
        cat = read_po(f, locale=lang)
    return {m.id: m.string for m in cat if isinstance(m.id, str) and m.id and isinstance(m.string, str) and m.string}


@cache
def labels(lang: str) -> dict[str, dict[str, str]]:
    if lang == DEFAULT:
        return {}
    path = HERE / f"{lang}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}


class Translator:
    """Everything a page needs to speak one language."""

    def __init__(self, lang: str):
        self.lang = lang if lang in LANGS else DEFAULT
        self.messages = catalogue(self.lang)
        self.labels = labels(self.lang)

    def gettext(self, msg: str, **kw: Any) -> str:
        s = self.messages.get(msg, msg)
        return s.format(**kw) if kw else s

    __call__ = gettext

    def label(self, kind: str, key: str, default: Optional[str] = None) -> str:
        return self.labels.get(kind, {}).get(key) or default or key

    def verdict(self, v: str) -> str:
        return self.label(
            "verdicts", v, {"allowed": "allowed", "conditional": "conditional", "blocked": "blocked"}.get(v, v)
        )

    def country(self, code: str) -> str:
        return country_name(code, self.lang)

    def why(self, text: str) -> str:
        """A diff's explanation (whatif.diff), in this language."""
        if self.lang == DEFAULT:
            return text
        for pat, msg in WHY:
            m = re.fullmatch(pat, text)
            if m:
                return self.gettext(msg, **m.groupdict())
        return text


WHY = [
    (r"now met by (?P<x>.+)", "now met by {x}"),
    (r"exemption met by (?P<x>.+)", "exemption met by {x}"),
    (r"rule disabled by the scenario", "rule disabled by the scenario"),
    (r"rule added by the scenario", "rule added by the scenario"),
    (r"no applicable restricting rule", "no applicable restricting rule"),
    (r"a rule now applies", "a rule now applies"),
    (r"no longer applies", "no longer applies"),
    (r"does not apply \(or not in force\) as of (?P<x>.+)", "does not apply (or not in force) as of {x}"),
    (r"applies to (?P<x>\S+) as of (?P<d>.+)", "applies to {x} as of {d}"),
    (r"applies to (?P<x>\S+)", "applies to {x}"),
]

SPECIAL = {"EU": ("European Union / EEA", "欧州連合／欧州経済領域"), "XK": ("Kosovo", "コソボ")}


@cache
def _iso3166(lang: str) -> Any:
    try:
        return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang])
    except OSError:
        return gettext.NullTranslations()


@cache
def country_name(code: str, lang: str = DEFAULT) -> str:
    """The country's common name in `lang` (`JP` -> Japan / 日本); the code itself when unknown."""
    code = (code or "").upper()
    if code in SPECIAL:
        return SPECIAL[code][1 if lang == "ja" else 0]
    c = pycountry.countries.get(alpha_2=code)
    if c is None:
        return code
    name = getattr(c, "common_name", None) or c.name
    if lang == DEFAULT:
        return name
    return _iso3166(lang).gettext(c.name) if name == c.name else _iso3166(lang).gettext(name) or name


def negotiate(cookie: Optional[str], accept_language: Optional[str]) -> str:
    """The language: the cookie's if it names one we have, else the best of Accept-Language, else English."""
    if cookie is not None and cookie in LANGS:
        return cookie
    best, q_best = DEFAULT, -1.0
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang in LANGS and q > q_best:
            best, q_best = lang, q
    return best


def package_file(name: str) -> Path:
    return Path(str(resources.files("dfft.web") / name))


# -- the messages the interface uses (for the catalogue check in tests/web/test_i18n.py and for translators) ----------
_CALL = re.compile(r"""(?<![A-Za-z0-9_.])(?:_|t)\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
_DICT = re.compile(r"""_\(\{([^}]*)\}\[""")
# messages the templates pass through _() as values (field names, sides, directions, statuses, roles, changes)
DYNAMIC = (
    "origin",
    "destination",
    "via",
    "data_categories",
    "subjects",
    "safeguards",
    "exporter",
    "sector",
    "purpose",
    "as_of",
    "request",
    "baseline",
    "scenario",
    "better",
    "worse",
    "starts to apply",
    "stops applying",
    "met",
    "viewer",
    "analyst",
    "admin",
    "diff",
    "matrix",
    "timeline",
    "remedy",
    "open",
    "reviewed",
)


def source_messages() -> set[str]:
    """Every msgid the templates and the web code ask for."""
    out = set(DYNAMIC) | {m for _, m in WHY}
    files = sorted((HERE / "templates").glob("*.j2")) + [HERE / "app.py"]
    for f in files:
        text = f.read_text(encoding="utf-8")
        for a, b in _CALL.findall(text):
            out.add((a or b).replace('\\"', '"').replace("\\'", "'"))
        for body in _DICT.findall(text):
            out |= {v for v in re.findall(r':\s*"([^"]*)"', body)}
    return {m for m in out if m}
