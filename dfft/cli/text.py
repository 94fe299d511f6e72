"""Terminal text for `dfft check`, `dfft rules show <rule>` and `dfft vocab`: wrapped to the terminal's width (80
columns when it is not a terminal) between words only, so a rule id, a safeguard or a category is never cut or
broken at a hyphen. Imports no other CLI module but options."""

from __future__ import annotations

import textwrap
from typing import Any, Optional

from rich.console import Console
from rich.markup import escape

from ..engine import Decision

VERDICT_STYLE = {"allowed": "bold green", "conditional": "bold yellow", "blocked": "bold red"}
EFFECT_STYLE = {"allow": "green", "condition": "yellow", "block": "red", "met": "cyan"}
MAX_WIDTH = 120  # wider terminals still get lines a reader can follow


def width_of(console: Console) -> int:
    return max(40, min(console.width, MAX_WIDTH))


def wrap(text: str, width: int, indent: str = "", first: str | None = None) -> list[str]:
    """`text` wrapped at `width` between words (never inside a word, never at a hyphen), as plain lines."""
    return textwrap.wrap(
        " ".join(text.split()),
        width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [(indent if first is None else first).rstrip()]


def para(console: Console, text: str, indent: str = "", first: str | None = None, style: str = "") -> None:
    for line in wrap(text, width_of(console), indent, first):
        console.print(f"[{style}]{escape(line)}[/]" if style else escape(line), highlight=False)


def render_decision(d: Decision, console: Console) -> None:
    r = d.request
    path = " -> ".join([r.origin, *r.via_codes, r.destination])
    subj = "unknown number of" if r.subjects is None else f"{r.subjects:,}"
    para(console, f"{path}  {', '.join(r.data_categories)}  ({subj} subjects)  as of {d.as_of}", style="bold")
    if r.safeguards:
        para(console, f"safeguards held: {', '.join(r.safeguard_ids)}", "  ", "")
    console.print(f"Verdict: [{VERDICT_STYLE[d.verdict]}]{d.verdict.upper()}[/]")
    # applicable law: regimes beyond the origin's and the importer's, and legs that are not a transfer
    reach = [f"{g.jurisdiction} ({g.ground or g.basis})" for g in d.regimes if g.basis in ("reach", "established")]
    if reach:
        para(console, "also governed by: " + ", ".join(dict.fromkeys(reach)), "  ", "")
    for x in d.not_transfers:
        para(console, f"not a transfer under {x.jurisdiction} on {x.leg_path}: {x.title} ({x.id})", "  ", "")
    if d.findings:
        console.print(f"[bold]Findings ({len(d.findings)})[/]")
    for f in d.findings:
        effect = "met" if f.status == "met" else f.effect
        # the rule id is printed whole on its own line: never truncated, never broken
        head = f"  [{EFFECT_STYLE[effect]}]{effect:<9}[/] [bold]{escape(f.rule_id)}[/]"
        console.print(head + (f"  {escape(f.leg_path)}" if f.leg_path else ""), highlight=False)
        para(console, f.title, "      ")
        if f.citation:
            para(console, f"{f.citation.law} {f.citation.article}", "      ", style="dim")
        extra = []
        if f.met_by:
            extra.append(f"met by {', '.join(f.met_by)}")
        if f.confidence and f.confidence != "high":
            extra.append(f"{f.confidence} confidence")
        if extra:
            para(console, "; ".join(extra), "      ", style="dim")
    for g in d.coverage:
        para(console, f"not encoded: {g.provision} ({g.jurisdiction}, {g.status}) <{g.url}>", "      ", "  ")
    if d.obligations:
        console.print(f"[bold]Obligations ({len(d.obligations)})[/]")
    for o in d.obligations:
        console.print(f"  [bold]{escape(o.id)}[/]  [dim]{o.kind}[/]", highlight=False)
        para(console, o.text, "      ")
        if o.one_of:
            para(console, f"met by one of: {', '.join(o.one_of)}", "      ")
        if o.deadline:
            para(console, f"deadline: {o.deadline}", "      ")
        cites = "; ".join(f"{c.law} {c.article}" for c in o.citations)
        if cites:
            para(console, cites, "      ", style="dim")
    for note in d.notes:
        para(console, f"note: {note}", "  ", "", style="dim")
    para(
        console,
        f"rule set {d.ruleset.version} ({d.ruleset.hash[:12]}); consulted: {', '.join(d.consulted)}",
        "  ",
        "",
        style="dim",
    )


def render_rule(rule: Any, law: Any, console: Console) -> None:
    """One rule in full, as text (`dfft rules show <rule-id>`; `--json` prints the model)."""
    import yaml

    console.print(f"[bold]{escape(rule.id)}[/]", highlight=False)
    para(console, rule.title, "  ")
    rows = [
        ("jurisdiction", rule.jurisdiction),
        ("domain", rule.domain),
        ("scope", rule.scope),
        ("effect", rule.effect or ("derive " + ", ".join(rule.derive))),
        ("in force", f"{rule.effective_from or '…'} to {rule.effective_until or '…'}"),
        ("confidence", rule.confidence),
        ("citation", f"{rule.citation.law} {rule.citation.article}" + (f" ({law.title})" if law else "")),
    ]
    url = rule.citation.url or (law.url if law else None)
    if url:
        rows.append(("source", url))
    for k, v in rows:
        para(console, str(v), " " * 16, f"  {k:<13} ")
    if rule.citation.quote:
        para(console, f"“{rule.citation.quote}”", "    ", "  quote: ")
    for name, cond in (("when", rule.when), ("unless", rule.unless)):
        if cond:
            console.print(f"  {name}:")
            for line in yaml.safe_dump(cond, sort_keys=False, width=width_of(console) - 6).splitlines():
                console.print("    " + escape(line), highlight=False)
    for o in rule.obligations:
        console.print(f"  obligation [bold]{escape(o.id)}[/]", highlight=False)
        para(console, o.text, "      ")
        if o.one_of:
            para(console, f"met by one of: {', '.join(o.one_of)}", "      ")
        if o.deadline:
            para(console, f"deadline: {o.deadline}", "      ")
    if rule.note:
        para(console, rule.note, "    ", "  note: ", style="dim")


def render_vocabulary(v: Any, console: Console) -> None:
    """The request vocabulary (api.models.Vocabulary): every value with what it means."""
    sections = [
        ("Data categories (--data)", v.data_categories),
        ("Safeguards (--safeguard)", v.safeguards),
        ("Purposes (--purpose)", v.purposes),
        ("Sectors (--sector)", v.sectors),
        ("Exporter kinds (--exporter)", v.exporters),
    ]
    for title, terms in sections:
        console.print(f"[bold]{title}[/]")
        pad = min(26, max(len(t.name) for t in terms) + 4) if terms else 4
        for t in terms:
            text = t.description or ""
            parents = getattr(t, "parents", None)
            if parents:
                text += f" (a kind of {', '.join(parents)})"
            first = f"  {t.name:<{pad - 2}}"
            if len(first) > pad:  # a long name on its own line, the description under it
                console.print(escape(f"  {t.name}"), highlight=False)
                first = " " * pad
            para(console, text, " " * pad, first)
        console.print()


LETTER = {"allowed": "A", "conditional": "C", "blocked": "B"}
LETTER_STYLE = {"A": "green", "C": "yellow", "B": "red"}


def abbreviations(names: list[str]) -> list[str]:
    """The shortest prefixes (at least one character) that tell `names` apart, one length for all."""
    for k in range(1, max((len(n) for n in names), default=1) + 1):
        short = [n[:k] for n in names]
        if len(set(short)) == len(short):
            return short
    return list(names)  # duplicates: the names themselves


Span = tuple[int, int, str]  # start, end, Rich style


def matrix_lines(m: Any, width: int) -> list[tuple[str, list[Span]]]:
    """`dfft matrix` as text lines that fit `width` columns: destinations as rows, origins as column groups, one
    letter per data profile in each group (the profiles abbreviated, with a legend), blocks of as many origins as
    fit, the destination repeated at the start of each row. Each line as (plain text, styled spans)."""
    profiles = [p.name for p in m.profiles]
    abbrev = abbreviations(profiles)
    scenario = m.scenario is not None
    cw = max(len(abbrev[0]) if abbrev else 1, 2 if scenario else 1)  # a profile's column
    sep = "" if cw == 1 else " "
    header = sep.join(a.ljust(cw) for a in abbrev).rstrip()
    gw = max([len(sep.join(a.ljust(cw) for a in abbrev))] + [len(o) for o in m.origins])  # an origin's group
    lw = max([len("from"), len("to")] + [len(d) for d in m.destinations])  # the destination label
    gap = "  "
    per_block = max(1, (width - lw) // (gw + len(gap)))
    lines: list[tuple[str, list[Span]]] = []

    def add(plain: str, spans: Optional[list[Span]] = None) -> None:
        lines.append((plain, spans or []))

    def legend(head: str, items: list[str]) -> None:
        for line in wrap(" · ".join(items), width, " " * len(head), head):
            add(line)

    title = f"Destination matrix as of {m.as_of}: {len(m.origins)} origin(s) x {len(m.destinations)} destinations"
    title += f" x {len(profiles)} data profiles" + (f"; baseline and scenario {m.scenario!r}" if scenario else "")
    for line in wrap(title, width):
        add(line, [(0, len(line), "bold")])
    legend("profiles: ", [f"{a} {p.name} ({p.title})" for a, p in zip(abbrev, m.profiles, strict=True)])
    verdicts = ["A allowed", "C conditional", "B blocked", ". same jurisdiction"]
    if scenario:
        verdicts.append("XY baseline X, under the scenario Y (where it changes)")
    legend("verdicts: ", verdicts)
    counts: dict[str, int] = {}
    changed = 0
    for c in m.cells:
        counts[c.verdict] = counts.get(c.verdict, 0) + 1
        changed += bool(c.scenario_verdict and c.scenario_verdict != c.verdict)
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in LETTER)
    legend("cells: ", [f"{len(m.cells)} ({summary})"] + ([f"{changed} change under the scenario"] if scenario else []))
    cells = {(c.origin, c.profile, c.destination): c for c in m.cells}
    origins = list(m.origins)
    for b in range(0, len(origins), per_block):
        block = origins[b : b + per_block]
        add("")
        add("from".ljust(lw) + "".join(gap + o.ljust(gw) for o in block).rstrip())
        add("to".ljust(lw) + "".join(gap + header.ljust(gw) for _ in block).rstrip())
        for d in m.destinations:
            parts = [d.ljust(lw)]
            spans: list[Span] = []
            at = lw
            for o in block:
                parts.append(gap)
                at += len(gap)
                start = at
                for k, p in enumerate(profiles):
                    if k and sep:
                        parts.append(sep)
                        at += len(sep)
                    c = cells.get((o, p, d))
                    if c is None:
                        text = "."
                        spans.append((at, at + 1, "dim"))
                    else:
                        x = LETTER[c.verdict]
                        changes = c.scenario_verdict and c.scenario_verdict != c.verdict
                        y = LETTER[c.scenario_verdict] if changes else ""
                        text = x + y
                        spans.append((at, at + 1, LETTER_STYLE[x]))
                        if y:
                            spans.append((at + 1, at + 2, "bold " + LETTER_STYLE[y]))
                    parts.append(text.ljust(cw))
                    at += cw
                parts.append(" " * (gw - (at - start)))
                at = start + gw
            merged: list[Span] = []  # runs of one colour as one span (spaces between them take it invisibly)
            for a, b_, st in spans:
                if merged and merged[-1][2] == st and a - merged[-1][1] <= len(gap):
                    merged[-1] = (merged[-1][0], b_, st)
                else:
                    merged.append((a, b_, st))
            add("".join(parts).rstrip(), merged)
    return lines


def render_matrix(m: Any, console: Console) -> None:
    """The destination matrix (whatif.matrix.Matrix), fitted to the terminal's width (COLUMNS; 80 when not a
    terminal): see matrix_lines. Lines are built as styled spans, not markup, so thousands of cells print fast."""
    from rich.text import Span as RichSpan, Text

    for plain, spans in matrix_lines(m, max(40, console.width)):
        console.print(Text(plain, spans=[RichSpan(a, b, st) for a, b, st in spans]), soft_wrap=True, crop=False)
