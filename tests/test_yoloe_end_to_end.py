"""YOLOE from words to files: ``ovdet detect`` with ``--classes`` (MobileCLIP text towers from the weights folder,
offline) writes JSONL with polygons, COCO with RLE segmentation and an annotated video; a changeable-vocabulary
export ships its family's text tower, so a torch-free deployment detects new words as PyTorch does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ovdet import OpenVocabDetector
from ovdet.cli import main
from ovdet.io.masks import rings_to_mask
from ovdet.prompts.text import text_encoder_for
from tests.conftest import BOTTLES, read_frames
from tests.export.test_yoloe_export import CONF, IMGSZ, assert_same, detect_without_torch
from tests.hostile.harness import assert_clean_stderr, decoded_frames, run_cli, unchanged
from tests.media import write_clip

FRAMES = 4
CLASSES = "bottle,hand holding a bottle"
NEW_WORDS = ["cap", "label", "shelf"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("yoloe-clip") / "bottles.mp4", read_frames(BOTTLES, FRAMES, step=40))


@pytest.mark.parametrize("name", ["yoloe-v8n-seg", "yoloe-11n-seg", "yoloe-26n-seg"])
def test_words_to_jsonl_coco_and_video_with_masks(
    name: str, clip: Path, yoloe_paths: dict, mobileclip_paths: dict, tmp_path: Path, capfd
) -> None:
    out = tmp_path / "out"
    with unchanged(clip, yoloe_paths[name]):
        result = run_cli(
            ["detect", clip, "--model", yoloe_paths[name], "--classes", CLASSES, "--conf", str(CONF), "--imgsz",
             str(IMGSZ), "--output", out / "out.jsonl", "--output", out / "out.mp4", "--coco", out / "c.json",
             "--quiet"],
            capfd,
        )  # fmt: skip
    assert_clean_stderr(result)
    records = [json.loads(line) for line in (out / "out.jsonl").read_text().splitlines()]
    assert len(records) == FRAMES
    detections = [row for record in records for row in record["detections"]]
    assert detections, "the random-init fixture is calibrated to find something at this threshold"
    assert {row["class_name"] for row in detections} <= set(CLASSES.split(","))
    for record in records:
        for row in record["detections"]:
            mask = rings_to_mask(row["polygon"], record["width"], record["height"])
            x1, y1, x2, y2 = row["xyxy"]
            ys, xs = np.nonzero(mask)
            assert len(xs) and xs.min() >= x1 - 1 and xs.max() <= x2 + 1 and ys.min() >= y1 - 1 and ys.max() <= y2 + 1
    coco = json.loads((out / "c.json").read_text())
    assert len(coco) == len(detections)
    for result_row in coco:
        assert mask_utils.area(result_row["segmentation"]) == result_row["area"] > 0
    assert decoded_frames(out / "out.mp4") == FRAMES


def test_the_classes_are_encoded_in_the_model_s_own_space(yoloe_paths: dict, mobileclip_paths: dict) -> None:
    detector = OpenVocabDetector(yoloe_paths["yoloe-26n"], device="cpu", runtime="torch", imgsz=IMGSZ)
    detector.set_classes(NEW_WORDS)
    assert detector.embeddings.space == "mobileclip2:b"
    expected = text_encoder_for("mobileclip2:b").encode(NEW_WORDS)
    np.testing.assert_allclose(detector.embeddings.vectors, expected, atol=1e-6)


def test_a_torch_free_export_detects_new_words_as_pytorch(
    yoloe_paths: dict, mobileclip_paths: dict, tmp_path: Path
) -> None:
    folder = tmp_path / "yoloe-11n-seg-onnx"
    command = ["export", "--model", str(yoloe_paths["yoloe-11n-seg"]), "--format", "onnx", "--dynamic-vocab",
               "--max-classes", "8", "--imgsz", str(IMGSZ), "-o", str(folder)]  # fmt: skip
    assert main(command) == 0
    assert json.loads((folder / "ovdet.json").read_text())["text_encoder"] is not None, "no text tower was shipped"
    frame = read_frames(BOTTLES, 1)[0]
    found = detect_without_torch(folder, frame, ["--classes", ",".join(NEW_WORDS)], tmp_path)
    torch_detector = OpenVocabDetector(yoloe_paths["yoloe-11n-seg"], device="cpu", runtime="torch", imgsz=IMGSZ)
    torch_detector.set_classes(NEW_WORDS)
    expected = torch_detector.detect(frame, conf=CONF)
    expected.mask = None
    assert_same(expected, found)
