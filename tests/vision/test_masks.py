"""Masks out, on detections with masks made up here (no model): boundary rings and COCO run-length encoding read
back to the very same pixels, through JSONL, COCO results, Parquet and the annotated images and video."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovdet.io.masks import mask_to_rings, masks_to_rle, rings_to_mask, rle_to_mask
from ovdet.io.sinks import Annotator, CocoSink, JsonlSink
from ovdet.io.sources import Frame
from ovdet.io.video import AnnotatedVideoSink
from tests.hostile.harness import assert_valid_output

WIDTH, HEIGHT = 64, 48


def _ellipse(width: int, height: int, center: tuple[int, int], axes: tuple[int, int], angle: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, center, axes, angle, 0, 360, 1, thickness=-1)
    return mask.astype(bool)


@st.composite
def masks(draw, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """Ellipses (some cut by the border), with holes and islands in the holes, empty and one-pixel masks, thin
    lines and random noise."""
    kind = draw(st.sampled_from(["ellipse", "holes", "empty", "pixel", "line", "noise"]))
    if kind == "empty":
        return np.zeros((height, width), bool)
    if kind == "pixel":
        mask = np.zeros((height, width), bool)
        mask[draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))] = True
        return mask
    if kind == "noise":
        density = draw(st.floats(0.05, 0.95))
        return np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random((height, width)) < density
    if kind == "line":
        mask = np.zeros((height, width), np.uint8)
        points = [(draw(st.integers(-5, width + 5)), draw(st.integers(-5, height + 5))) for _ in range(2)]
        cv2.line(mask, *points, 1, thickness=1)
        return mask.astype(bool)
    center = (draw(st.integers(-10, width + 10)), draw(st.integers(-10, height + 10)))
    axes = (draw(st.integers(1, width)), draw(st.integers(1, height)))
    mask = _ellipse(width, height, center, axes, draw(st.integers(0, 179)))
    if kind == "holes":
        hole = _ellipse(width, height, center, (max(axes[0] // 2, 1), max(axes[1] // 2, 1)), 0)
        island = _ellipse(width, height, center, (max(axes[0] // 5, 1), max(axes[1] // 5, 1)), 0)
        mask = (mask & ~hole) | island
    return mask


@settings(max_examples=300, deadline=None)
@given(masks())
def test_rings_give_the_mask_back_exactly(mask: np.ndarray) -> None:
    rings = mask_to_rings(mask)
    assert np.array_equal(rings_to_mask(rings, WIDTH, HEIGHT), mask)  # IoU 1.0, holes and islands included
    assert (rings == []) == (not mask.any())
    assert all(len(ring) % 2 == 0 and all(isinstance(v, int) for v in ring) for ring in rings)


@settings(max_examples=100, deadline=None)
@given(masks())
def test_rings_read_as_coco_polygons_give_the_mask_with_its_holes_filled(mask: np.ndarray) -> None:
    rings = mask_to_rings(mask)
    filled = np.zeros((HEIGHT, WIDTH), np.uint8)
    outer, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(filled, outer, -1, 1, thickness=cv2.FILLED)
    union = np.zeros((HEIGHT, WIDTH), bool)
    for ring in rings:
        union |= rings_to_mask([ring], WIDTH, HEIGHT)
    assert np.array_equal(union, filled.astype(bool))


@settings(max_examples=100, deadline=None)
@given(st.lists(masks(), min_size=0, max_size=5))
def test_run_length_encoding_gives_the_masks_back_exactly(stack: list[np.ndarray]) -> None:
    array = np.array(stack, bool).reshape(len(stack), HEIGHT, WIDTH)
    encoded = masks_to_rle(array)
    assert json.loads(json.dumps(encoded)) == encoded  # plain JSON: counts are text
    assert [rle["size"] for rle in encoded] == [[HEIGHT, WIDTH]] * len(stack)
    for rle, mask in zip(encoded, array):
        assert np.array_equal(rle_to_mask(rle), mask)


def _detections(mask_list: list[np.ndarray]) -> sv.Detections:
    boxes = [sv.mask_to_xyxy(mask[None])[0] if mask.any() else np.zeros(4) for mask in mask_list]
    count = len(mask_list)
    return sv.Detections(
        xyxy=np.array(boxes, np.float32).reshape(count, 4),
        mask=np.array(mask_list, bool).reshape(count, HEIGHT, WIDTH),
        confidence=np.linspace(0.9, 0.5, count, dtype=np.float32),
        class_id=np.arange(count) % 2,
        data={"class_name": np.array(["cat", "dog"] * count, str)[:count]},
    )


def _same(masks_read: list[np.ndarray], masks_written: list[np.ndarray]) -> bool:
    return len(masks_read) == len(masks_written) and all(map(np.array_equal, masks_read, masks_written))


def _frames(count: int) -> list[Frame]:
    rng = np.random.default_rng(0)
    return [Frame(rng.integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8), i, i / 10, "clip.mp4") for i in range(count)]


@st.composite
def frames_of_masks(draw) -> list[list[np.ndarray]]:
    return draw(st.lists(st.lists(masks(), max_size=12), min_size=1, max_size=3))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames_of_masks())
def test_jsonl_and_coco_carry_the_masks(tmp_path: Path, per_frame: list[list[np.ndarray]]) -> None:
    jsonl, coco = tmp_path / "out.jsonl", tmp_path / "coco.json"
    jsonl.unlink(missing_ok=True)
    frames = _frames(len(per_frame))
    with JsonlSink(jsonl) as lines:
        sink = CocoSink(coco, ["cat", "dog"])
        for frame, stack in zip(frames, per_frame):
            lines.write(frame, _detections(stack))
            sink.write(frame, _detections(stack))
        sink.close()
    for path in (jsonl, coco):
        assert_valid_output(path)
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    results = json.loads(coco.read_text())
    assert len(results) == sum(map(len, per_frame))
    by_image = [[r for r in results if r["image_id"] == i + 1] for i in range(len(frames))]
    for record, stack, found in zip(records, per_frame, by_image):
        assert _same([rings_to_mask(d["polygon"], WIDTH, HEIGHT) for d in record["detections"]], stack)
        for result, mask in zip(found, stack):
            assert np.array_equal(rle_to_mask(result["segmentation"]), mask)
            assert result["area"] == int(mask.sum())
            assert int(coco_mask.area(result["segmentation"])) == mask.sum()  # pycocotools reads counts as text


def test_without_masks_no_field_is_added(tmp_path: Path) -> None:
    detections = _detections([np.ones((HEIGHT, WIDTH), bool)])
    detections.mask = None
    with JsonlSink(tmp_path / "out.jsonl") as lines:
        lines.write(_frames(1)[0], detections)
    sink = CocoSink(tmp_path / "coco.json", ["cat"])
    sink.write(_frames(1)[0], detections)
    sink.close()
    assert "polygon" not in json.loads((tmp_path / "out.jsonl").read_text())["detections"][0]
    assert set(json.loads((tmp_path / "coco.json").read_text())[0]) == {
        "image_id", "category_id", "bbox", "score", "track_id",
    }  # fmt: skip


def test_coco_segm_evaluation_of_the_results_against_the_same_masks_is_perfect(tmp_path: Path) -> None:
    stacks = [
        [_ellipse(WIDTH, HEIGHT, (20, 20), (12, 8), 30), _ellipse(WIDTH, HEIGHT, (50, 30), (10, 15), 0)],
        [_ellipse(WIDTH, HEIGHT, (0, 0), (20, 20), 0)],  # cut by the border
        [_ellipse(WIDTH, HEIGHT, (32, 24), (20, 14), 0) & ~_ellipse(WIDTH, HEIGHT, (32, 24), (8, 6), 0)],  # a hole
    ]
    sink = CocoSink(tmp_path / "coco.json", ["cat", "dog"])
    for frame, stack in zip(_frames(len(stacks)), stacks):
        sink.write(frame, _detections(stack))
    sink.close()
    results = json.loads((tmp_path / "coco.json").read_text())
    truth = COCO()
    truth.dataset = {
        "images": [{"id": i + 1, "width": WIDTH, "height": HEIGHT} for i in range(len(stacks))],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {**{k: r[k] for k in ("image_id", "category_id", "bbox", "segmentation")}, "id": n, "iscrowd": 0,
             "area": r["area"]}
            for n, r in enumerate(results, start=1)
        ],
    }  # fmt: skip
    truth.createIndex()
    evaluator = COCOeval(truth, truth.loadRes(str(tmp_path / "coco.json")), "segm")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0) and evaluator.stats[1] == pytest.approx(1.0)


def _three_masks() -> list[np.ndarray]:
    return [
        _ellipse(WIDTH, HEIGHT, (20, 20), (14, 10), 0),
        _ellipse(WIDTH, HEIGHT, (48, 30), (12, 14), 0) & ~_ellipse(WIDTH, HEIGHT, (48, 30), (5, 5), 0),
        np.zeros((HEIGHT, WIDTH), bool),
    ]


def test_annotations_draw_masks_under_the_boxes_and_labels() -> None:
    frame = _frames(1)[0]
    with_masks = _detections(_three_masks())
    without_masks = _detections(_three_masks())
    without_masks.mask = None
    annotator = Annotator()
    drawn, plain = annotator.draw(frame.image, with_masks), annotator.draw(frame.image, without_masks)
    boxes_and_labels = np.any(plain != frame.image, axis=2)
    covered = with_masks.mask.any(axis=0)
    changed = np.any(drawn != plain, axis=2)
    assert not (changed & ~covered).any()  # only mask pixels change
    assert changed[covered & ~boxes_and_labels].all()  # every mask pixel not under a box line or a label does
    assert np.array_equal(drawn[boxes_and_labels & ~covered], plain[boxes_and_labels & ~covered])
    expected = sv.LabelAnnotator(color=sv.ColorPalette.DEFAULT).annotate(
        sv.BoxAnnotator(color=sv.ColorPalette.DEFAULT).annotate(frame.image.copy(), without_masks),
        without_masks,
        labels=["cat 0.90", "dog 0.70", "cat 0.50"],
    )
    assert np.array_equal(plain, expected)  # without masks: what it drew before masks existed


def test_annotated_video_with_masks_decodes(tmp_path: Path) -> None:
    sink = AnnotatedVideoSink(tmp_path / "out.mp4", fps=10)
    for frame in _frames(3):
        sink.write(frame, _detections(_three_masks()))
    sink.close()
    assert_valid_output(tmp_path / "out.mp4")


def test_parquet_rows_carry_the_rings(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from ovdet.io.parquet import ParquetSink

    stack = _three_masks()
    sink = ParquetSink(tmp_path / "clip.parquet")
    sink.write(_frames(1)[0], _detections(stack))
    unmasked = _detections(stack)
    unmasked.mask = None
    sink.write(_frames(2)[1], unmasked)
    sink.close()
    polygons = pq.read_table(tmp_path / "clip.parquet").column("polygon").to_pylist()
    assert _same([rings_to_mask(p, WIDTH, HEIGHT) for p in polygons[:3]], stack)
    assert polygons[3:] == [None] * 3


def _moving_objects(frame_index: int) -> sv.Detections:
    """Three objects gliding right, each mask an ellipse inside its box, listed in a different order each frame."""
    order = np.roll(np.arange(3), frame_index)
    boxes = np.array([[4 + frame_index + 20 * i, 6 + 10 * i, 18 + frame_index + 20 * i, 20 + 10 * i] for i in order])
    masks = [_ellipse(WIDTH, HEIGHT, ((x1 + x2) // 2, (y1 + y2) // 2), (6, 5 + i), 0) for (x1, y1, x2, y2), i
             in zip(boxes, order)]  # fmt: skip
    detections = _detections(masks)
    detections.xyxy = boxes.astype(np.float32)
    return detections


def test_tracked_masks_stay_with_their_boxes_in_every_output(tmp_path: Path) -> None:
    from ovdet.vision.tracking import Tracker

    tracker = Tracker(fps=10)
    outputs = [tmp_path / "out.jsonl", tmp_path / "out.mp4", tmp_path / "coco.json"]
    sinks = [JsonlSink(outputs[0]), AnnotatedVideoSink(outputs[1], fps=10), CocoSink(outputs[2], ["cat", "dog"])]
    for frame in _frames(8):
        tracked = tracker.update(_moving_objects(frame.index), frame.timestamp)
        for sink in sinks:
            sink.write(frame, tracked)
    for sink in sinks:
        sink.close()
    for path in outputs:
        assert_valid_output(path)
    records = [json.loads(line) for line in outputs[0].read_text().splitlines()]
    rows = [(record, row) for record in records for row in record["detections"]]
    results = json.loads(outputs[2].read_text())
    assert len(rows) == len(results) == 24
    for (record, row), result in zip(rows, results):
        mask = rings_to_mask(row["polygon"], record["width"], record["height"])
        assert np.array_equal(mask, rle_to_mask(result["segmentation"]))
        x1, y1, x2, y2 = sv.mask_to_xyxy(mask[None])[0]
        bx1, by1, bx2, by2 = row["xyxy"]
        assert bx1 <= x1 <= x2 <= bx2 and by1 <= y1 <= y2 <= by2  # each mask inside its own box
