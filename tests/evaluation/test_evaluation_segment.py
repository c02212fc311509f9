"""``ovdet eval --task segment``: outlines read from YOLO-seg and COCO ground truth, masks scored by pycocotools'
``iouType="segm"`` beside the boxes, on detectors made up here that return known masks (no model needed)."""

from __future__ import annotations

import json
from itertools import cycle
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovdet.core.config import InferenceSettings
from ovdet.core.errors import SourceError
from ovdet.evaluation import coco_metrics, evaluate, load_dataset
from ovdet.evaluation.labelled import LabelledDataset
from ovdet.prompts.vocabulary import Vocabulary
from tests.hostile.harness import assert_clean_stderr, assert_error, run_cli

NAMES = ("cat", "dog")
WIDTH, HEIGHT = 80, 60
# Per image, its objects: (class index, centre, axes, angle) of an ellipse.
OBJECTS = (
    ((0, (20, 20), (12, 9), 20), (1, (55, 35), (14, 18), 0)),
    ((1, (40, 30), (30, 20), 45),),
    ((0, (10, 50), (9, 6), 0), (0, (65, 12), (10, 8), 80), (1, (40, 40), (8, 12), 10)),
)


def _outline(center: tuple[int, int], axes: tuple[int, int], angle: int) -> np.ndarray:
    return cv2.ellipse2Poly(center, axes, angle, 0, 360, 15).astype(float)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same objects as a YOLO-seg folder (``yolo/``) and a COCO file with polygons (``coco.json``)."""
    root = tmp_path_factory.mktemp("segments")
    (root / "yolo" / "images").mkdir(parents=True)
    (root / "yolo" / "labels").mkdir()
    (root / "yolo" / "data.yaml").write_text(f"names: [{', '.join(NAMES)}]\n")
    rng = np.random.default_rng(0)
    coco = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)]}
    for number, objects in enumerate(OBJECTS, start=1):
        name = f"image_{number}.png"
        cv2.imwrite(str(root / "yolo" / "images" / name), rng.integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8))
        coco["images"].append({"id": number, "file_name": f"yolo/images/{name}", "width": WIDTH, "height": HEIGHT})
        lines = []
        for class_index, *ellipse in objects:
            outline = _outline(*ellipse)
            lines.append(" ".join([str(class_index), *(f"{v:.6f}" for v in (outline / (WIDTH, HEIGHT)).ravel())]))
            (x1, y1), (x2, y2) = outline.min(axis=0), outline.max(axis=0)
            coco["annotations"].append(
                {"id": len(coco["annotations"]) + 1, "image_id": number, "category_id": class_index + 1,
                 "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                 "segmentation": [outline.ravel().tolist()], "iscrowd": 0}
            )  # fmt: skip
        (root / "yolo" / "labels" / f"image_{number}.txt").write_text("\n".join(lines) + "\n")
    (root / "coco.json").write_text(json.dumps(coco))
    return root


def test_yolo_seg_and_coco_polygons_give_the_same_outlines(data: Path) -> None:
    yolo, coco = load_dataset(data / "yolo", task="segment"), load_dataset(data / "coco.json", task="segment")
    assert len(yolo.annotations) == len(coco.annotations) == sum(map(len, OBJECTS))
    for from_yolo, from_coco in zip(yolo.annotations, coco.annotations):
        np.testing.assert_allclose(from_yolo["segmentation"], from_coco["segmentation"], atol=1e-3)
        np.testing.assert_allclose(from_yolo["bbox"], from_coco["bbox"], atol=1e-3)


def _truth_masks(dataset: LabelledDataset) -> dict[int, list[tuple[str, np.ndarray]]]:
    """Per image id, its objects as (class name, mask), rasterised by pycocotools from the outlines."""
    index = COCO()
    index.dataset = dataset.coco()
    index.createIndex()
    return {
        image.id: [
            (dataset.categories[a["category_id"]], index.annToMask(a).astype(bool)) for a in index.imgToAnns[image.id]
        ]
        for image in dataset.images
    }


class MaskedDetector:
    """Finds every labelled object with its own box and its mask passed through ``change``; images in order."""

    task = "segment"
    model_path = Path("made-up-seg.pt")

    def __init__(self, dataset: LabelledDataset, change=lambda mask: mask) -> None:
        self.settings = InferenceSettings()
        self._objects = cycle([_truth_masks(dataset)[image.id] for image in dataset.images])
        self._change = change

    def set_classes(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary

    def detect_arrays(self, images: list[np.ndarray], settings: InferenceSettings) -> list[sv.Detections]:
        return [self._detections(next(self._objects)) for _ in images]

    def _detections(self, objects: list[tuple[str, np.ndarray]]) -> sv.Detections:
        masks = np.array([self._change(mask) for _, mask in objects], bool)
        return sv.Detections(
            xyxy=sv.mask_to_xyxy(np.array([mask for _, mask in objects])).astype(np.float32),
            mask=masks,
            confidence=np.linspace(0.9, 0.6, len(objects), dtype=np.float32),
            class_id=np.array([NAMES.index(name) for name, _ in objects]),
            data={"class_name": np.array([name for name, _ in objects], str)},
        )


@pytest.mark.parametrize("source", ["yolo", "coco.json"])
def test_perfect_masks_score_one_and_worse_masks_less_with_the_boxes_unchanged(data: Path, source: str) -> None:
    dataset = load_dataset(data / source, task="segment")
    perfect = evaluate(MaskedDetector(dataset), dataset, Vocabulary.from_names(NAMES)).as_written
    assert perfect.mask_map50_95 == pytest.approx(1.0) and perfect.mask_map50 == pytest.approx(1.0)
    assert all("segmentation" in result for result in perfect.results)

    eroded = MaskedDetector(dataset, lambda mask: cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    worse = evaluate(eroded, dataset, Vocabulary.from_names(NAMES)).as_written
    assert worse.mask_map50_95 < 0.9 * perfect.mask_map50_95
    assert (worse.map50_95, worse.map50) == (perfect.map50_95, perfect.map50)  # the same boxes


def test_mask_metrics_equal_pycocotools_run_directly(data: Path) -> None:
    dataset = load_dataset(data / "coco.json", task="segment")
    dilated = MaskedDetector(dataset, lambda mask: cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    metrics = evaluate(dilated, dataset, Vocabulary.from_names(NAMES)).as_written
    truth = COCO(str(data / "coco.json"))
    evaluator = COCOeval(truth, truth.loadRes([dict(r) for r in metrics.results]), "segm")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert (metrics.mask_map50_95, metrics.mask_map50) == pytest.approx(tuple(evaluator.stats[:2]), abs=1e-12)
    assert 0 < metrics.mask_map50_95 < 1


def test_box_metrics_alone_without_masks(data: Path) -> None:
    dataset = load_dataset(data / "coco.json")
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
               for a in dataset.annotations]  # fmt: skip
    metrics = coco_metrics(dataset, results, {1: "cat", 2: "dog"})
    assert metrics.map50_95 == pytest.approx(1.0) and metrics.mask_map50_95 is None


def test_a_segmenting_detector_needs_outlines_in_the_data(data: Path, tmp_path: Path) -> None:
    coco = json.loads((data / "coco.json").read_text())
    del coco["annotations"][2]["segmentation"]
    (tmp_path / "boxes.json").write_text(json.dumps(coco))
    dataset = load_dataset(tmp_path / "boxes.json", images=data)  # fine for boxes
    with pytest.raises(SourceError, match="object 3 has a box but no polygon"):
        evaluate(MaskedDetector(load_dataset(data / "coco.json")), dataset, Vocabulary.from_names(NAMES))


def test_cli_segment_on_box_only_labels_is_one_line_naming_the_line(data: Path, tmp_path: Path, capfd) -> None:
    folder = tmp_path / "yolo"
    (folder / "labels").mkdir(parents=True)
    (folder / "images").symlink_to(data / "yolo" / "images")
    (folder / "data.yaml").write_text(f"names: [{', '.join(NAMES)}]\n")
    (folder / "labels" / "image_1.txt").write_text("0 0.2 0.3 0.1 0.1 0.2 0.4 0.3 0.5\n1 0.5 0.5 0.2 0.2\n")
    result = run_cli(["eval", "--task", "segment", "--data", folder, "--classes", ",".join(NAMES)], capfd)
    assert_error(result, 1, "image_1.txt:2", "has a box but no polygon", "--task detect")


def test_cli_segment_with_a_model_without_masks_is_one_line(data: Path, model_path: Path, capfd) -> None:
    args = ["--model", model_path, "--classes", ",".join(NAMES), "--imgsz", 160]
    evaluated = run_cli(["eval", "--task", "segment", "--data", data / "coco.json", *args], capfd)
    assert_error(evaluated, 2, model_path.name, "mask", "-seg")
    image = data / "yolo" / "images" / "image_1.png"
    detected = run_cli(["detect", image, "--task", "segment", "--output", "out.jsonl", *args], capfd)
    assert_error(detected, 2, model_path.name, "mask", "-seg")


def test_console_and_report_give_mask_map_beside_box_map(data: Path, tmp_path: Path, capsys) -> None:
    from ovdet.commands.evaluate import _show
    from ovdet.evaluation import write_report

    dataset = load_dataset(data / "coco.json", task="segment")
    evaluation = evaluate(MaskedDetector(dataset), dataset, Vocabulary.from_names(NAMES))
    capsys.readouterr()
    _show(evaluation, 1.0, None, None, None)
    shown = capsys.readouterr().out
    box = f"mAP50-95 {evaluation.as_written.map50_95:.3f}, mAP50 {evaluation.as_written.map50:.3f}"
    assert f"as written: {box}; masks: mAP50-95 1.000, mAP50 1.000" in shown, shown
    report = write_report(evaluation, tmp_path / "report").read_text()
    assert "| vocabulary | box mAP50-95 | box mAP50 | mask mAP50-95 | mask mAP50 |" in report
    assert "| 1.000 | 1.000 |\n" in report.split("## In short")[1].split("##")[0]
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())["as_written"]
    assert (metrics["mask_map50_95"], metrics["mask_map50"]) == (1.0, 1.0)


def test_the_detector_says_what_it_does(session_detector) -> None:
    assert session_detector.task == "detect"  # YOLO-World has no mask branch


def test_eval_scores_a_yoloe_seg_model_s_masks(
    data: Path, yoloe_paths: dict, mobileclip_paths: dict, tmp_path: Path, capfd
) -> None:
    result = run_cli(
        ["eval", "--task", "segment", "--data", data / "yolo", "--model", yoloe_paths["yoloe-26n-seg"], "--classes",
         "cat,dog", "--imgsz", "160", "--report", tmp_path / "report", "--quiet"],
        capfd,
    )  # fmt: skip
    assert_clean_stderr(result)
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())["as_written"]
    assert 0.0 <= metrics["mask_map50_95"] <= metrics["mask_map50"] <= 1.0
