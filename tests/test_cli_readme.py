"""The README's first steps: its example commands run as written (on the embedded bundle, in this process), its
endpoint table lists every endpoint the service has, and the set-up commands name Python 3.11 or 3.12, the system
packages, `KEY=$(...)` and how to call dfft."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def example_commands() -> list[str]:
    block = README.split("## Example", 1)[1].split("```console", 1)[1].split("```", 1)[0]
    cmds = []
    for line in block.splitlines():
        if not line.startswith("$ dfft "):
            continue
        cmd = line[2:].split("  #", 1)[0].strip()
        if " serve" in cmd or "--request " in cmd:  # the service (tests/api) and a file of the reader's own
            continue
        cmds.append(cmd)
    return cmds


@pytest.fixture
def dfft(capsys, monkeypatch):
    from dfft.cli import main
    from dfft.cli.options import state

    monkeypatch.setenv("COLUMNS", "80")

    def run(argv: list[str]) -> tuple[int, str, str]:
        monkeypatch.setattr(state, "rules_dir", None)
        with pytest.raises(SystemExit) as e:
            main(argv)
        got = capsys.readouterr()
        return int(e.value.code or 0), got.out, got.err

    return run


@pytest.mark.parametrize("cmd", example_commands())
def test_readme_example_commands_run_as_written(dfft, cmd):
    argv = shlex.split(cmd)[1:]
    code, out, err = dfft(argv)
    expected = (0, 1, 2) if argv[0] == "check" else (0,)
    assert code in expected, f"`{cmd}` exited {code}: {err}"
    assert out.strip(), f"`{cmd}` printed nothing"


def test_readme_examples_are_there():
    cmds = example_commands()
    assert len(cmds) >= 8 and any("--version" in c for c in cmds) and any(c.startswith("dfft vocab") for c in cmds)


def test_readme_lists_every_endpoint(tmp_path):
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    from dfft.api.app import create_app
    from dfft.api.settings import Settings

    app = create_app(Settings(data_dir=tmp_path))
    table = README.split("| endpoint | scope | what |", 1)[1].split("\n\n", 1)[0]
    missing = []
    for path, ops in app.openapi()["paths"].items():
        for method in ops:
            if path.startswith("/v1/whatif/"):  # one row: `POST /v1/whatif/diff`, `/matrix`, ...
                row = next((ln for ln in table.splitlines() if "/v1/whatif/" in ln), "")
                ok = f"{method.upper()} /v1/whatif/" in row and f"/{path.rsplit('/', 1)[1]}`" in row
            else:
                ok = re.search(rf"{method.upper()} {re.escape(path)}`", table) is not None
            if not ok:
                missing.append(f"{method.upper()} {path}")
    for path in ("/openapi.json", "/docs", "/redoc"):
        if path not in table:
            missing.append(path)
    assert not missing, f"endpoints the README's table does not list: {missing}"


def test_readme_set_up_works_on_a_fresh_machine():
    assert "python3.12 python3.11" in README  # whichever of the two the machine has
    assert "build-essential python3-dev python3-venv" in README  # the system packages durable-rules needs
    assert "KEY=$(.venv/bin/dfft keys create" in README
    assert ". .venv/bin/activate" in README and ".venv/bin/dfft" in README
    flat = " ".join(README.split())
    assert "Exit 1 is not a failure of the command: the transfer is *conditional*" in flat
