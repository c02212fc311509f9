"""``ovdet eval`` may not write over what it reads: ``--write-vocab`` or ``--report`` on the labelled data, the
vocabulary or the calibration scenes is one usage line before any work, and every input is left as it was."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.hostile.harness import assert_error, run_cli, unchanged

CASES = {
    "vocabulary-over-the-data-yaml": (["--write-vocab", "{d}/ds/data.yaml"], ["--write-vocab", "data.yaml"]),
    "vocabulary-over-the-vocabulary-read": (["--write-vocab", "{d}/vocab.yaml"], ["--write-vocab", "--vocab"]),
    "report-into-the-data-folder": (["--report", "{d}/ds"], ["--report", "--data"]),
    "report-into-the-calibration-scenes": (
        ["--report", "{d}/scenes", "--precision", "fp32,int8", "--calibration", "{d}/scenes"],
        ["--report", "--calibration"],
    ),
}


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A one-image YOLO dataset, a vocabulary with a comment, and a folder of calibration scenes."""
    (tmp_path / "ds" / "images").mkdir(parents=True)
    (tmp_path / "ds" / "labels").mkdir()
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "ds" / "images" / "a.png"), image)
    (tmp_path / "ds" / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "ds" / "data.yaml").write_text("names: [bottle]\n")
    (tmp_path / "vocab.yaml").write_text("# my own words\nclasses:\n  bottle: [bottle, flask]\n")
    (tmp_path / "scenes").mkdir()
    cv2.imwrite(str(tmp_path / "scenes" / "s.png"), image)
    return tmp_path


@pytest.mark.parametrize("case", sorted(CASES), ids=str)
def test_eval_refuses_to_write_over_its_inputs(case: str, inputs: Path, capfd) -> None:
    flags, mentions = CASES[case]
    flags = [flag.replace("{d}", str(inputs)) for flag in flags]
    with unchanged(inputs):
        result = run_cli(["eval", "--data", inputs / "ds", "--vocab", inputs / "vocab.yaml", *flags], capfd)
    assert_error(result, 2, *mentions)
