"""The Python stays lint-clean and formatted (ruff) and type-checks under mypy --strict (pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kg import paths


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "ruff", "check", "kg", "api", "tests", "bench"],
        [sys.executable, "-m", "ruff", "format", "--check", "kg", "api", "tests", "bench"],
        [sys.executable, "-m", "mypy"],
    ],
    ids=["ruff", "ruff-format", "mypy"],
)
def test_tool_passes(command: list[str]) -> None:
    proc = subprocess.run(command, cwd=paths.project_root(), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
