"""Files trusted for what they are not (issue 23): a swapped TorchScript export, another model under a registry
name, another space's text tower, and a ``.pt`` given to an install without torch.

Each refusal is one ``ovdet: error:`` line, exit 1, inputs byte-identical, and no digest pinned for what was
refused; the genuine file is then accepted (and pinned where the registry pins).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ovdet import Embeddings, OpenVocabDetector, WeightsError
from ovdet.core import weights
from ovdet.prompts.spaces import SPACES
from tests import weights_fixtures
from tests.export.test_export import TORCH_FREE_CLI
from tests.hostile.code_payloads import script_setstate
from tests.hostile.harness import assert_clean_stderr, assert_error, run_cli, unchanged

DETECT = ["--device", "cpu", "--imgsz", "160", "--quiet", "--no-save"]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "inputs" / "frame.png"
    path.parent.mkdir()
    picture = np.zeros((96, 128, 3), np.uint8)
    cv2.rectangle(picture, (20, 20), (70, 80), (0, 200, 255), -1)
    cv2.imwrite(str(path), picture)
    coco = {
        "images": [{"id": 1, "file_name": "frame.png", "width": 128, "height": 96}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [20, 20, 50, 60], "area": 3000, "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "bottle"}],
    }
    (path.parent / "annotations.json").write_text(json.dumps(coco))
    return path


# --- a TorchScript export is loaded only when its graph is the one its ovdet.json records ---------------------


@pytest.fixture(scope="module")
def script_export(session_detector, tmp_path_factory: pytest.TempPathFactory) -> Path:
    session_detector.set_classes(["bottle", "person"])
    return session_detector.export("torchscript", imgsz=160, output=tmp_path_factory.mktemp("ts") / "e")


def _swap_for_payload(folder: Path, graph: Path, marker: Path) -> None:
    script_setstate(graph, marker)


def _swap_for_other_graph(folder: Path, graph: Path, marker: Path) -> None:
    torch.jit.save(torch.jit.trace(torch.nn.Conv2d(3, 6, 1), torch.zeros(1, 3, 32, 32)), str(graph))


def _alter_one_byte(folder: Path, graph: Path, marker: Path) -> None:
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))


def _edit_metadata(**fields):
    def edit(folder: Path, graph: Path, marker: Path) -> None:
        metadata = json.loads((folder / "ovdet.json").read_text())
        metadata.update(fields)
        metadata = {key: value for key, value in metadata.items() if value is not _DROP}
        (folder / "ovdet.json").write_text(json.dumps(metadata))

    return edit


_DROP = object()
TAMPERS = {
    "graph-swapped-for-setstate-payload": (_swap_for_payload, "was swapped or altered"),
    "graph-swapped-for-another-graph": (_swap_for_other_graph, "was swapped or altered"),
    "graph-one-byte-altered": (_alter_one_byte, "was swapped or altered"),
    "digest-absent-earlier-export": (_edit_metadata(model_sha256=_DROP), "records no SHA-256"),
    "digest-not-hex": (_edit_metadata(model_sha256="../../etc/passwd"), "is not a SHA-256"),
    "digest-of-another-file": (_edit_metadata(model_sha256="0" * 64), "was swapped or altered"),
}
_DATA = "{image_folder}/annotations.json"
EXPORT_PLACES = {  # the ovdet command; {model} is the export folder or its graph file
    "detect-folder": ("detect", "{image}", "--model", "{folder}", "--classes", "bottle", *DETECT),
    "detect-graph-file": ("detect", "{image}", "--model", "{graph}", *DETECT),
    "embed-model": ("embed", "--classes", "a", "--model", "{folder}", "-o", "{image_folder}/v.npz"),
    "eval-model": ("eval", "--data", _DATA, "--classes", "bottle", "--model", "{folder}"),
}


def _fill(args: tuple[str, ...], image: Path, **paths: Path) -> list[str]:
    return [arg.format(image=image, image_folder=image.parent, **paths) for arg in args]


def test_a_torchscript_export_records_its_graphs_digest_and_loads(script_export: Path, image: Path, capfd) -> None:
    metadata = json.loads((script_export.parent / "ovdet.json").read_text())
    assert metadata["model_sha256"] == hashlib.sha256(script_export.read_bytes()).hexdigest()
    result = run_cli(["detect", image, "--model", script_export.parent, *DETECT], capfd)
    assert_clean_stderr(result)


@pytest.mark.parametrize("place", list(EXPORT_PLACES))
@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_a_torchscript_export_whose_graph_is_not_the_recorded_one_is_refused(
    tamper: str, place: str, script_export: Path, image: Path, tmp_path: Path, capfd
) -> None:
    folder, marker = tmp_path / "export", tmp_path / "PAYLOAD-RAN"
    shutil.copytree(script_export.parent, folder)
    graph = folder / script_export.name
    change, says = TAMPERS[tamper]
    change(folder, graph, marker)
    with unchanged(folder, image.parent):
        result = run_cli(_fill(EXPORT_PLACES[place], image, folder=folder, graph=graph), capfd)
    assert not marker.exists(), "the graph's code ran"
    assert_error(result, 1, says)


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_python_api_refuses_a_swapped_torchscript_export(tamper: str, script_export: Path, tmp_path: Path) -> None:
    folder, marker = tmp_path / "export", tmp_path / "PAYLOAD-RAN"
    shutil.copytree(script_export.parent, folder)
    TAMPERS[tamper][0](folder, folder / script_export.name, marker)
    with pytest.raises(WeightsError, match=TAMPERS[tamper][1]):
        OpenVocabDetector(folder, device="cpu")
    assert not marker.exists(), "the graph's code ran"


# --- a registry file holding another model is refused before it is pinned --------------------------------------

IMPOSTORS = {  # (checkpoint it really is, registry name it is saved under) → (genuine checkpoint, its space)
    ("yolov8s-worldv2", "yoloe-11s-seg"): ("yoloe-11n-seg", "mobileclip:blt"),
    ("yoloe-26n-seg", "yoloe-11s-seg"): ("yoloe-11n-seg", "mobileclip:blt"),
    ("yoloe-11n", "yoloe-11s-seg"): ("yoloe-11n-seg", "mobileclip:blt"),
    ("yoloe-v8n-seg", "yoloe-26n-seg"): ("yoloe-26n-seg", "mobileclip2:b"),
    ("yoloe-26n", "yoloe-26s-seg"): ("yoloe-26n-seg", "mobileclip2:b"),
    ("yoloe-11n-seg", "yolov8s-worldv2"): ("yolov8s-worldv2", "clip:ViT-B/32"),
    ("yoloe-26n-seg", "yolov8m-world"): ("yolov8s-worldv2", "clip:ViT-B/32"),
}


def _checkpoint(name: str, yoloe_paths: dict[str, Path], model_path: Path) -> Path:
    return model_path if name == "yolov8s-worldv2" else yoloe_paths[name]


@pytest.mark.parametrize(("real", "registry"), list(IMPOSTORS))
def test_another_model_under_a_registry_name_is_refused_then_the_genuine_one_is_pinned(
    real: str, registry: str, yoloe_paths, model_path: Path, image: Path, tmp_path: Path, capfd, monkeypatch
) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("OVDET_WEIGHTS_DIR", str(folder))
    genuine, space = IMPOSTORS[real, registry]
    Embeddings(["bottle"], weights_fixtures.random_text_features(1, seed=1)[0].numpy(), space).save(tmp_path / "v.npz")
    command = ["detect", image, "--model", registry, "--vocab", tmp_path / "v.npz", *DETECT]
    shutil.copy(_checkpoint(real, yoloe_paths, model_path), folder / f"{registry}.pt")
    with unchanged(folder, image.parent):
        result = run_cli(command, capfd)
    assert_error(result, 1, registry, "another model saved under its name", "nor its SHA-256 pinned")
    assert not (folder / weights.SUMS_FILE).exists(), "the impostor's digest was pinned"
    shutil.copy(_checkpoint(genuine, yoloe_paths, model_path), folder / f"{registry}.pt")
    assert_clean_stderr(run_cli(command, capfd))
    digest = hashlib.sha256((folder / f"{registry}.pt").read_bytes()).hexdigest()
    assert (folder / weights.SUMS_FILE).read_text() == f"{digest}  {registry}.pt\n"


# --- a text tower of another space is refused, naming both spaces ------------------------------------------------

TOWER_PLACES = {  # name → (space, variable or None for the registry file)
    "mobileclip-variable": ("mobileclip:blt", "OVDET_MOBILECLIP_WEIGHTS"),
    "mobileclip2-variable": ("mobileclip2:b", "OVDET_MOBILECLIP2_WEIGHTS"),
    "mobileclip-registry-first-use": ("mobileclip:blt", None),
    "mobileclip2-registry-first-use": ("mobileclip2:b", None),
}
CLIP_FORMATS = ("openai-jit", "open_clip")


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """OpenAI's CLIP ViT-B/32 as its TorchScript release and as an open_clip state dict (random-init)."""
    folder = tmp_path_factory.mktemp("clip")
    return {fmt: weights_fixtures.build_clip_checkpoint(folder / f"{fmt}.pt", fmt=fmt) for fmt in CLIP_FORMATS}


# Both formats at each variable; at the registry places (each case also loads the genuine tower), one format each.
TOWER_CASES = [
    *((place, fmt) for place in ("mobileclip-variable", "mobileclip2-variable") for fmt in CLIP_FORMATS),
    ("mobileclip-registry-first-use", "openai-jit"),
    ("mobileclip2-registry-first-use", "open_clip"),
]


@pytest.mark.parametrize(("place", "clip_format"), TOWER_CASES)
def test_openai_clip_given_for_a_mobileclip_space_is_refused_naming_both(
    place: str, clip_format: str, clip_files, mobileclip_paths, tmp_path: Path, capfd, monkeypatch
) -> None:
    space, variable = TOWER_PLACES[place]
    folder = tmp_path / "weights"
    monkeypatch.setenv("OVDET_WEIGHTS_DIR", str(folder))
    registry = folder / weights.WEIGHTS[SPACES[space].weights].filename
    target = registry if variable is None else tmp_path / "inputs" / "tower.pt"
    target.parent.mkdir(parents=True)
    shutil.copy(clip_files[clip_format], target)
    if variable is not None:
        monkeypatch.setenv(variable, str(target))
    command = ["embed", "--classes", "bottle", "--space", space, "-o", tmp_path / "v.npz"]
    with unchanged(target.parent):
        result = run_cli(command, capfd)
    assert_error(result, 1, "clip:ViT-B/32", space, "OpenAI's CLIP")
    assert not (target.parent / weights.SUMS_FILE).exists() and not (tmp_path / "v.npz").exists()
    if variable is None:  # the genuine file then loads, and is pinned
        shutil.copy(mobileclip_paths[space]["torchscript"], target)
        assert_clean_stderr(run_cli(command, capfd))
        pinned = (target.parent / weights.SUMS_FILE).read_text()
        assert pinned.startswith(hashlib.sha256(target.read_bytes()).hexdigest())


# --- a .pt given to an install without torch says what to install ------------------------------------------------

TORCH_FREE = {  # the ovdet command; {pt} is a YOLO-World checkpoint
    "detect": ("detect", "{image}", "--model", "{pt}", "--classes", "bottle", "--quiet"),
    "embed-model": ("embed", "--classes", "bottle", "--model", "{pt}", "-o", "{image_folder}/v.npz"),
    "embed-text": ("embed", "--classes", "bottle", "-o", "{image_folder}/v.npz"),
    "export": ("export", "--model", "{pt}", "--classes", "bottle", "--format", "onnx", "-o", "{image_folder}/x"),
    "eval": ("eval", "--data", _DATA, "--classes", "bottle", "--model", "{pt}"),
}


@pytest.mark.parametrize("command", list(TORCH_FREE))
def test_a_pt_without_torch_says_what_to_install(command: str, model_path: Path, image: Path) -> None:
    args = _fill(TORCH_FREE[command], image, pt=model_path)
    completed = subprocess.run(
        [sys.executable, "-c", TORCH_FREE_CLI, *args], env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert completed.returncode == 1 and len(lines) == 1, completed.stderr
    assert lines[0].startswith("ovdet: error: ") and "pip install '.[torch]'" in lines[0], lines[0]
    assert "unexpected" not in lines[0]
