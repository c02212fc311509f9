"""The layer contracts in pyproject.toml hold, and a wrong import breaks them (so the check itself can fail)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("lint-imports")  # import-linter's command, beside this interpreter
    return subprocess.run(
        [str(command)], cwd=root, env={"PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=300
    )


def test_the_layer_contracts_hold() -> None:
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_sink_that_imports_a_runtime_breaks_the_contracts(tmp_path: Path) -> None:
    shutil.copytree(REPO / "ovdet", tmp_path / "ovdet", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    sinks = tmp_path / "ovdet" / "io" / "sinks.py"
    sinks.write_text(sinks.read_text() + "\nfrom ..models import load_backend  # a deliberately wrong import\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "ovdet.io.sinks -> ovdet.models" in result.stdout and "BROKEN" in result.stdout
