"""The layer contracts in pyproject.toml hold and no import cycle joins ovdet's modules; a wrong import breaks
each check (so the checks themselves can fail)."""

from __future__ import annotations

import json
import os
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


def _copy_package(root: Path) -> None:
    shutil.copytree(REPO / "ovdet", root / "ovdet", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")


def import_cycles() -> list[str]:
    """The modules of the ``ovdet`` on the path that import each other in a circle, one group (``a ~ b ~ c``) per
    strongly connected set, counting imports inside functions and under ``TYPE_CHECKING`` (grimp records both)."""
    import grimp

    graph = grimp.build_graph("ovdet", exclude_type_checking_imports=False, cache_dir=None)
    groups: list[set[str]] = []
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:  # importer -> imported -> ... -> importer: one circle
                joined = [group for group in groups if group & set(back)]
                groups = [group for group in groups if group not in joined] + [set(back).union(*joined)]
    return sorted(" ~ ".join(sorted(group)) for group in groups)


def _import_cycles_of(root: Path) -> list[str]:
    """:func:`import_cycles` of the package copy in ``root``, found in a fresh interpreter (``-P``: not the
    working directory's ``ovdet``)."""
    code = "import json; from tests.test_layers import import_cycles; print(json.dumps(import_cycles()))"
    result = subprocess.run(
        [sys.executable, "-P", "-c", code],
        env={"PYTHONPATH": os.pathsep.join((str(root), str(REPO)))},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_no_import_cycle_joins_ovdets_modules() -> None:
    cycles = _import_cycles_of(REPO)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_a_function_level_import_of_a_higher_module_makes_a_cycle(tmp_path: Path) -> None:
    _copy_package(tmp_path)
    zones = tmp_path / "ovdet" / "analytics" / "zones.py"
    zones.write_text(zones.read_text() + "\n\ndef _deliberate_cycle():\n    from ..detector import OpenVocabDetector\n")
    [cycle] = [group.split(" ~ ") for group in _import_cycles_of(tmp_path) if "ovdet.detector" in group.split(" ~ ")]
    assert {"ovdet.analytics.zones", "ovdet.detector"} <= set(cycle)


def test_a_sink_that_imports_a_runtime_breaks_the_contracts(tmp_path: Path) -> None:
    _copy_package(tmp_path)
    sinks = tmp_path / "ovdet" / "io" / "sinks.py"
    sinks.write_text(sinks.read_text() + "\nfrom ..models import load_backend  # a deliberately wrong import\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "ovdet.io.sinks -> ovdet.models" in result.stdout and "BROKEN" in result.stdout
