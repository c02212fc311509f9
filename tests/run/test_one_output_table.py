"""Outputs are constructed in one module outside ``ovdet/io``: ``ovdet/run/outputs.py``, from its table. A sink
class built anywhere else in the package (a command, a worker, a server job, the benchmark runner) would be a
second wiring of the run."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import ovdet.io
from ovdet.run.outputs import OUTPUT_KINDS

PACKAGE = Path(ovdet.io.__file__).resolve().parents[1]
OPENING_MODULE = PACKAGE / "run" / "outputs.py"


def _sink_classes() -> set[str]:
    """Every class of ``ovdet.io`` that writes frames: it has ``write`` and ``close``."""
    names = set()
    for module_info in pkgutil.iter_modules(ovdet.io.__path__, "ovdet.io."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            is_own = inspect.isclass(value) and value.__module__ == module.__name__
            if is_own and callable(getattr(value, "write", None)) and callable(getattr(value, "close", None)):
                names.add(name)
    return names


def _constructions(path: Path, classes: set[str], package: Path = PACKAGE) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if callee in classes:
                found.append(f"{path.relative_to(package.parent)}:{node.lineno} {callee}(…)")
    return found


def _constructions_outside_the_table(package: Path, classes: set[str]) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        if path == package / "run" / "outputs.py" or (package / "io") in path.parents:
            continue
        found += _constructions(path, classes, package)
    return found


def test_the_sink_classes_are_found() -> None:
    classes = _sink_classes()
    assert {"JsonlSink", "CsvSink", "CocoSink", "AnnotatedVideoSink", "ParquetSink", "AlertsSink"} <= classes
    assert _constructions(OPENING_MODULE, classes), "the table's module opens the sinks, so the scan must see it"
    assert set(OUTPUT_KINDS) >= {"jsonl", "csv", "video", "coco", "events", "alerts", "crops", "summary", "parquet"}


def test_no_module_outside_io_and_the_table_constructs_a_sink() -> None:
    assert _constructions_outside_the_table(PACKAGE, _sink_classes()) == []


def test_a_command_that_opens_its_own_sink_is_found(tmp_path: Path) -> None:
    copy = tmp_path / "ovdet"
    (copy / "commands").mkdir(parents=True)
    (copy / "commands" / "detect.py").write_text("from ..io.sinks import JsonlSink\n\nsink = JsonlSink('out.jsonl')\n")
    assert _constructions_outside_the_table(copy, _sink_classes()) == ["ovdet/commands/detect.py:3 JsonlSink(…)"]
