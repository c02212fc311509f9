"""The notebooks run top to bottom against the random-init test weights, on the start of the sample clips (from
tests/data) behind 40 frames in which nothing is found (``OVDET_DATA``), so every notebook also meets frames
without a detection."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import BOTTLES, PEOPLE, read_frames
from tests.footage import BOTTLES_CLIP, PEOPLE_CLIP
from tests.media import empty_frames, write_clip

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

pytestmark = pytest.mark.usefixtures("module_embedding_cache")  # CLIP loads only in the module's first run


@pytest.fixture(scope="module")
def data_that_starts_empty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clips the notebooks read, under their shared names: the first 100 frames of each (from tests/data) behind
    40 gray frames (frames 0 and 30 hold nothing)."""
    folder = tmp_path_factory.mktemp("data")
    for clip, name in ((BOTTLES, BOTTLES_CLIP), (PEOPLE, PEOPLE_CLIP)):
        frames = read_frames(clip, 100)
        write_clip(folder / name, empty_frames(40, frames[0]) + frames)
    return folder


def run_notebook(path: Path) -> str:
    """Run the notebook top to bottom; returns everything its cells printed. Fails on any error output."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.output_type == "error"]
    return "".join(output.get("text", "") for output in outputs if output.output_type == "stream")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, data_that_starts_empty: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVDET_DATA", str(data_that_starts_empty))
    assert "no clip" not in run_notebook(path)


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=[] if p.name == "quickstart.ipynb" else pytest.mark.slow) for p in NOTEBOOKS],
    ids=lambda p: p.name,
)
def test_notebook_runs_from_a_fresh_clone_on_the_bundled_samples(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the shared clips (a clone on its own), each notebook says so and uses Ultralytics' sample images."""
    monkeypatch.setenv("OVDET_DATA", str(tmp_path / "no-clips-here"))
    printed = run_notebook(path)
    assert "no clip" in printed and "sample" in printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    assert all(
        not cell.get("outputs") and not cell.get("execution_count") for cell in cells if cell["cell_type"] == "code"
    )
