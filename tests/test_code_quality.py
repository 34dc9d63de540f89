"""The Python stays lint-clean and formatted (ruff) and type-checks under mypy --strict (pyproject.toml)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _mypy_tree(tmp: Path) -> Path:
    """mypy does not follow the editable install's import hook, so give it the installed layout:
    spinekg/kg and spinekg/api as links to the checkout's kg/ and api/."""
    (tmp / "spinekg").mkdir()
    for name in ("kg", "api"):
        (tmp / "spinekg" / name).symlink_to(REPO / name, target_is_directory=True)
    return tmp


@pytest.mark.parametrize(
    "tool",
    ["ruff", "ruff-format", "mypy"],
)
def test_tool_passes(tool: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    if tool == "ruff":
        command = [sys.executable, "-m", "ruff", "check", "kg", "api", "tests", "bench"]
    elif tool == "ruff-format":
        command = [sys.executable, "-m", "ruff", "format", "--check", "kg", "api", "tests", "bench"]
    else:
        env["MYPYPATH"] = str(_mypy_tree(tmp_path))
        command = [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "-p", "spinekg.kg", "-p", "spinekg.api"]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
