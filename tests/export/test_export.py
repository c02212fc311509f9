"""Exported detectors (ONNX, OpenVINO, TorchScript) detect what the PyTorch path detects, fixed or changeable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from ovdet import (
    ConfigError,
    Embeddings,
    EmbeddingSpaceError,
    MissingDependencyError,
    ModelError,
    OpenVocabDetector,
    WeightsError,
)
from ovdet.cli import main
from ovdet.runtimes.artifact import METADATA_FILE, Artifact
from tests.conftest import PEOPLE, read_frames
from tests.hostile.harness import run_cli

IMGSZ = 320
CONF = 0.01
BOX_TOLERANCE_PX = 1.0
SCORE_TOLERANCE = 1e-3
CLASSES = ["bottle", "person", "red backpack"]
SLOTS = 5  # K of the changeable exports: runs with 1, 3 and all 5 classes
MORE_CLASSES = ["bottle", "person", "red backpack", "cardboard box", "hand"]
RUNTIMES = ["onnx", "openvino", "torchscript"]
BLOCKED_MODULES = ("torch", "torchvision", "ultralytics", "open_clip")
# A fresh Python where importing torch, Ultralytics or open_clip fails, running the ovdet CLI.
TORCH_FREE_CLI = f"""
import importlib.abc, sys
BLOCKED = {BLOCKED_MODULES!r}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
sys.meta_path.insert(0, Blocker())
try:
    import torch
except ImportError:
    pass
else:
    sys.exit("torch is still importable")
from ovdet.cli import main
code = main(sys.argv[1:])
loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
sys.exit(code if not loaded else f"loaded {{loaded}}")
"""


@pytest.fixture(scope="module")
def torch_detector(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> OpenVocabDetector:
    """A PyTorch detector of the module's own, so that other tests' vocabularies do not interfere."""
    return OpenVocabDetector(
        model_path, device="cpu", imgsz=IMGSZ, cache_dir=tmp_path_factory.mktemp("export-embeddings")
    )


@pytest.fixture(scope="module")
def frames(bottle_frames: list[np.ndarray]) -> list[np.ndarray]:
    return [*bottle_frames[:3], *read_frames(PEOPLE, 1)]


@pytest.fixture(scope="module")
def exports(torch_detector: OpenVocabDetector, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``"<format>-fixed<k>"`` and ``"<format>-dynamic"`` → exported model file, each exported once per module."""
    root = tmp_path_factory.mktemp("exports")
    made = {}
    for runtime in RUNTIMES:
        made[f"{runtime}-dynamic"] = torch_detector.export(
            runtime, dynamic_vocab=True, max_classes=SLOTS, output=root / f"{runtime}-dynamic"
        )
    for count in (1, len(CLASSES), SLOTS):
        torch_detector.set_classes(MORE_CLASSES[:count])
        for runtime in RUNTIMES if count == len(CLASSES) else ["onnx"]:
            folder = root / f"{runtime}-fixed{count}"
            made[f"{runtime}-fixed{count}"] = torch_detector.export(runtime, output=folder)
    return made


def assert_same_detections(expected: sv.Detections, actual: sv.Detections, conf: float = CONF) -> None:
    """Each box clear of the threshold has a same-class partner within 1 px and 1e-3 in score, both ways."""
    assert len(expected) >= 20, f"only {len(expected)} boxes: the comparison would be weak"
    assert abs(len(expected) - len(actual)) <= 0.02 * len(expected)
    for ours, theirs in ((expected, actual), (actual, expected)):
        clear = ours.confidence > conf + SCORE_TOLERANCE  # a box at the threshold may fall either side of it
        for box, score, class_id in zip(ours.xyxy[clear], ours.confidence[clear], ours.class_id[clear]):
            partner = (
                (theirs.class_id == class_id)
                & (np.abs(theirs.xyxy - box).max(axis=1) <= BOX_TOLERANCE_PX)
                & (np.abs(theirs.confidence - score) <= SCORE_TOLERANCE)
            )
            assert partner.any(), f"no partner for class {class_id} box {box.round(1)} score {score:.4f}"


def _detect(model: Path | OpenVocabDetector, classes: list[str], frames: list[np.ndarray]) -> list[sv.Detections]:
    detector = model if isinstance(model, OpenVocabDetector) else OpenVocabDetector(model, device="cpu", imgsz=IMGSZ)
    detector.set_classes(classes)
    return detector.detect(frames, conf=CONF)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_fixed_export_matches_pytorch(runtime: str, exports: dict[str, Path], torch_detector, frames) -> None:
    expected = _detect(torch_detector, CLASSES, frames)
    exported = OpenVocabDetector(exports[f"{runtime}-fixed3"], device="cpu", imgsz=IMGSZ)
    assert exported.classes == tuple(CLASSES)
    assert exported.backend.rect, "exports take the same minimum rectangle as PyTorch"
    for want, got in zip(expected, exported.detect(frames, conf=CONF)):
        assert_same_detections(want, got)
        assert (want.data["class_name"][:5] == got.data["class_name"][:5]).all()


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("count", [1, 3, SLOTS])
def test_dynamic_export_matches_pytorch(runtime: str, count: int, exports: dict[str, Path], torch_detector, frames):
    classes = MORE_CLASSES[:count]
    expected = _detect(torch_detector, classes, frames)
    for want, got in zip(expected, _detect(exports[f"{runtime}-dynamic"], classes, frames)):
        assert_same_detections(want, got)


@pytest.mark.parametrize("count", [1, 3, SLOTS])
def test_dynamic_export_matches_the_fixed_export_of_the_same_classes(count: int, exports: dict[str, Path], frames):
    classes = MORE_CLASSES[:count]
    fixed = OpenVocabDetector(exports[f"onnx-fixed{count}"], device="cpu", imgsz=IMGSZ)
    dynamic = OpenVocabDetector(exports["onnx-dynamic"], device="cpu", imgsz=IMGSZ)
    dynamic.set_classes(classes)
    batch = fixed.detect(frames, conf=CONF)
    for want, got in zip(batch, dynamic.detect(frames, conf=CONF)):
        assert_same_detections(want, got)
        assert list(got.data["class_name"]) == [classes[i] for i in got.class_id]


def test_empty_slots_score_zero_and_do_not_change_the_real_classes(exports: dict[str, Path], frames) -> None:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(exports["onnx-dynamic"]), providers=["CPUExecutionProvider"])
    detector = OpenVocabDetector(exports["onnx-dynamic"], device="cpu", imgsz=IMGSZ)
    detector.set_classes(MORE_CLASSES[:2])
    vectors = detector.embeddings.vectors
    images = np.random.default_rng(0).random((1, 3, IMGSZ, IMGSZ), dtype=np.float32)
    slots = np.zeros((SLOTS, vectors.shape[1]), np.float32)
    slots[:2] = vectors
    padded = session.run(None, {"images": images, "text_embeddings": slots})[0]
    assert padded.shape[1] == 4 + SLOTS
    assert not padded[:, 4 + 2 :].any(), "empty slots must never score"
    slots[2:] = vectors[0]  # what the graph fills empty slots with: a duplicate cannot change C2fAttn's maximum
    duplicated = session.run(None, {"images": images, "text_embeddings": slots})[0]
    np.testing.assert_allclose(padded[:, : 4 + 2], duplicated[:, : 4 + 2], atol=1e-5)
    slots[2:] = np.eye(SLOTS - 2, vectors.shape[1], dtype=np.float32)  # other classes do change the features
    others = session.run(None, {"images": images, "text_embeddings": slots})[0]
    assert not np.allclose(padded[:, 4 : 4 + 2], others[:, 4 : 4 + 2], atol=1e-4)


def test_exported_text_encoder_equals_clip_in_pytorch(exports: dict[str, Path], torch_detector) -> None:
    prompts = ["red backpack", "person wearing sunglasses", "café au lait", "a 3-cup coffee maker!"]
    for runtime in ("onnx", "openvino"):
        encoder = OpenVocabDetector(exports[f"{runtime}-dynamic"], device="cpu").text_encoder
        assert not encoder.loaded
        np.testing.assert_allclose(encoder.encode(prompts), torch_detector.text_encoder.encode(prompts), atol=1e-5)
        assert encoder.cache_key == torch_detector.text_encoder.cache_key
        assert encoder.space == "clip:ViT-B/32"


def test_metadata_travels_with_the_artifact(exports: dict[str, Path], model_path: Path) -> None:
    from ovdet import __version__
    from ovdet.core import weights

    dynamic = Artifact.open(exports["openvino-dynamic"].parent, "openvino").metadata
    fixed = Artifact.open(exports["onnx-fixed3"], "onnx").metadata
    assert (dynamic.vocabulary, dynamic.max_classes, dynamic.classes) == ("dynamic", SLOTS, None)
    assert (fixed.vocabulary, fixed.max_classes, fixed.classes) == ("fixed", 3, tuple(CLASSES))
    for metadata in (dynamic, fixed):
        assert metadata.embedding_space == "clip:ViT-B/32" and metadata.embedding_dim == 512
        assert (metadata.imgsz, metadata.stride, metadata.precision) == (IMGSZ, 32, "fp32")
        assert metadata.source_sha256 == weights.file_sha256(model_path)
        assert metadata.ovdet_version == __version__
    assert dynamic.text_encoder is not None and fixed.text_encoder is None
    assert sorted(p.name for p in exports["openvino-dynamic"].parent.iterdir()) == [
        "bpe_simple_vocab_16e6.txt.gz", METADATA_FILE, "text-encoder.onnx", "yolov8s-worldv2.bin", "yolov8s-worldv2.xml"
    ]  # fmt: skip


@pytest.fixture
def fixed_copy(exports: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the fixed ONNX export that a test may damage."""
    return Path(shutil.copytree(exports["onnx-fixed3"].parent, tmp_path / "copy")) / exports["onnx-fixed3"].name


def _edit_metadata(model_file: Path, **changes) -> None:
    path = model_file.parent / METADATA_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f.parent / METADATA_FILE).unlink(), "is not an ovdet export"),
        (lambda f: (f.parent / METADATA_FILE).write_text("{not json"), "not valid JSON"),
        (lambda f: _edit_metadata(f, schema=99), "layout version 99"),
        (lambda f: _edit_metadata(f, max_classes=4), "needs 4 class names"),
        (lambda f: _edit_metadata(f, classes=None, vocabulary="dynamic", max_classes=3), "expected inputs images"),
        (lambda f: _edit_metadata(f, format="openvino"), r"model_file .yolov8s-worldv2.onnx. must name a \.xml file"),
        (lambda f: f.rename(f.with_name("renamed.onnx")), "incomplete"),
    ],
    ids=["no-metadata", "bad-json", "schema", "inconsistent", "graph-mismatch", "format", "missing-file"],
)
def test_loading_checks_the_metadata(fixed_copy: Path, damage, message: str) -> None:
    damage(fixed_copy)
    with pytest.raises(WeightsError, match=message):
        OpenVocabDetector(fixed_copy if fixed_copy.exists() else fixed_copy.parent, device="cpu")


def test_vocabulary_errors_say_how_to_fix_them(exports: dict[str, Path], torch_detector) -> None:
    fixed = OpenVocabDetector(exports["onnx-fixed3"], device="cpu")
    with pytest.raises(ModelError, match=r"fixed classes bottle, person, red backpack.*--dynamic-vocab"):
        fixed.set_classes(["cat"])
    with pytest.raises(ModelError, match="re-export with --dynamic-vocab"):
        _ = fixed.text_encoder
    dynamic = OpenVocabDetector(exports["onnx-dynamic"], device="cpu")
    with pytest.raises(ModelError, match=f"at most {SLOTS} classes.*--max-classes"):
        dynamic.set_classes([f"class {i}" for i in range(SLOTS + 1)])
    foreign = Embeddings(("cat",), np.ones((1, 512)), "mobileclip:S0")
    with pytest.raises(EmbeddingSpaceError, match="mobileclip:S0"):
        dynamic.set_classes(foreign)
    with pytest.raises(ModelError, match="no classes set"):
        dynamic.detect(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ModelError, match=r"export from the YOLO-World \.pt file"):
        dynamic.export("onnx")


def test_precomputed_embeddings_need_no_text_model(exports: dict[str, Path], torch_detector, frames, tmp_path):
    torch_detector.set_classes(CLASSES)
    torch_detector.embeddings.save(tmp_path / "vocab.npz")
    dynamic = OpenVocabDetector(exports["onnx-dynamic"], device="cpu", imgsz=IMGSZ)
    dynamic.set_classes(Embeddings.load(tmp_path / "vocab.npz"))
    assert dynamic._text_encoder is None, "no text encoder was created"
    assert_same_detections(torch_detector.detect(frames[0], conf=CONF), dynamic.detect(frames[0], conf=CONF))


@pytest.mark.parametrize(
    ("module", "extra"), [("onnxruntime", "onnx"), ("openvino", "openvino")], ids=["onnxruntime", "openvino"]
)
def test_a_missing_runtime_names_the_extra_to_install(
    module: str, extra: str, exports: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError, match=rf"pip install '\.\[{extra}\]'"):
        OpenVocabDetector(exports[f"{module.replace('runtime', '')}-dynamic"], device="cpu")


def test_export_options_are_checked(torch_detector, tmp_path: Path) -> None:
    work = tmp_path / "work"  # tmp_path also holds the test's embedding cache
    torch_detector.set_classes(CLASSES)
    (work / "taken").mkdir(parents=True)
    (work / "taken" / "notes.txt").write_text("mine")
    cases = [
        ({"format": "tflite"}, ConfigError, "unknown export format 'tflite'"),
        ({"max_classes": 4}, ConfigError, "add --dynamic-vocab"),
        ({"dynamic_vocab": True, "max_classes": 0}, ConfigError, "max_classes must be a positive integer"),
        ({"imgsz": 100}, ConfigError, "multiple of 32"),
        ({"half": True}, ConfigError, "needs CUDA"),
        ({"output": work / "taken"}, ConfigError, "is not an ovdet export"),
    ]
    for options, error, message in cases:
        with pytest.raises(error, match=message):
            torch_detector.export(**{"format": "onnx", "output": work / "out", **options})
    assert sorted(path.name for path in work.iterdir()) == ["taken"], "nothing is written before the checks"
    assert (work / "taken" / "notes.txt").read_text() == "mine"
    fresh = OpenVocabDetector(torch_detector.model_path, device="cpu")
    with pytest.raises(ModelError, match="none are set"):
        fresh.export("onnx")


def test_cli_exports_and_detects_with_the_export(
    model_path: Path, tmp_path: Path, capsys, frames, torch_detector
) -> None:
    folder = tmp_path / "fixed"
    image = tmp_path / "frame.jpg"
    cv2.imwrite(str(image), frames[0])
    torch_detector.set_classes(["bottle", "person"])
    torch_detector.embeddings.save(tmp_path / "vocab.npz")
    export = ["export", "--model", str(model_path), "--format", "onnx", "--imgsz", str(IMGSZ), "-o", str(folder)]
    assert main([*export, "--vocab", str(tmp_path / "vocab.npz")]) == 0
    assert f"ovdet detect SOURCE --model {folder}" in capsys.readouterr().out
    assert Artifact.open(folder, "onnx").metadata.classes == ("bottle", "person")
    assert main([*export, "--classes", "bottle,person,cup"]) == 0, "an earlier export in the folder is replaced"
    assert main([*export, "--classes", "bottle,!toy bottle"]) == 1
    assert "bakes classes only" in capsys.readouterr().err and Artifact.open(folder, "onnx").metadata.classes
    assert Artifact.open(folder, "onnx").metadata.classes == ("bottle", "person", "cup")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging folder is left behind"
    output = tmp_path / "out.jsonl"
    detect = ["detect", str(image), "--model", str(folder / "yolov8s-worldv2.onnx"), "--conf", str(CONF)]
    assert main([*detect, "--classes", "bottle,person,cup", "--output", str(output), "--quiet"]) == 0
    assert json.loads(output.read_text())["detections"]
    assert main([*detect, "--classes", "bottle"]) == 1
    assert "fixed classes bottle, person, cup" in capsys.readouterr().err
    for wrong in ([], ["--classes", "cup", "--max-classes", "4"]):
        with pytest.raises(SystemExit) as usage:
            main([*export, *wrong])
        assert usage.value.code == 2 and "--dynamic-vocab" in capsys.readouterr().err


def _read_jsonl(path: Path) -> dict[str, sv.Detections]:
    results = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        rows = record["detections"]
        results[Path(record["source"]).name] = sv.Detections(
            xyxy=np.array([row["xyxy"] for row in rows], np.float32).reshape(-1, 4),
            confidence=np.array([row["confidence"] for row in rows], np.float32),
            class_id=np.array([row["class_id"] for row in rows], int),
        )
    return results


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_torch_free_cli_detects_new_classes(runtime: str, exports: dict[str, Path], torch_detector, frames, tmp_path):
    classes = ["a", "b", "c"]
    images = {"image.png": frames[-1], "video-frame.jpg": frames[0]}
    for name, frame in images.items():
        cv2.imwrite(str(tmp_path / name), frame)
    output = tmp_path / "out.jsonl"
    env = {**os.environ, "OVDET_CACHE_DIR": str(tmp_path / "fresh-cache")}  # the exported text tower must run
    command = [sys.executable, "-c", TORCH_FREE_CLI, "detect", str(tmp_path / "*.*g"), "--model",
               str(exports[f"{runtime}-dynamic"].parent), "--classes", ",".join(classes), "--conf", str(CONF),
               "--imgsz", str(IMGSZ), "--output", str(output), "--quiet"]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    found = _read_jsonl(output)
    assert sorted(found) == sorted(images)
    torch_detector.set_classes(classes)
    for name in images:
        decoded = cv2.imread(str(tmp_path / name))  # what the CLI saw: the JPEG round trip changes pixels
        assert_same_detections(torch_detector.detect(decoded, conf=CONF), found[name])


def test_devices_are_checked_per_runtime(exports: dict[str, Path], tmp_path: Path) -> None:
    from ovdet.runtimes.onnx import execution_providers

    assert execution_providers("cuda:1", ["CUDAExecutionProvider", "CPUExecutionProvider"])[1] == "cuda:1"
    tensorrt, device = execution_providers("tensorrt", ["TensorrtExecutionProvider", "CUDAExecutionProvider"], True)
    assert device == "tensorrt:0" and tensorrt[0][1]["trt_fp16_enable"]
    with pytest.raises(ConfigError, match=r"pip install onnxruntime-gpu.*--device cpu"):
        execution_providers("cuda", ["CPUExecutionProvider"])
    with pytest.raises(ConfigError, match="unknown device 'gpu9'"):
        execution_providers("gpu9", ["CPUExecutionProvider"])
    with pytest.raises(ConfigError, match="not an OpenVINO device here"):
        OpenVocabDetector(exports["openvino-fixed3"], device="cuda")
    folder = Path(shutil.copytree(exports["torchscript-fixed3"].parent, tmp_path / "ts"))
    _edit_metadata(folder / exports["torchscript-fixed3"].name, precision="fp16", input_dtype="float16")
    with pytest.raises(ConfigError, match="exported in FP16, which runs on CUDA"):
        OpenVocabDetector(folder, device="cpu")
    (tmp_path / "model.tflite").write_bytes(b"\0")
    with pytest.raises(WeightsError, match=r"unsupported format \.tflite"):
        OpenVocabDetector(tmp_path / "model.tflite", device="cpu")


def test_an_export_runs_at_the_size_it_was_exported_for(exports: dict[str, Path]) -> None:
    assert OpenVocabDetector(exports["onnx-dynamic"]).settings.imgsz == IMGSZ != 640
    assert OpenVocabDetector(exports["onnx-dynamic"], imgsz=640).settings.imgsz == 640


def test_a_fixed_export_detects_its_baked_classes_when_given_none(exports: dict[str, Path], frames, tmp_path, capfd):
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), frames[0])
    output = tmp_path / "out.jsonl"
    model = exports[f"onnx-fixed{len(CLASSES)}"].parent
    result = run_cli(["detect", image, "--model", model, "--conf", CONF, "--output", output, "--quiet"], capfd)
    assert result.code == 0, result.err
    names = {row["class_name"] for row in json.loads(output.read_text())["detections"]}
    assert names and names <= set(CLASSES)
