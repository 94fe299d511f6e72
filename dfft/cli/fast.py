"""`dfft check` without typer: the hot command's front, so that judging one transfer does not pay for importing
typer and click (~0.1 s of a ~0.8 s process).

`run(argv)` takes a command line only when it is plainly `[--rules DIR] check OPTION...` with every option one of
`dfft check`'s, written the way click would read it the same (`--opt VALUE` or `--opt=VALUE`; flags bare), and every
value passing the checks the typer command's callbacks make. It then builds the request and judges it with the very
functions the typer command calls (request_of, judge), printing through the same consoles: the output and the exit
code are the typer command's by construction. Anything else -- help, --version, another command, an unknown or
repeated option, a value that starts with a dash, a refused value, a missing option, a bad date -- returns None
before anything is printed, and the caller runs the typer command on the same command line, which then says what
is wrong exactly as before (tests/test_cli_fast.py compares the two paths). DFFT_FAST_CLI=0 turns the front off.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from .options import (
    ACCESS,
    DATA_CHOICE,
    ENGINES,
    EXIT_OF_VERDICT,
    EXPORTER_CHOICE,
    PURPOSE_CHOICE,
    RECIPIENT_KINDS,
    RECIPIENT_ROLES,
    RELATIONS,
    ROLES,
    SAFEGUARD_CHOICE,
    SECTOR_CHOICE,
    SIZES,
    bad_parameter,
    choice,
    count_choice,
    out,
    parse_day,
    request_from_file,
    state,
    transfer_request,
    v2_facts,
)

_OFF = ("0", "off", "no", "false")

# `dfft check`'s options as the typer command declares them (commands.check; a test keeps the two equal):
# option -> (parameter name, kind, default, callback). Kinds: "one" a value (the last given counts, as in click),
# "many" a repeatable value, "int" a count >= 0, "flag" a flag.
OPTIONS: dict[str, tuple[str, str, Any, Optional[Callable[[Any], Any]]]] = {
    "--from": ("origin", "one", None, None),
    "--to": ("destination", "one", None, None),
    "--via": ("via", "many", None, None),
    "--transit": ("transit", "many", None, None),
    "--data": ("data", "many", None, DATA_CHOICE),
    "--subjects": ("subjects", "int", None, None),
    "--safeguard": ("safeguard", "many", None, SAFEGUARD_CHOICE),
    "--exporter": ("exporter", "one", "private", EXPORTER_CHOICE),
    "--sector": ("sector", "one", "general", SECTOR_CHOICE),
    "--purpose": ("purpose", "many", None, PURPOSE_CHOICE),
    "--role": ("role", "one", "controller", choice("--role", ROLES)),
    "--size": ("size", "one", "unknown", choice("--size", SIZES)),
    "--established": ("established", "many", None, None),
    "--relation": ("relation", "one", "third_party", choice("--relation", RELATIONS)),
    "--recipient-role": ("recipient_role", "one", "controller", choice("--recipient-role", RECIPIENT_ROLES)),
    "--access": ("access", "one", "full", choice("--access", ACCESS)),
    "--recipient-kind": ("recipient_kind", "one", "private", choice("--recipient-kind", RECIPIENT_KINDS)),
    "--subjects-in": ("subjects_in", "many", None, None),
    "--nationality": ("nationality", "many", None, None),
    "--collected-in": ("collected_in", "one", None, None),
    "--publicly-available": ("public", "flag", False, None),
    "--count": ("count", "many", None, count_choice),
    "--request": ("request_file", "one", None, None),
    "--as-of": ("as_of", "one", None, None),
    "--json": ("as_json", "flag", False, None),
    "--engine": ("backend", "one", "durable", choice("--engine", ENGINES)),
}
_COUNT = re.compile(r"[0-9]+")


def _value(tokens: list[str], i: int, name: str, inline: Optional[str]) -> tuple[Optional[str], int]:
    """The value of the option at tokens[i] (`--opt=VALUE` or `--opt VALUE`) and the next index; None when click
    might read it otherwise (missing, or a word that looks like an option: the typer path decides those)."""
    if inline is not None:
        return inline, i + 1
    if i + 1 >= len(tokens):
        return None, i
    v = tokens[i + 1]
    if v.startswith("-") and v != "-":
        return None, i
    return v, i + 2


def parse(argv: list[str]) -> Optional[tuple[Optional[Path], dict[str, Any]]]:
    """(the --rules folder, the check command's keyword arguments) of a plain `[--rules DIR] check ...` command line,
    or None for any other."""
    i, rules = 0, None
    while i < len(argv) and argv[i] != "check":
        name, eq, inline = argv[i].partition("=")
        if name != "--rules" or rules is not None:
            return None
        rules, i = _value(argv, i, name, inline if eq else None)
        if rules is None:
            return None
    if i >= len(argv):
        return None
    if rules is None:
        env = os.environ.get("DFFT_RULES")
        if env is not None and not env:  # click's reading of an empty variable is its business
            return None
        rules = env
    params: dict[str, Any] = {name: default for name, _, default, _ in OPTIONS.values()}
    seen: set[str] = set()
    i += 1
    while i < len(argv):
        option, eq, inline = argv[i].partition("=")
        spec = OPTIONS.get(option)
        if spec is None:
            return None
        name, kind, _, _ = spec
        if kind == "flag":
            if eq:
                return None
            params[name] = True
            i += 1
            continue
        if kind != "many" and option in seen:
            return None
        seen.add(option)
        value, i = _value(argv, i, option, inline if eq else None)
        if value is None:
            return None
        if kind == "many":
            params[name] = [*(params[name] or []), value]
        elif kind == "int":
            if not _COUNT.fullmatch(value):
                return None
            params[name] = int(value)
        else:
            params[name] = value
    return (Path(rules) if rules is not None else None), params


def validate(params: dict[str, Any]) -> None:
    """The checks the typer command's callbacks make (raising as they do)."""
    for name, _, _, callback in OPTIONS.values():
        if callback is not None:
            callback(params[name])


def request_of(
    origin: Optional[str],
    destination: Optional[str],
    via: Optional[list[str]],
    transit: Optional[list[str]],
    data: Optional[list[str]],
    subjects: Optional[int],
    safeguard: Optional[list[str]],
    exporter: str,
    sector: str,
    purpose: Optional[list[str]],
    role: str,
    size: str,
    established: Optional[list[str]],
    relation: str,
    recipient_role: str,
    access: str,
    recipient_kind: str,
    subjects_in: Optional[list[str]],
    nationality: Optional[list[str]],
    collected_in: Optional[str],
    public: bool,
    count: Optional[list[str]],
    request_file: Optional[str],
    as_of: Optional[str],
    **_: Any,
) -> dict[str, Any]:
    """The request `dfft check`'s options describe (raises BadParameter naming the option when they do not)."""
    if request_file is not None:
        request = request_from_file(request_file)
        if as_of is not None:
            request["as_of"] = parse_day(as_of, "--as-of")
        return request
    missing = [n for n, v in (("--from", origin), ("--to", destination), ("--data", data)) if not v]
    if missing:
        raise bad_parameter(f"missing {', '.join(missing)} (or give the whole request with --request)")
    assert origin and destination and data
    request = transfer_request(origin, destination, via, data, subjects, None, exporter, sector, "general")
    request.update(
        v2_facts(
            transit,
            safeguard,
            purpose,
            role,
            size,
            established,
            relation,
            recipient_role,
            access,
            recipient_kind,
            subjects_in,
            nationality,
            collected_in,
            public,
            count,
        )
    )
    request["via"] = [*request["via"], *({"jurisdiction": c, "transit": True} for c in request.pop("_transit", []))]
    request["as_of"] = parse_day(as_of, "--as-of")
    return request


def judge(request: dict[str, Any], backend: str, as_json: bool) -> int:
    """Judge `request`, print the decision (text or --json) and return the exit code of its verdict."""
    from ..engine import Engine
    from .text import render_decision

    # Engine checks the name at run time (ValueError on an unknown one)
    decision = Engine(state.ruleset(), backend=backend, cache_size=0).check(request)  # type: ignore[arg-type]
    if as_json:
        out.print_json(decision.model_dump_json())
    else:
        render_decision(decision, out)
    return EXIT_OF_VERDICT[decision.verdict]


def run(argv: list[str]) -> Optional[int]:
    """The exit code of `dfft check` run on `argv` through the fast front, or None (nothing printed, nothing judged)
    when the command line is not one it takes: the typer command then runs it."""
    if os.environ.get("DFFT_FAST_CLI", "1").strip().lower() in _OFF:
        return None
    parsed = parse(argv)
    if parsed is None:
        return None
    state.rules_dir, params = parsed
    try:
        validate(params)
        request = request_of(**params)
    except Exception:  # refused (or failed): the typer command does it again and reports it as it always has
        return None
    return judge(request, params["backend"], params["as_json"])
