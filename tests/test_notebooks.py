"""The notebooks run top to bottom against the random-init test weights, on the shared clips behind 40 frames in
which nothing is found (``OVDET_DATA``), so every notebook also meets frames without a detection."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import BOTTLES, PEOPLE, read_frames
from tests.media import empty_frames, write_clip

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def data_that_starts_empty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared clips the notebooks read, each behind 40 gray frames (frames 0 and 30 hold nothing)."""
    folder = tmp_path_factory.mktemp("data")
    for clip in (BOTTLES, PEOPLE):
        frames = read_frames(clip, 100)
        write_clip(folder / clip.name, empty_frames(40, frames[0]) + frames)
    return folder


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, data_that_starts_empty: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVDET_DATA", str(data_that_starts_empty))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    assert all(
        not cell.get("outputs") and not cell.get("execution_count") for cell in cells if cell["cell_type"] == "code"
    )
