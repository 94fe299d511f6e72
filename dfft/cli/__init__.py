"""The `dfft` command line.

Exit codes (for scripts and pipelines):
  0 allowed · 1 conditional · 2 blocked · 3 invalid request or usage · 4 invalid rule files · 5 internal error

`main` runs a plain `dfft check` through the fast front (cli/fast.py: no typer, no click) and every other command
line through the typer app (cli/commands.py), imported only then; `dfft.cli.app`, `dfft.cli.check`, ... are the
typer app's, imported on first use.
"""

from __future__ import annotations

import atexit
import gc
import sys
from typing import Any, Optional

from ..engine import EngineError, RequestError
from ..engine.compile import CompileError
from ..rules import RuleSetError
from .options import EXIT_BAD_REQUEST, EXIT_BAD_RULES, EXIT_INTERNAL, err

_COMMANDS = {
    "app",
    "check",
    "vocab",
    "lint",
    "render",
    "register",
    "version_text",
    "EXIT_CODES",
    "GROUPS",
    "GROUP_OF",
    "CORE_COMMANDS",
}


def __getattr__(name: str) -> Any:
    """The typer app and its commands (cli/commands.py), imported on first use."""
    if name in _COMMANDS:
        from . import commands

        return getattr(commands, name)
    raise AttributeError(f"module 'dfft.cli' has no attribute {name!r}")


def _click_errors() -> tuple[tuple, tuple]:
    """(click's errors, its aborts) of whichever click typer uses (recent typer vendors its own, and a plain
    `pip install dfft` may have no click of its own); none while typer has not been imported (the fast front)."""
    if "typer" not in sys.modules:
        return (), ()
    import typer

    errors: tuple = ()
    aborts: tuple = (typer.Abort,)
    try:
        import click

        errors, aborts = (click.ClickException,), (click.exceptions.Abort, typer.Abort)
    except ImportError:  # typer that vendors click, without click installed
        pass
    try:
        from typer._click import exceptions as _typer_click

        errors = (*errors, _typer_click.ClickException)
    except ImportError:  # typer that uses click directly
        pass
    return errors, aborts


_freeze_at_exit: list = []


def _run(argv: Optional[list[str]]) -> Any:
    from . import fast, options

    options._stdin = None
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = fast.run(args)
    except KeyboardInterrupt:  # as click's main answers it: a new line, then Abort (130 below)
        print(file=sys.stderr)
        return 130
    if code is not None:
        # at interpreter exit, before its last full collection: everything still alive is moved out of the
        # collector's reach, so that this collection does not walk the rule set, the engine and the libraries (~3%
        # of a `dfft check`; nothing of a one-shot check needs collecting then)
        if not _freeze_at_exit:
            _freeze_at_exit.append(atexit.register(gc.freeze))
        return code
    from .commands import app

    return app(args=argv, standalone_mode=False)


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: maps every failure to a documented exit code (never 0, 1 or 2 on an error)."""
    try:
        code = _run(argv)
    except RequestError as e:
        err.print(f"[red]invalid request[/]: {e}")
        code = EXIT_BAD_REQUEST
    except RuleSetError as e:
        err.print(f"[red]invalid rule files[/]: {e}")
        code = EXIT_BAD_RULES
    except CompileError as e:
        err.print(f"[red]rule set does not compile[/]: {e}")
        code = EXIT_BAD_RULES
    except EngineError as e:
        err.print(f"[red]internal error[/] (no verdict; treat as not allowed): {e}")
        code = EXIT_INTERNAL
    except Exception as e:  # fail closed
        click_errors, aborts = _click_errors()
        if isinstance(e, aborts):
            code = 130
        elif isinstance(e, click_errors):
            e.show(file=sys.stderr)
            code = EXIT_BAD_REQUEST
        else:
            err.print(f"[red]internal error[/] (no verdict; treat as not allowed): {type(e).__name__}: {e}")
            code = EXIT_INTERNAL
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
