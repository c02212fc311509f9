"""``ovdet eval`` and ``ovdet.evaluation``: data loading and its errors, metrics equal to pycocotools run directly,
the F1 threshold pick, prompt comparison, reports, and a written-back vocabulary that ``ovdet detect`` runs.

The random-init model finds mostly noise, so these tests check the harness (agreement with pycocotools, files,
write-back), not a good mAP.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovdet import SourceError, VocabularyError
from ovdet.cli import main
from ovdet.core.errors import ConfigError
from ovdet.evaluation import (
    AP_CONF,
    best_f1_point,
    coco_metrics,
    evaluate,
    load_dataset,
    match_categories,
    operating_point,
    plan_variants,
    write_report,
)
from ovdet.evaluation.metrics import OperatingPoint, threshold_between
from ovdet.evaluation.prompts import ALL_PHRASINGS, RankedVariant, best_vocabulary, rank
from ovdet.evaluation.verdicts import class_verdicts
from ovdet.prompts.vocabulary import parse_classes
from ovdet.prompts.vocabulary_files import load_vocabulary
from tests.labelled_data import coco_ground_truth, make_labelled_set, write_coco, write_yolo

VOCABULARY = """\
templates: ["a photo of a {}", "{}"]
classes:
  Bottle:                # the data says "bottle": names match case-insensitively
    prompts: [bottle, water bottle]
    conf: 0.3
    color: "#ff8800"
  person: [person, woman]
decoys: [round table]
"""
CLI_VOCABULARY = """\
classes:
  bottle:
    prompts: [bottle, water bottle]
    conf: 0.3
  person:
decoys: [round table]
"""  # fewer variants than VOCABULARY: the command runs the same loop as evaluate()


@pytest.fixture(scope="module")
def labelled():
    return make_labelled_set()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory, labelled) -> Path:
    root = tmp_path_factory.mktemp("labelled")
    write_coco(labelled, root / "coco")
    write_yolo(labelled, root / "yolo")
    (root / "vocab.yaml").write_text(VOCABULARY)
    (root / "cli-vocab.yaml").write_text(CLI_VOCABULARY)
    return root


@pytest.fixture(scope="module")
def coco_file(data_root: Path) -> Path:
    return data_root / "coco" / "annotations.json"


@pytest.fixture(scope="module")
def evaluation(session_detector, coco_file: Path, data_root: Path):
    vocabulary = load_vocabulary(data_root / "vocab.yaml")
    return evaluate(session_detector, load_dataset(coco_file), vocabulary, imgsz=320)


@pytest.fixture(scope="module")
def cli_cache(tmp_path_factory: pytest.TempPathFactory, session_detector, session_cache: Path, data_root: Path) -> Path:
    """An OVDET_CACHE_DIR holding the vocabulary's embeddings, so the CLI runs load no text model."""
    session_detector.set_classes(load_vocabulary(data_root / "vocab.yaml"))
    session_detector.set_classes(["bottle", "person"])
    root = tmp_path_factory.mktemp("cli-cache")
    shutil.copytree(session_cache, root / "embeddings")
    return root


@pytest.fixture(scope="module")
def cli_run(cli_cache: Path, data_root: Path, coco_file: Path, model_path: Path) -> dict:
    """``ovdet eval`` on the COCO set with a report and a written-back vocabulary, run once."""
    report, written = data_root / "report", data_root / "tuned.yaml"
    vocabulary = data_root / "cli-vocab.yaml"
    args = ["eval", "--data", str(coco_file), "--vocab", str(vocabulary), "--report", str(report)]
    args += ["--write-vocab", str(written), *small_model_args(model_path)]
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()) as out:
        patch.setenv("OVDET_CACHE_DIR", str(cli_cache))
        code = main(args)
    return {"code": code, "out": out.getvalue(), "report": report, "vocabulary": written}


@pytest.fixture
def warm_cache(cli_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVDET_CACHE_DIR", str(cli_cache))


def small_model_args(model_path: Path) -> list[str]:
    return ["--model", str(model_path), "--imgsz", "320", "--device", "cpu"]


def pycocotools_stats(ground_truth: Path, results: list[dict], category_id: int | None = None) -> np.ndarray:
    """COCOeval's summary numbers, run the way its documentation shows, on a file and a results list."""
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(ground_truth))
        evaluator = COCOeval(truth, truth.loadRes(copy.deepcopy(results)), "bbox")
        if category_id is not None:
            evaluator.params.catIds = [category_id]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def perfect_results(dataset) -> list[dict]:
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]), "score": 0.9}
        for a in dataset.annotations
    ]


# --- data ---------------------------------------------------------------------------------------------------------


def test_coco_and_yolo_give_the_same_ground_truth(data_root: Path, coco_file: Path, labelled) -> None:
    coco, yolo = load_dataset(coco_file), load_dataset(data_root / "yolo")
    assert coco.categories == yolo.categories == {1: "bottle", 2: "person"}
    assert [i.path.name for i in coco.images] == [i.path.name for i in yolo.images] == list(labelled.names)
    assert all((i.width, i.height) == (320, 180) for i in yolo.images)
    expected = [(i, c + 1, [x, y, w, h]) for i, boxes in enumerate(labelled.boxes, 1) for c, x, y, w, h in boxes]
    for dataset in (coco, yolo):
        found = [(a["image_id"], a["category_id"], a["bbox"]) for a in dataset.annotations]
        assert [f[:2] for f in found] == [e[:2] for e in expected]
        np.testing.assert_allclose([f[2] for f in found], [e[2] for e in expected], atol=1e-9)
    assert load_dataset(data_root / "yolo" / "data.yaml").annotations == yolo.annotations


def test_coco_images_folder_can_be_given(data_root: Path, labelled, tmp_path: Path) -> None:
    annotations = tmp_path / "elsewhere" / "annotations.json"
    annotations.parent.mkdir()
    annotations.write_text(json.dumps(coco_ground_truth(labelled, prefix="")))
    with pytest.raises(SourceError, match=r"8 image\(s\) listed in .* are missing .*--images"):
        load_dataset(annotations)
    dataset = load_dataset(annotations, images=data_root / "coco" / "images")
    assert all(image.path.is_file() for image in dataset.images)


def _coco_variant(labelled, change) -> dict:
    data = coco_ground_truth(labelled)
    change(data)
    return data


COCO_ERRORS = [
    ("not valid JSON", lambda path, data: path.write_text('{"images": [}')),
    ("no 'annotations' list", lambda path, data: path.write_text(json.dumps({**data, "annotations": None}))),
    ("bbox \\[1.0, 2.0, 3.0\\]", lambda path, data: _write_box(path, data, [1.0, 2.0, 3.0])),
    ("width and height > 0", lambda path, data: _write_box(path, data, [10, 10, -4, 20])),
    ("image id 99, which 'images' does not list", lambda path, data: _write_field(path, data, "image_id", 99)),
    ("category id 7, which 'categories' does not list", lambda path, data: _write_field(path, data, "category_id", 7)),
    ("has category_id '1'; expected an integer", lambda path, data: _write_field(path, data, "category_id", "1")),
    ("image id 1 is listed twice", lambda path, data: _write(path, {**data, "images": data["images"] * 2})),
    ("lists no images", lambda path, data: _write(path, {**data, "images": [], "annotations": []})),
    ("has no labelled objects", lambda path, data: _write(path, {**data, "annotations": []})),
    (
        "categories 1 and 2 are both named",
        lambda path, data: _write(
            path, {**data, "categories": [{"id": 1, "name": "bottle"}, {"id": 2, "name": "Bottle "}]}
        ),
    ),
]


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))


def _write_box(path: Path, data: dict, box: list) -> None:
    data["annotations"][0]["bbox"] = box
    _write(path, data)


def _write_field(path: Path, data: dict, key: str, value) -> None:
    data["annotations"][0][key] = value
    _write(path, data)


@pytest.mark.parametrize(("message", "corrupt"), COCO_ERRORS, ids=[m for m, _ in COCO_ERRORS])
def test_malformed_coco_files_are_named_errors(data_root: Path, labelled, message: str, corrupt) -> None:
    path = data_root / "coco" / "broken.json"
    corrupt(path, coco_ground_truth(labelled))
    with pytest.raises(SourceError, match=message) as error:
        load_dataset(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_a_missing_image_is_named(data_root: Path, labelled) -> None:
    data = coco_ground_truth(labelled)
    data["images"][2]["file_name"] = "images/gone.jpg"
    path = data_root / "coco" / "missing.json"
    _write(path, data)
    with pytest.raises(SourceError, match=r"1 image\(s\) listed in .*missing.json are missing \(.*gone.jpg\)"):
        load_dataset(path)


YOLO_ERRORS = [
    ("labels/frame_00.txt:1: expected 'class x_center", "frame_00.txt", "bottle 0.5 0.5 0.1 0.1\n"),
    ("labels/frame_00.txt:2: class 5 is outside the 2 names", "frame_00.txt", "0 0.5 0.5 0.1 0.1\n5 0.5 0.5 0.1 0.1\n"),
    ("not normalised to \\[0, 1\\]", "frame_00.txt", "0 160 90 20 40\n"),
    ("expected 'class x_center y_center width height' \\(or a polygon\\)", "frame_00.txt", "0 0.5 0.5 0.1\n"),
    ("has no class names", "data.yaml", None),
    ("has no labels/ folder", "labels", None),
]


@pytest.mark.parametrize(("message", "target", "content"), YOLO_ERRORS, ids=[m for m, _, _ in YOLO_ERRORS])
def test_malformed_yolo_datasets_are_named_errors(
    data_root: Path, tmp_path: Path, message: str, target: str, content: str | None
) -> None:
    folder = shutil.copytree(data_root / "yolo", tmp_path / "yolo")
    path = folder / "labels" / target if target.endswith(".txt") else folder / target
    if content is None:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    else:
        path.write_text(content)
    with pytest.raises(SourceError, match=message):
        load_dataset(folder)


def test_yolo_polygons_count_as_their_bounding_box(data_root: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(data_root / "yolo", tmp_path / "yolo")
    (folder / "labels" / "frame_00.txt").write_text("1 0.1 0.2 0.3 0.1 0.25 0.6\n")
    first = load_dataset(folder).annotations[0]
    assert first["category_id"] == 2
    np.testing.assert_allclose(first["bbox"], [32, 18, 64, 90])


def test_label_files_without_an_image_are_reported(data_root: Path, tmp_path: Path, caplog) -> None:
    folder = shutil.copytree(data_root / "yolo", tmp_path / "yolo")
    (folder / "labels" / "frame_00.txt").rename(folder / "labels" / "frame_0.txt")
    dataset = load_dataset(folder)
    assert "1 label file(s) have no image of the same name (e.g. labels/frame_0.txt)" in caplog.text
    assert not any(a["image_id"] == 1 for a in dataset.annotations)


def test_an_empty_yolo_dataset_is_an_error(tmp_path: Path) -> None:
    for folder in ("images", "labels"):
        (tmp_path / folder).mkdir()
    (tmp_path / "classes.txt").write_text("bottle\n")
    with pytest.raises(SourceError, match="lists no images"):
        load_dataset(tmp_path)


def test_data_of_an_unknown_kind_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        load_dataset(tmp_path / "labels.json")
    (tmp_path / "labels.csv").write_text("x,y\n")
    with pytest.raises(SourceError, match=r"neither a COCO \.json file nor a YOLO dataset folder"):
        load_dataset(tmp_path / "labels.csv")
    with pytest.raises(ConfigError, match="--images is for COCO data"):
        load_dataset(tmp_path, images=tmp_path)


def test_class_names_match_ignoring_case_and_spacing(coco_file: Path) -> None:
    dataset = load_dataset(coco_file)
    assert match_categories(dataset, ["PERSON", " Bottle ", "table"]) == {1: " Bottle ", 2: "PERSON"}
    with pytest.raises(VocabularyError, match=r"labels 'bottle', which the vocabulary \(person, cup\) lacks"):
        match_categories(dataset, ["person", "cup"])


def test_annotation_ids_pycocotools_would_misread_are_renumbered(coco_file: Path, tmp_path: Path) -> None:
    data = json.loads(coco_file.read_text())
    data["annotations"][0]["id"] = 0  # pycocotools' mark for "unmatched"
    path = tmp_path / "zero.json"
    images = [{**image, "file_name": str(coco_file.parent / image["file_name"])} for image in data["images"]]
    _write(path, {**data, "images": images})
    dataset = load_dataset(path)
    assert sorted(a["id"] for a in dataset.annotations) == list(range(1, len(data["annotations"]) + 1))
    assert coco_metrics(dataset, perfect_results(dataset), dataset.categories).map50 == 1.0


# --- metrics ------------------------------------------------------------------------------------------------------


def test_perfect_detections_score_one(coco_file: Path) -> None:
    dataset = load_dataset(coco_file)
    metrics = coco_metrics(dataset, perfect_results(dataset), dataset.categories)
    assert metrics.map50_95 == metrics.map50 == 1.0
    for outcome in metrics.classes.values():
        assert outcome.ap50_95 == 1.0 and all(d.correct for d in outcome.detections)
        assert all(o.correct and o.score == pytest.approx(0.9) for o in outcome.objects)
        point = best_f1_point(*outcome.score_arrays(), len(outcome.objects), AP_CONF)
        assert (point.precision, point.recall, point.f1) == (1.0, 1.0, 1.0) and point.threshold < 0.9


def test_no_detections_score_zero(coco_file: Path) -> None:
    dataset = load_dataset(coco_file)
    metrics = coco_metrics(dataset, [], dataset.categories)
    assert metrics.map50 == 0.0 and metrics.classes["person"].detections == ()
    assert metrics.classes["person"].at(0.25).recall == 0.0


def test_best_f1_threshold_on_a_known_case() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([True, True, False, True, False])
    # F1 when keeping the top 1..5: 0.4, 0.667, 0.571, 0.75, 0.667 -> keep four, so the threshold is in [0.5, 0.6)
    point = best_f1_point(scores, correct, 4, AP_CONF)
    assert point.threshold == 0.5 and point.detections == 4
    assert (point.precision, point.recall, point.f1) == (0.75, 0.75, 0.75)
    assert operating_point(scores, correct, 4, point.threshold) == point


def test_best_f1_threshold_keeps_ties_together_and_prefers_fewer_alerts() -> None:
    point = best_f1_point(np.array([0.8, 0.8, 0.4]), np.array([True, False, True]), 2, AP_CONF)
    assert point.detections == 3 and point.f1 == pytest.approx(0.8) and AP_CONF <= point.threshold < 0.4
    # Keeping the first box or all four gives the same F1 (2/3): the higher threshold wins.
    point = best_f1_point(np.array([0.9, 0.6, 0.5, 0.4]), np.array([True, False, False, True]), 2, AP_CONF)
    assert point.detections == 1 and point.f1 == pytest.approx(2 / 3) and 0.6 <= point.threshold < 0.9
    assert best_f1_point(np.array([0.9, 0.5]), np.array([False, False]), 3, AP_CONF) is None


def test_best_f1_threshold_is_the_best_of_all_thresholds() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.uniform(0.01, 1, 300), 2).astype(np.float32)  # rounded: many ties
    correct = rng.uniform(size=300) < scores
    point = best_f1_point(scores, correct, 150, AP_CONF)
    every_cut = [operating_point(scores, correct, 150, float(s) - 1e-4).f1 for s in np.unique(scores)]
    assert point.f1 == pytest.approx(max(every_cut))
    assert operating_point(scores, correct, 150, point.threshold) == point


@pytest.mark.parametrize(("low", "high"), [(0.41234, 0.4871), (0.3, 0.31), (0.001, 0.02), (0.12345, 0.123451)])
def test_thresholds_are_short_and_between_the_scores(low: float, high: float) -> None:
    low, high = float(np.float32(low)), float(np.float32(high))
    threshold = threshold_between(low, high)
    assert np.float32(low) <= np.float32(threshold) < np.float32(high)
    assert len(repr(threshold)) <= len(repr(high)) + 1


# --- prompts ------------------------------------------------------------------------------------------------------


def test_variants_change_one_class_or_the_templates(data_root: Path) -> None:
    vocabulary = load_vocabulary(data_root / "vocab.yaml")
    variants = plan_variants(vocabulary, ["Bottle", "person"])
    assert [(v.subject, v.label) for v in variants] == [
        ("Bottle", "bottle"),
        ("Bottle", "water bottle"),
        ("person", "person"),
        ("person", "woman"),
        ("templates", "a photo of a {}"),
        ("templates", "{}"),
    ]
    water = variants[1].vocabulary
    assert water.classes[0].prompts == ("water bottle",) and water.classes[1] == vocabulary.classes[1]
    assert water.decoys == vocabulary.decoys and water.templates == vocabulary.templates
    assert plan_variants(vocabulary, ["person"])[0].subject == "person"
    assert plan_variants(parse_classes("a, b"), ["a", "b"]) == []


def test_ranking_and_the_best_vocabulary(data_root: Path) -> None:
    written = RankedVariant(ALL_PHRASINGS, ("bottle", "water bottle"), 0.2, 0.4)
    singles = [RankedVariant("bottle", ("bottle",), 0.2, 0.4), RankedVariant("water bottle", ("water bottle",), 0.3, 0)]
    ranking = rank(written, singles)
    assert [v.label for v in ranking] == ["water bottle", ALL_PHRASINGS, "bottle"]
    written_templates = RankedVariant("all templates", ("a photo of a {}", "{}"), 0.1, 0.1)
    templates = rank(
        written_templates, [RankedVariant("{}", ("{}",), 0.5, 0.5), RankedVariant("x", ("a {}",), math.nan, 0)]
    )
    assert [v.label for v in templates] == ["{}", "all templates", "x"]
    best = best_vocabulary(load_vocabulary(data_root / "vocab.yaml"), {"Bottle": ranking}, templates)
    assert best.classes[0].prompts == ("water bottle",) and best.classes[1].prompts == ("person", "woman")
    assert best.templates == ("{}",) and best.classes[0].color == "#ff8800"


# --- the evaluation loop ------------------------------------------------------------------------------------------


def test_metrics_equal_pycocotools_run_directly(evaluation, coco_file: Path) -> None:
    for metrics in (evaluation.as_written, evaluation.best):
        assert metrics.results, "the recalibrated model finds boxes at conf 0.001"
        stats = pycocotools_stats(coco_file, list(metrics.results))
        assert metrics.map50_95 == pytest.approx(stats[0], abs=1e-6)
        assert metrics.map50 == pytest.approx(stats[1], abs=1e-6)
        for outcome in metrics.classes.values():
            alone = pycocotools_stats(coco_file, list(metrics.results), outcome.category_id)
            assert (outcome.ap50_95, outcome.ap50) == pytest.approx((alone[0], alone[1]), abs=1e-6)


def test_matches_are_cocoeval_matches_at_iou_half(evaluation, coco_file: Path, labelled) -> None:
    metrics = evaluation.as_written
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(coco_file))
        evaluator = COCOeval(truth, truth.loadRes(copy.deepcopy(list(metrics.results))), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
    for outcome in metrics.classes.values():
        k = evaluator.params.catIds.index(outcome.category_id)
        assert outcome.at(0.0).recall == pytest.approx(evaluator.eval["recall"][0, k, 0, -1])
        for threshold in (0.0, 0.05, 0.2):
            found = sum(o.score > threshold for o in outcome.objects)
            assert round(outcome.at(threshold).recall * len(outcome.objects)) == found
        per_image = [sum(d.image_id == i for d in outcome.detections) for i in range(1, 9)]
        assert max(per_image) <= 100  # COCO's maxDets
    assert len(metrics.classes["person"].objects) == sum(c == 1 for boxes in labelled.boxes for c, *_ in boxes)


def test_prompt_comparison_ranks_every_phrasing_and_picks_the_best(evaluation) -> None:
    assert evaluation.runs in (7, 8)  # as written, 2 + 2 phrasings, 2 templates, and the best if it differs
    for name, ranking in evaluation.phrasings.items():
        assert {v.label for v in ranking} == {
            ALL_PHRASINGS,
            *evaluation.vocabulary.classes[evaluation.vocabulary.names.index(name)].prompts,
        }
        assert [v.ap50_95 for v in ranking] == sorted((v.ap50_95 for v in ranking), reverse=True)
        chosen = evaluation.chosen.classes[evaluation.chosen.names.index(name)]
        assert chosen.prompts == ranking[0].prompts
    written = next(v for v in evaluation.phrasings["person"] if v.label == ALL_PHRASINGS)
    assert (written.ap50_95, written.ap50) == (
        evaluation.as_written.classes["person"].ap50_95,
        evaluation.as_written.classes["person"].ap50,
    )
    assert evaluation.chosen.templates == evaluation.templates[0].prompts
    assert (evaluation.best is evaluation.as_written) == (evaluation.runs == 7)


def test_chosen_thresholds_maximise_f1_on_the_chosen_vocabulary(evaluation) -> None:
    for vocabulary_class in evaluation.chosen.classes:
        outcome = evaluation.best.classes[vocabulary_class.name]
        point = best_f1_point(*outcome.score_arrays(), len(outcome.objects), AP_CONF)
        written = evaluation.vocabulary.classes[evaluation.vocabulary.names.index(vocabulary_class.name)]
        assert vocabulary_class.conf == (point.threshold if point else written.conf)
        assert evaluation.chosen_points[vocabulary_class.name] == outcome.at(vocabulary_class.conf or 0.25)
    assert {name: point.threshold for name, point in evaluation.written_points.items()} == {
        "Bottle": 0.3,
        "person": 0.25,
    }


def test_the_detector_is_left_with_the_chosen_vocabulary(evaluation, session_detector) -> None:
    session_detector.set_classes(evaluation.chosen)  # other tests may have changed it since
    assert session_detector.vocabulary == evaluation.chosen
    assert evaluation.chosen.decoys == ("round table",) and evaluation.chosen.classes[0].color == "#ff8800"


def test_an_image_of_another_size_than_labelled_is_an_error(session_detector, labelled, tmp_path: Path) -> None:
    data = coco_ground_truth(labelled)
    data["images"][0]["width"] = 640
    write_coco(labelled, tmp_path)
    _write(tmp_path / "annotations.json", data)
    with pytest.raises(SourceError, match=r"frame_00.jpg is 320x180 but .* gives 640x180"):
        evaluate(session_detector, load_dataset(tmp_path / "annotations.json"), parse_classes("bottle,person"))


def test_report_files(evaluation, tmp_path: Path) -> None:
    report = write_report(evaluation, tmp_path / "report")
    text = report.read_text()
    for heading in (
        "## In short",
        "## Per class, as written",
        "## Which phrasing works best",
        "### Bottle",
        "## Which templates work best",
        "## Alert thresholds",
        "## Worst mistakes",
        "## Chosen vocabulary",
    ):
        assert heading in text
    for name in ("pr-bottle.png", "pr-person.png", "mistakes.png"):
        assert f"]({name})" in text
        image = cv2.imread(str(tmp_path / "report" / name))
        assert image is not None and image.shape[0] > 200
    record = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert record["as_written"]["map50"] == evaluation.as_written.map50
    assert record["as_written"]["classes"]["person"]["objects"] == len(evaluation.as_written.classes["person"].objects)
    predictions = json.loads((tmp_path / "report" / record["chosen"]["predictions"]).read_text())
    assert predictions == [dict(r) for r in evaluation.best.results]


# --- the command --------------------------------------------------------------------------------------------------


def test_cli_eval_on_coco_writes_the_report_and_matches_pycocotools(cli_run: dict, coco_file: Path, labelled) -> None:
    assert cli_run["code"] == 0
    out = cli_run["out"]
    assert f"8 images, {labelled.objects} objects, 2 class(es)" in out
    assert "as written: mAP50-95" in out and "chosen: mAP50-95" in out
    assert f"→ {cli_run['vocabulary']}" in out
    record = json.loads((cli_run["report"] / "metrics.json").read_text())
    for key in ("as_written", "chosen"):
        results = json.loads((cli_run["report"] / record[key]["predictions"]).read_text())
        stats = pycocotools_stats(coco_file, results)
        assert record[key]["map50_95"] == pytest.approx(stats[0], abs=1e-6)
        assert record[key]["map50"] == pytest.approx(stats[1], abs=1e-6)
    assert sorted(p.name for p in cli_run["report"].glob("*.png")) == ["mistakes.png", "pr-bottle.png", "pr-person.png"]


def test_cli_write_vocab_drives_detect(cli_run: dict, data_root: Path, model_path: Path, warm_cache, capsys) -> None:
    vocabulary = load_vocabulary(cli_run["vocabulary"])
    assert cli_run["vocabulary"].read_text().startswith("# chosen by ovdet eval on")
    record = json.loads((cli_run["report"] / "metrics.json").read_text())
    assert vocabulary.to_dict() == record["vocabulary"]
    assert vocabulary.names == ("bottle", "person") and vocabulary.decoys == ("round table",)
    assert list(vocabulary.classes[0].prompts) == record["phrasings"]["bottle"][0]["prompts"]
    assert vocabulary.classes[1].prompts == ("person",) and list(record["phrasings"]) == ["bottle"]
    for c in vocabulary.classes:
        assert c.conf == record["chosen"]["classes"][c.name]["threshold"]
    out = data_root / "detections.jsonl"
    images = data_root / "coco" / "images"
    args = ["detect", str(images), "--vocab", str(cli_run["vocabulary"]), "--output", str(out), "--quiet"]
    code = main([*args, *small_model_args(model_path)])
    assert code == 0, capsys.readouterr().err
    rows = [row for line in out.read_text().splitlines() for row in json.loads(line)["detections"]]
    conf = {c.name: c.conf or 0.25 for c in vocabulary.classes}  # 0.25: --conf's default
    assert rows and all(row["class_name"] in conf for row in rows)
    assert all(row["confidence"] >= conf[row["class_name"]] for row in rows)  # JSONL scores have 5 decimals


def test_cli_eval_on_yolo_matches_pycocotools(
    data_root: Path, labelled, model_path: Path, warm_cache, tmp_path: Path, capsys
) -> None:
    report = tmp_path / "report"
    args = ["eval", "--data", str(data_root / "yolo"), "--classes", "bottle,person", "--report", str(report)]
    code = main([*args, *small_model_args(model_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1 run(s)" in captured.out and "Every class has one phrasing" in (report / "report.md").read_text()
    truth = tmp_path / "truth.json"
    _write(truth, coco_ground_truth(labelled))
    record = json.loads((report / "metrics.json").read_text())
    stats = pycocotools_stats(truth, json.loads((report / "predictions.json").read_text()))
    assert (record["as_written"]["map50_95"], record["as_written"]["map50"]) == pytest.approx(stats[:2], abs=1e-6)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--classes", "bottle,cup"], 1, "labels 'person', which the vocabulary (bottle, cup) lacks"),
        (["--classes", "bottle,person", "--write-vocab", "out.npz"], 2, "must end in .yaml"),
        (["--classes", "bottle,person", "--images", "{root}"], 2, "--images is for COCO data"),
        (["--classes", "bottle,person", "--conf", "3"], 2, "conf must be"),
        (["--classes", "bottle,person", "--fps", "0"], 2, "--fps 0 is not a frame rate"),
    ],
)
def test_cli_errors_are_one_line_before_any_model_loads(
    data_root: Path, args: list[str], code: int, message: str, capsys
) -> None:
    args = [a.format(root=data_root) for a in args]
    exit_code = main(["eval", "--data", str(data_root / "yolo"), "--model", "no-such-model.pt", *args])
    err = capsys.readouterr().err
    assert exit_code == code and message in err and err.count("\n") == 1


def test_cli_eval_needs_data_and_a_vocabulary(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--data", "x.json"])
    assert exit_info.value.code == 2 and "--vocab" in capsys.readouterr().err


# --- verdicts a ward team can read --------------------------------------------------------------------------------

VERDICT = re.compile(r"^(not )?reliable at \d\.\d\d: finds \d+ of \d+, [\d.]+ false alarms? per 100 images")


def test_verdict_rule_on_known_cases() -> None:
    point = OperatingPoint(0.31, precision=18 / 19, recall=0.9, f1=0.92, detections=19)
    weak = OperatingPoint(0.123, precision=0.5, recall=0.5, f1=0.5, detections=10)
    names = ("pump", "syringe", "bed")
    verdicts = class_verdicts(names, {"pump": point, "syringe": weak}, {"pump": 20, "syringe": 10}, 100, 10)
    assert [v.reliable for v in verdicts] == [True, False, None]
    assert verdicts[0].text == (
        "reliable at 0.31: finds 18 of 20, 1 false alarm per 100 images (360 false alarms per hour of video at "
        "10 frames/s)"
    )
    assert verdicts[0].false_alarms_per_hour == pytest.approx(1 / 100 * 10 * 3600)
    assert verdicts[1].text.startswith("not reliable at 0.12: finds 5 of 10, 5 false alarms per 100 images")
    assert "misses more than 20%" in verdicts[1].text and "more than 20% of its boxes are wrong" in verdicts[1].text
    assert verdicts[2].text == "not evaluated: no labelled examples"
    few = class_verdicts(("pump",), {"pump": point}, {"pump": 9}, 100, None)[0]
    assert few.reliable is False and "only 9 labelled example(s), 10 needed" in few.text and "per hour" not in few.text


def test_report_lists_every_class_with_its_verdict(session_detector, coco_file: Path, tmp_path: Path) -> None:
    vocabulary = parse_classes("bottle,person,wheelchair")  # the data has no wheelchair
    evaluation = evaluate(session_detector, load_dataset(coco_file), vocabulary, imgsz=160)
    report = write_report(evaluation, tmp_path / "report", fps=10).read_text()
    section = report.split("## Can we rely on it?")[1].split("\n## ")[0]
    rows = dict(re.findall(r"^\| (\w+) \| (.+) \|$", section, flags=re.M))
    assert list(rows) == ["class", "bottle", "person", "wheelchair"]  # the header, then every vocabulary class
    assert rows["wheelchair"] == "not evaluated: no labelled examples"
    for name in ("bottle", "person"):
        assert VERDICT.match(rows[name]) and "per hour of video at 10 frames/s" in rows[name], rows[name]
    thresholds = re.findall(r"^\| (?:bottle|person) \| [^|]+ \| (\S+) \|", report.split("## Alert thresholds")[1], re.M)
    assert thresholds and all(re.fullmatch(r"\d\.\d\d", t) for t in thresholds)
    record = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert record["verdicts"]["wheelchair"] == {
        "reliable": None,
        "text": rows["wheelchair"],
        "false_alarms_per_hour": None,
    }
    assert record["fps"] == 10


def test_cli_prints_a_verdict_per_class(cli_run: dict) -> None:
    lines = cli_run["out"].split("verdict per class (chosen vocabulary):\n")[1].splitlines()
    assert [line.split(":")[0].strip() for line in lines[:2]] == ["bottle", "person"]
    assert all(VERDICT.match(line.split(": ", 1)[1]) for line in lines[:2]), lines
    assert "Can we rely on it?" in (cli_run["report"] / "report.md").read_text()
