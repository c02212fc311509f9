"""Bad outlines in segment ground truth — odd coordinate counts, points outside the image, fewer than 3 points,
text for numbers, run-length encoding of another size, boxes without polygons — each refused by ``ovdet eval
--task segment`` in one line that names the file and the line (YOLO-seg) or the annotation (COCO), before any
model loads, with the data left byte-identical."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.hostile.harness import assert_error, run_cli, unchanged

WIDTH, HEIGHT = 40, 30
GOOD_POLYGON = "0 0.1 0.1 0.6 0.1 0.5 0.8"
GOOD_OUTLINE = [4.0, 3.0, 24.0, 3.0, 20.0, 24.0]

YOLO_CASES = [
    pytest.param("0 0.1 0.1 0.6 0.1 0.5", ["a.txt:2", "odd number"], id="odd-count"),
    pytest.param("0 0.1 0.1 0.6 0.1 0.5 0.8 0.3", ["a.txt:2", "odd number"], id="odd-count-long"),
    pytest.param("0 0.1 0.1 1.6 0.1 0.5 0.8", ["a.txt:2", "1.6", "not normalised to [0, 1]"], id="out-of-range"),
    pytest.param("0 0.1 -0.2 0.6 0.1 0.5 0.8", ["a.txt:2", "-0.2", "not normalised"], id="negative"),
    pytest.param("0 0.1 0.1", ["a.txt:2", "at least 3 points"], id="one-point"),
    pytest.param("0 0.1 0.1 0.6 0.1 0.5 nan", ["a.txt:2", "finite numbers"], id="not-a-number"),
    pytest.param("0 0.1 0.1 0.6 0.1 0.9 0.1", ["a.txt:2", "encloses no area"], id="collinear"),
    pytest.param("0 0.5 0.5 0.2 0.2", ["a.txt:2", "has a box but no polygon", "--task detect"], id="box-only"),
    pytest.param("3 0.1 0.1 0.6 0.1 0.5 0.8", ["a.txt:2", "class 3 is outside"], id="unknown-class"),
]


def _image(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / name), np.full((HEIGHT, WIDTH, 3), 127, np.uint8))


@pytest.mark.parametrize(("line", "mentions"), YOLO_CASES)
def test_bad_yolo_seg_lines(tmp_path: Path, capfd, line: str, mentions: list[str]) -> None:
    data = tmp_path / "data"
    _image(data / "images", "a.png")
    (data / "labels").mkdir()
    (data / "labels" / "a.txt").write_text(f"{GOOD_POLYGON}\n{line}\n")
    (data / "classes.txt").write_text("cat\n")
    with unchanged(data):
        result = run_cli(["eval", "--task", "segment", "--data", data, "--classes", "cat"], capfd)
    assert_error(result, 1, *mentions)


COCO_CASES = [
    pytest.param([[4, 3, 24, 3, 20]], ["annotation 2, polygon 1", "odd number"], id="odd-count"),
    pytest.param([GOOD_OUTLINE, [4, 3, 24, 3]], ["annotation 2, polygon 2", "at least 3 points"], id="two-points"),
    pytest.param([[4, 3, 24, 3, 20, 99]], ["annotation 2, polygon 1", "outside the 40x30 image"], id="out-of-range"),
    pytest.param([[4, 3, 24, "3", 20, 24]], ["annotation 2, polygon 1", "finite numbers"], id="text-number"),
    pytest.param("4 3 24 3 20 24", ["annotation 2", "expected a list of polygons"], id="a-string"),
    pytest.param([4, 3, 24, 3, 20, 24], ["annotation 2", "expected a list of polygons"], id="flat-list"),
    pytest.param({"size": [10, 10], "counts": "06"}, ["annotation 2", "expected size [30, 40]"], id="rle-size"),
    pytest.param(None, ["annotation 2", "has a box but no polygon"], id="box-only"),
]


@pytest.mark.parametrize(("segmentation", "mentions"), COCO_CASES)
def test_bad_coco_segmentations(tmp_path: Path, capfd, segmentation, mentions: list[str]) -> None:
    data = tmp_path / "data"
    _image(data, "a.png")
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 3, 20, 21], "segmentation": [GOOD_OUTLINE]},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [4, 3, 20, 21], "segmentation": segmentation},
    ]
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": WIDTH, "height": HEIGHT}],
            "categories": [{"id": 1, "name": "cat"}], "annotations": annotations}  # fmt: skip
    (data / "coco.json").write_text(json.dumps(coco))
    with unchanged(data):
        result = run_cli(["eval", "--task", "segment", "--data", data / "coco.json", "--classes", "cat"], capfd)
    assert_error(result, 1, "coco.json: ", *mentions)
