"""``ovdet eval`` under hostile use: a report aimed into the labelled data or at files it did not write, and COCO
files and YOLO datasets that are random, huge, nested without end or of the wrong shape.

Every refusal is one ``ovdet: error:`` line before the model loads, with the data left as it was.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovdet.core.errors import SourceError, UsageError
from ovdet.evaluation import LabelledDataset, load_coco, load_yolo
from ovdet.evaluation.report_files import check_report_files, record_report_files
from ovdet.evaluation.yolo_format import MAX_TEXT_BYTES
from tests.hostile.harness import assert_clean_stderr, assert_error, run_cli, unchanged

HOSTILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A one-image YOLO dataset in ds/, the same image labelled in COCO in coco/, and a vocabulary."""
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    for folder in ("ds/images", "ds/labels", "coco"):
        (tmp_path / folder).mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "ds" / "images" / "a.png"), image)
    cv2.imwrite(str(tmp_path / "coco" / "a.png"), image)
    (tmp_path / "ds" / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "ds" / "data.yaml").write_text("names: [bottle]\n")
    (tmp_path / "coco" / "annotations.json").write_text(json.dumps(_coco()))
    (tmp_path / "vocab.yaml").write_text("classes:\n  bottle: [bottle]\n")
    return tmp_path


def _coco(**replaced) -> dict:
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]}],
        "categories": [{"id": 1, "name": "bottle"}],
    }
    return coco | replaced


def _eval(data: Path, dataset: str, capfd, *flags):
    return run_cli(["eval", "--data", data / dataset, "--vocab", data / "vocab.yaml", *flags], capfd)


# --- where the report goes --------------------------------------------------------------------------------------

LOCATIONS = {
    "yolo-images": ("ds", "ds/images", "is the dataset's images/"),
    "inside-yolo-images": ("ds", "ds/images/report", "lies inside the dataset's images/"),
    "yolo-labels": ("ds", "ds/labels", "is the dataset's labels/"),
    "inside-yolo-labels": ("ds", "ds/labels/x/report", "lies inside the dataset's labels/"),
    "yolo-data-yaml-folder": ("ds/data.yaml", "ds", "dataset folder"),
    "coco-image-folder": ("coco/annotations.json", "coco", "is the folder of the images of --data"),
}


@pytest.mark.parametrize("case", sorted(LOCATIONS))
def test_a_report_into_the_labelled_data_is_one_usage_line(case: str, data: Path, capfd) -> None:
    dataset, report, mention = LOCATIONS[case]
    with unchanged(data):
        result = _eval(data, dataset, capfd, "--report", data / report)
    assert_error(result, 2, "--report", mention, "outside the dataset")


def test_a_report_into_the_coco_images_folder_given_by_images_is_refused(data: Path, capfd) -> None:
    (data / "elsewhere.json").write_text(json.dumps(_coco()))
    with unchanged(data):
        result = _eval(data, "elsewhere.json", capfd, "--images", data / "coco", "--report", data / "coco")
    assert_error(result, 2, "--report", "--images")


FOREIGN = ["report.md", "metrics.json", "mistakes.png", "predictions.json", "predictions-chosen.json",
           "pr-bottle.png", "pr-anything.png"]  # fmt: skip


@pytest.mark.parametrize("name", FOREIGN)
def test_a_report_folder_holding_a_file_it_did_not_write_is_refused(name: str, data: Path, capfd) -> None:
    report = data / "report"
    report.mkdir()
    (report / name).write_bytes(b"a labelled image, or someone's notes")
    with unchanged(data):
        result = _eval(data, "ds", capfd, "--report", report)
    assert_error(result, 2, f"--report {report}", name, "no earlier ovdet report wrote")


@pytest.mark.parametrize("shape", ["a-folder", "a-link-out", "listed-by-a-forged-record-as-a-folder"])
def test_a_report_file_name_that_is_not_a_plain_file_is_refused(shape: str, data: Path, capfd) -> None:
    report = data / "report"
    report.mkdir()
    if shape == "a-link-out":
        os.symlink(data / "vocab.yaml", report / "report.md")
    else:
        (report / "report.md").mkdir()
    if shape.startswith("listed"):
        (report / ".ovdet-report.json").write_text(json.dumps({"files": ["report.md"]}))
    with unchanged(data / "vocab.yaml", data / "ds"):
        result = _eval(data, "ds", capfd, "--report", report)
    assert_error(result, 2, "report.md")


def test_a_report_replaces_only_what_reports_wrote(tmp_path: Path) -> None:
    record_report_files(tmp_path, ["report.md", "pr-a.png"])
    (tmp_path / "report.md").write_text("# Evaluation on ds\n")
    (tmp_path / "pr-a.png").write_bytes(b"png")
    check_report_files(tmp_path)  # its own files: fine
    (tmp_path / "mistakes.png").write_bytes(b"someone else's")
    with pytest.raises(UsageError, match=r"holds mistakes\.png"):
        check_report_files(tmp_path)


def test_a_report_folder_from_before_records_is_taken_for_a_report(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps({"as_written": {}, "chosen": {}, "ap_conf": 0.001}))
    (tmp_path / "report.md").write_text("# Evaluation on ds\n")
    (tmp_path / "pr-bottle.png").write_bytes(b"png")
    check_report_files(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"my": "numbers"}))
    with pytest.raises(UsageError, match="no earlier ovdet report wrote"):
        check_report_files(tmp_path)


@pytest.mark.parametrize("record", ["[]", "{", '{"files": "report.md"}', '{"files": [1, null]}', "[" * 100_000])
def test_a_forged_or_broken_record_protects_what_it_does_not_list(record: str, tmp_path: Path) -> None:
    (tmp_path / ".ovdet-report.json").write_text(record)
    (tmp_path / "mistakes.png").write_bytes(b"someone else's")
    with pytest.raises(UsageError, match=r"holds mistakes\.png"):
        check_report_files(tmp_path)


def test_eval_writes_its_report_twice_into_one_folder_and_nothing_else(
    data: Path, model_path: Path, session_cache: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    monkeypatch.setenv("OVDET_CACHE_DIR", str(session_cache))
    report = data / "report"
    report.mkdir()
    (report / "notes.txt").write_text("mine")
    flags = ["--report", report, "--model", model_path, "--imgsz", 160, "--device", "cpu", "--quiet"]
    with unchanged(data / "ds", report / "notes.txt"):
        assert_clean_stderr(_eval(data, "ds", capfd, *flags))
        first = sorted(path.name for path in report.iterdir())
        assert_clean_stderr(_eval(data, "ds", capfd, *flags))
    assert sorted(path.name for path in report.iterdir()) == first
    assert {"report.md", "metrics.json", "pr-bottle.png", ".ovdet-report.json"} <= set(first)


# --- hostile COCO files ------------------------------------------------------------------------------------------

_RLE = {"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "segmentation": {"size": [1e9, -1], "counts": "x"}}
COCO_FILES = {
    "lists-nested-100000-deep": b"[" * 100_000 + b"]" * 100_000,
    "objects-nested-100000-deep": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "images-nested-100000-deep": b'{"images": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "random-bytes": bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)),
    "utf16": json.dumps(_coco()).encode("utf-16"),
    "latin1-name": json.dumps(_coco(categories=[{"id": 1, "name": "bouteille é"}]), ensure_ascii=False).encode(
        "latin-1"
    ),
    "empty": b"",
    "a-list": b"[]",
    "a-number": b"1e999",
    "images-a-dict": json.dumps(_coco(images={"1": "a.png"})).encode(),
    "bbox-of-strings": json.dumps(_coco(annotations=[{"image_id": 1, "category_id": 1, "bbox": ["1"] * 4}])).encode(),
    "bbox-nan": b'{"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1, "name": "b"}], '
    b'"annotations": [{"image_id": 1, "category_id": 1, "bbox": [NaN, 1, 1, Infinity]}]}',
    "file-name-with-nul": json.dumps(_coco(images=[{"id": 1, "file_name": "a\u0000.png"}])).encode(),
    "file-name-a-lone-surrogate": b'{"images": [{"id": 1, "file_name": "\\ud800.png"}], "annotations": [], '
    b'"categories": []}',
    "id-of-10000-digits": b'{"images": [{"id": ' + b"9" * 10_000 + b', "file_name": "a.png"}]}',
    "segmentation-nested-deep": json.dumps(
        _coco(annotations=[{"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "segmentation": [[[[[1]]]]]}])
    ).encode(),
    "rle-of-the-wrong-size": json.dumps(_coco(annotations=[_RLE])).encode(),
}


@pytest.mark.parametrize("case", sorted(COCO_FILES))
def test_a_hostile_coco_file_is_one_line(case: str, data: Path, capfd) -> None:
    (data / "coco" / "annotations.json").write_bytes(COCO_FILES[case])
    with unchanged(data):
        result = _eval(data, "coco/annotations.json", capfd, "--report", data / "report")
    assert_error(result, 1, "annotations.json")
    assert not (data / "report" / "report.md").exists()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=24,
)
_IMAGES = st.fixed_dictionaries(
    {"id": _JSON | st.integers(0, 3), "file_name": _JSON | st.sampled_from(["a.png", "missing.png", "", "/"])},
    optional={"width": _JSON | st.integers(-2, 100), "height": _JSON | st.integers(-2, 100)},
)
_ANNOTATIONS = st.fixed_dictionaries(
    {"image_id": _JSON | st.integers(0, 3), "category_id": _JSON | st.integers(0, 3),
     "bbox": _JSON | st.lists(st.floats() | st.integers(-5, 80), max_size=5)},
    optional={"id": _JSON | st.integers(-1, 3), "iscrowd": _JSON, "segmentation": _JSON | st.lists(
        st.lists(st.floats(-5, 80) | st.integers(-5, 80), max_size=8), max_size=2)},
)  # fmt: skip
_CATEGORIES = st.fixed_dictionaries({"id": _JSON | st.integers(0, 3), "name": _JSON | st.sampled_from(["b", "B "])})
_COCO = _JSON | st.fixed_dictionaries(
    {"images": _JSON | st.lists(_JSON | _IMAGES, max_size=3),
     "annotations": _JSON | st.lists(_JSON | _ANNOTATIONS, max_size=4),
     "categories": _JSON | st.lists(_JSON | _CATEGORIES, max_size=3)},
)  # fmt: skip


@HOSTILE
@given(coco=_COCO, task=st.sampled_from(["detect", "segment"]))
def test_any_json_as_a_coco_file_loads_or_is_one_source_error(coco, task: str, data: Path) -> None:
    path = data / "coco" / "annotations.json"
    path.write_text(json.dumps(coco))
    try:
        dataset = load_coco(path, task=task)
    except SourceError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert isinstance(dataset, LabelledDataset) and dataset.images and dataset.objects_per_category()
    json.dumps(dataset.coco())  # what pycocotools is given is JSON data


# --- hostile YOLO datasets ---------------------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` × ``height`` pixels and holds none (a decompression bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _sparse(path: Path, size: int) -> None:
    path.write_bytes(b"")
    os.truncate(path, size)


YOLO_DATASETS = {
    "label-not-utf8": lambda ds: (ds / "labels" / "a.txt").write_bytes(b"0 0.5 0.5 0.2 0.2 \xff\n"),
    "label-over-the-size-cap": lambda ds: _sparse(ds / "labels" / "a.txt", MAX_TEXT_BYTES + 1),
    "label-of-nul-bytes": lambda ds: (ds / "labels" / "a.txt").write_bytes(b"\x00" * 64),
    "label-of-10000-digit-class": lambda ds: (ds / "labels" / "a.txt").write_text("9" * 10_000 + " .5 .5 .1 .1\n"),
    "data-yaml-not-utf8": lambda ds: (ds / "data.yaml").write_bytes(b"names: [bouteille \xe9]\n"),
    "data-yaml-nested-deep": lambda ds: (ds / "data.yaml").write_text("names: " + "[" * 5000 + "]" * 5000 + "\n"),
    "data-yaml-alias-bomb": lambda ds: (ds / "data.yaml").write_text(
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
        + "names: [*i]\n"
    ),
    "data-yaml-names-of-mappings": lambda ds: (ds / "data.yaml").write_text("names: [{a: 1}, [b]]\n"),
    "data-yaml-names-mixed-keys": lambda ds: (ds / "data.yaml").write_text("names: {0: a, x: b}\n"),
    "image-claims-a-billion-pixels": lambda ds: (ds / "images" / "b.png").write_bytes(_png_header(40_000, 40_000)),
    "image-header-only": lambda ds: (ds / "images" / "b.png").write_bytes(_png_header(64, 48)[:30]),
}


@pytest.mark.parametrize("case", sorted(YOLO_DATASETS))
def test_a_hostile_yolo_dataset_is_one_line(case: str, data: Path, capfd) -> None:
    YOLO_DATASETS[case](data / "ds")
    with unchanged(data / "ds"):
        result = _eval(data, "ds", capfd, "--report", data / "report")
    assert_error(result, 1, str(data / "ds"))
    assert not (data / "report" / "report.md").exists()


_LINE = st.lists(
    st.sampled_from(["0", "1", "-1", "0.5", "1e999", "nan", "inf", "-0", ".2", "1_0", "٣", "0x1", "2", "1.0"])
    | st.text(max_size=5),
    max_size=12,
).map(" ".join)


@HOSTILE
@given(
    label=st.lists(_LINE, max_size=6).map(lambda lines: "\n".join(lines).encode()) | st.binary(max_size=64),
    names=st.sampled_from(["names: [bottle]\n", "names: {0: bottle, 1: cup}\n", "names: []\n", "names: 7\n"]),
    task=st.sampled_from(["detect", "segment"]),
)
def test_any_label_file_loads_or_is_one_source_error(label: bytes, names: str, task: str, data: Path) -> None:
    (data / "ds" / "labels" / "a.txt").write_bytes(label)
    (data / "ds" / "data.yaml").write_text(names)
    try:
        dataset = load_yolo(data / "ds", task)
    except SourceError as exc:
        assert "\n" not in str(exc)
        return
    assert all(value >= 0 for a in dataset.annotations for value in a["bbox"][2:])
    assert set(dataset.categories.values()) <= {"bottle", "cup"}


@HOSTILE
@given(content=st.binary(max_size=80) | st.text(max_size=80).map(str.encode), kind=st.sampled_from(["yaml", "txt"]))
def test_any_names_file_loads_or_is_one_source_error(content: bytes, kind: str, data: Path) -> None:
    (data / "ds" / "data.yaml").unlink(missing_ok=True)
    (data / "ds" / "classes.txt").unlink(missing_ok=True)
    (data / "ds" / ("data.yaml" if kind == "yaml" else "classes.txt")).write_bytes(content)
    try:
        dataset = load_yolo(data / "ds")
    except SourceError as exc:
        assert "\n" not in str(exc)
        return
    assert all(isinstance(name, str) for name in dataset.categories.values())
