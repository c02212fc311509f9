"""Weights that are code (issue 23): a crafted TorchScript archive or pickle never runs, by any path that loads
weights — ``detect --model``, ``embed``, ``export``, ``eval``, the Python API, a registry file on first use, and
the text towers named by ``OVDET_CLIP_WEIGHTS``, ``OVDET_MOBILECLIP_WEIGHTS`` and ``OVDET_MOBILECLIP2_WEIGHTS``.

Each case writes one payload (tests/hostile/code_payloads.py) where the path reads it, runs ovdet as a user would,
and checks: the marker file the payload would create does not exist; exit 1 with one ``ovdet: error:`` line (naming
what the pickle refers to, where that is what refused it); the inputs byte-identical; no digest pinned; no output.
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` is set throughout, so that torch's own default is not what saves us.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from ovdet import OpenVocabDetector, WeightsError
from ovdet.core import weights
from tests.hostile.code_payloads import PAYLOADS, tower_with_setstate
from tests.hostile.harness import assert_clean_stderr, assert_error, assert_no_temporaries, run_cli, unchanged

DETECT = ["--classes", "bottle", "--device", "cpu", "--imgsz", "160", "--quiet"]


@dataclass(frozen=True)
class Place:
    """Where a hostile file is read from: ``file`` is its path under the inputs folder, ``env`` the variables that
    point there (``{inputs}`` is replaced), ``args`` the ovdet command (``{file}``, ``{inputs}``, ``{out}``), and
    ``tower`` whether it is read as a text tower (else as a detector checkpoint); ``says``: what the error names
    where the file is refused for its name, whatever it holds."""

    file: str
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    tower: bool = False
    says: str | None = None


_EMBED = ("embed", "--classes", "bottle", "-o", "{out}/vocab.npz")
PLACES = {
    "detect-model": Place("weights.pt", ("detect", "{inputs}/frame.png", "--model", "{file}", *DETECT)),
    "detect-model-ts-suffix": Place(
        "model.ts", ("detect", "{inputs}/frame.png", "--model", "{file}", *DETECT), says="unsupported format .ts"
    ),
    "detect-bare-torchscript-file": Place(
        "model.torchscript", ("detect", "{inputs}/frame.png", "--model", "{file}", *DETECT), says="no ovdet.json"
    ),
    "registry-detector-first-use": Place(
        "weights/yoloe-11s-seg.pt",
        ("detect", "{inputs}/frame.png", "--model", "yoloe-11s-seg", *DETECT),
        (("OVDET_WEIGHTS_DIR", "{inputs}/weights"),),
    ),
    "embed-model": Place("weights.pt", ("embed", "--classes", "bottle", "--model", "{file}", "-o", "{out}/v.npz")),
    "export-model": Place(
        "weights.pt", ("export", "--model", "{file}", "--classes", "bottle", "--format", "onnx", "-o", "{out}/export")
    ),
    "eval-model": Place(
        "weights.pt",
        (
            "eval",
            "--data",
            "{inputs}/data/annotations.json",
            "--classes",
            "bottle",
            "--model",
            "{file}",
            "--imgsz",
            "160",
            "--device",
            "cpu",
        ),
    ),
    "clip-variable-embed": Place("clip.pt", _EMBED, (("OVDET_CLIP_WEIGHTS", "{file}"),), tower=True),
    "clip-variable-detect": Place(
        "clip.pt",
        ("detect", "{inputs}/frame.png", "--model", "{model}", *DETECT),
        (("OVDET_CLIP_WEIGHTS", "{file}"),),
        tower=True,
    ),
    "mobileclip-variable": Place(
        "tower.ts", (*_EMBED, "--space", "mobileclip:blt"), (("OVDET_MOBILECLIP_WEIGHTS", "{file}"),), tower=True
    ),
    "mobileclip2-variable": Place(
        "tower.pt", (*_EMBED, "--space", "mobileclip2:b"), (("OVDET_MOBILECLIP2_WEIGHTS", "{file}"),), tower=True
    ),
    "mobileclip-registry-first-use": Place(
        "weights/mobileclip/mobileclip_blt.ts",
        (*_EMBED, "--space", "mobileclip:blt"),
        (("OVDET_WEIGHTS_DIR", "{inputs}/weights"),),
        tower=True,
    ),
}


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """An image to detect on and a one-image COCO dataset; the hostile file goes here too."""
    folder = tmp_path / "inputs"
    (folder / "data" / "images").mkdir(parents=True)
    image = np.zeros((96, 128, 3), np.uint8)
    cv2.rectangle(image, (20, 20), (70, 80), (0, 200, 255), -1)
    cv2.imwrite(str(folder / "frame.png"), image)
    cv2.imwrite(str(folder / "data" / "images" / "frame.png"), image)
    coco = {
        "images": [{"id": 1, "file_name": "images/frame.png", "width": 128, "height": 96}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [20, 20, 50, 60], "area": 3000, "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "bottle"}],
    }
    (folder / "data" / "annotations.json").write_text(json.dumps(coco))
    return folder


def _place(place: Place, inputs: Path, out: Path, model: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list]:
    """Write nothing yet: set the place's variables and return the hostile file's path and the command."""
    target = inputs / place.file
    target.parent.mkdir(parents=True, exist_ok=True)
    fill: Callable[[str], str] = lambda text: text.format(file=target, inputs=inputs, out=out, model=model)  # noqa: E731
    for name, value in place.env:
        monkeypatch.setenv(name, fill(value))
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    return target, [fill(arg) for arg in place.args]


def _mention(payload: str, place: Place) -> tuple[str, ...]:
    """What the error line names: the pickle's reference where it was refused for it."""
    _, reference = PAYLOADS[payload]
    if place.says is not None:
        return (place.says,)
    if reference is None:
        return ()
    if payload.startswith("script-") and not place.tower:
        return ("TorchScript archive",)  # a detector is never a TorchScript archive: refused before its pickle
    return (reference,)


@pytest.mark.parametrize("place_name", list(PLACES))
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_weights_that_are_code_never_run(
    payload: str, place_name: str, inputs: Path, tmp_path: Path, model_path: Path, capfd, monkeypatch
) -> None:
    place, marker, out = PLACES[place_name], tmp_path / "PAYLOAD-RAN", tmp_path / "out"
    target, args = _place(place, inputs, out, model_path, monkeypatch)
    PAYLOADS[payload][0](target, marker)
    with unchanged(inputs):
        result = run_cli(args, capfd)
    assert not marker.exists(), "the file's code ran"
    assert_error(result, 1, *_mention(payload, place))
    assert not out.exists() or not any(out.iterdir()), "an output was written"
    assert not (target.parent / weights.SUMS_FILE).exists(), "the hostile file's digest was pinned"
    assert_no_temporaries(tmp_path)


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_python_api_never_runs_a_weights_file(payload: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker, target = tmp_path / "PAYLOAD-RAN", tmp_path / "weights.pt"
    PAYLOADS[payload][0](target, marker)
    with pytest.raises(WeightsError) as raised:
        OpenVocabDetector(target, device="cpu")
    assert not marker.exists(), "the file's code ran"
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("payload", [name for name in PAYLOADS if name.startswith("script-")])
def test_a_trusted_pickle_is_still_no_way_to_run_torchscript(payload: str, inputs: Path, tmp_path: Path, capfd,
                                                             monkeypatch) -> None:  # fmt: skip
    """``OVDET_TRUST_WEIGHTS=1`` unpickles ``.pt`` files unrestricted; ``torch.load`` would hand a TorchScript
    archive to ``torch.jit.load``. It is refused all the same."""
    monkeypatch.setenv("OVDET_TRUST_WEIGHTS", "1")
    marker, target = tmp_path / "PAYLOAD-RAN", inputs / "weights.pt"
    PAYLOADS[payload][0](target, marker)
    with unchanged(inputs):
        result = run_cli(["detect", inputs / "frame.png", "--model", target, *DETECT], capfd)
    assert not marker.exists(), "the file's code ran"
    assert_error(result, 1, "TorchScript archive")


@pytest.mark.parametrize("place_name", ["mobileclip-variable", "mobileclip-registry-first-use"])
def test_a_real_tower_carrying_a_payload_loads_its_tensors_only(
    place_name: str, inputs: Path, tmp_path: Path, model_path: Path, capfd, monkeypatch
) -> None:
    """The tensors of a MobileCLIP-B tower whose archive also holds a ``__setstate__`` payload are read; the payload
    stays inert data (``torch.jit.load`` would have run it)."""
    place, marker, out = PLACES[place_name], tmp_path / "PAYLOAD-RAN", tmp_path / "out"
    out.mkdir()
    target, args = _place(place, inputs, out, model_path, monkeypatch)
    tower_with_setstate(target, marker)
    result = run_cli(args, capfd)
    assert not marker.exists(), "the file's code ran"
    assert_clean_stderr(result)
    assert (out / "vocab.npz").is_file()


@pytest.mark.parametrize("payload", [name for name in PAYLOADS if not name.startswith("script-")])
def test_the_ultralytics_baseline_of_bench_never_runs_a_weights_file(
    payload: str, inputs: Path, tmp_path: Path, monkeypatch
) -> None:
    """``ovdet bench --compare-ultralytics`` loads the ``.pt`` through Ultralytics in a worker process, and
    Ultralytics unpickles freely unless told; its runner tells it, whatever the environment said (what the worker
    does, done here in-process)."""
    from ultralytics.nn import tasks

    from ovdet.bench import ULTRALYTICS, RunConfig, Subject, open_runner

    # as where ULTRALYTICS_SAFE_LOAD=0 is set or Ultralytics was imported before ovdet (restored after the test)
    monkeypatch.setattr(tasks, "SAFE_LOAD", False)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker, target = tmp_path / "PAYLOAD-RAN", inputs / "weights.pt"
    PAYLOADS[payload][0](target, marker)
    config = RunConfig("ultralytics torch", ULTRALYTICS)
    subject = Subject("ultralytics torch", config, str(target), ("bottle",), str(inputs / "data" / "images"),
                      imgsz=160, vectors=np.zeros((1, 512), np.float32))  # fmt: skip
    with pytest.raises(TypeError, match="outside the supported Ultralytics checkpoint format"):
        open_runner(subject, tmp_path / "scratch")
    assert not marker.exists(), "the file's code ran"
