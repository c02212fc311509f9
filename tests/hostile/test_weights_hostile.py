"""Hostile weights files: pickles that would run code, damaged and odd files, altered pinned files (issue 10,
findings 5 and 6).

Every case builds its own file, then checks what a user would: exit 1 with one ``ovdet: error:`` line naming the
problem, the file a payload would create does not exist, every input (the SHA256SUMS pins included) is
byte-identical afterwards, and no temporary file is left.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import pathlib
import pickle
import shutil
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from ovdet.core import weights
from tests import weights_fixtures
from tests.hostile.harness import assert_error, assert_no_temporaries, run_cli, unchanged

WORLD = "yolov8s-worldv2.pt"
DETECT = ["--classes", "bottle", "--device", "cpu", "--imgsz", "160", "--quiet", "--no-save"]


class _Call:
    """Pickles as ``function(*args)``: unpickling it with plain ``pickle`` makes that call."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.function, self.args


def _os_system(marker: Path) -> _Call:
    return _Call(os.system, f"touch '{marker}'")


def _exec(marker: Path) -> _Call:
    return _Call(builtins.exec, f"open({str(marker)!r}, 'w').close()")


def _subprocess(marker: Path) -> _Call:
    return _Call(subprocess.call, ["touch", str(marker)])


def _path_touch(marker: Path) -> _Call:
    return _Call(pathlib.Path.touch, pathlib.Path(marker))


def _world_model_with_evaluated_activation(marker: Path) -> _Call:
    """An allowed class called with a config whose ``activation`` Ultralytics would ``eval`` while building it."""
    from ultralytics.nn.tasks import WorldModel

    evil = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    return _Call(WorldModel, {"activation": evil, "nc": 1, "backbone": [[-1, 1, "Conv", [16, 3, 2]]], "head": []})


def _checkpoint(model: Any) -> dict[str, Any]:
    return {"date": "2024-01-01T00:00:00", "version": "8.4.190", "model": model, "ema": None, "train_args": {}}


def _save_zip(payload: Callable[[Path], Any]) -> Callable[[Path, Path], None]:
    return lambda path, marker: torch.save(_checkpoint(payload(marker)), path)


def _save_legacy(payload: Callable[[Path], Any]) -> Callable[[Path, Path], None]:
    return lambda path, marker: torch.save(_checkpoint(payload(marker)), path, _use_new_zipfile_serialization=False)


def _save_raw_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(_checkpoint(_os_system(marker)), protocol=2))


def _save_nested_in_model_state(path: Path, marker: Path) -> None:
    """A real-looking checkpoint whose payload hides in one layer's attributes."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.SiLU())
    model[0].calibration = {"note": _os_system(marker)}
    torch.save(_checkpoint(model), path)


def _save_torchscript(path: Path, marker: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script's deprecation note
        torch.jit.script(torch.nn.Linear(2, 2)).save(str(path))


def _save_plain_yolov8(path: Path, marker: Path) -> None:
    weights_fixtures.build_plain_yolov8_checkpoint(path)


def _save_truncated(path: Path, marker: Path) -> None:
    """Cut in half: the zip's directory at the end is gone (a file of 1 MB, as small ones fail differently)."""
    torch.save(_checkpoint(torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.Linear(512, 512))), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _save_folder(path: Path, marker: Path) -> None:
    path.mkdir()
    (path / "notes.txt").write_text("a folder, not weights")


def _save_symlink_loop(path: Path, marker: Path) -> None:
    path.symlink_to(path.name)


@dataclass(frozen=True)
class Case:
    """A hostile weights file and where it is used from.

    ``make(path, marker)`` writes the file; ``place`` is ``"path"`` (``--model PATH``), ``"registry"`` (the
    registry file in ``$OVDET_WEIGHTS_DIR``, named ``--model yolov8s-worldv2``), ``"bare"`` (``--model
    yolov8s-worldv2.pt`` in the working folder, the name Ultralytics itself would re-download) or ``"clip"``
    (``$OVDET_CLIP_WEIGHTS`` for ``ovdet embed``).
    """

    make: Callable[[Path, Path], None]
    place: str
    mentions: tuple[str, ...]


UNSAFE = ("OVDET_TRUST_WEIGHTS",)
CASES = {
    "os-system-zip": Case(_save_zip(_os_system), "path", ("posix.system", *UNSAFE)),
    "builtins-exec-zip": Case(_save_zip(_exec), "path", ("builtins.exec", *UNSAFE)),
    # pickle protocol 2 writes subprocess.call under its Python 2 name, which unpickling maps back
    "subprocess-call-zip": Case(_save_zip(_subprocess), "path", ("commands.call", *UNSAFE)),
    "path-touch-zip": Case(_save_zip(_path_touch), "path", ("pathlib.Path", *UNSAFE)),
    "nested-in-model-state": Case(_save_nested_in_model_state, "path", ("posix.system", *UNSAFE)),
    "os-system-legacy-format": Case(_save_legacy(_os_system), "path", ("posix.system", *UNSAFE)),
    "exec-legacy-format": Case(_save_legacy(_exec), "path", ("exec", *UNSAFE)),
    "raw-pickle-not-torch-save": Case(_save_raw_pickle, "path", ("posix.system", *UNSAFE)),
    "allowed-class-eval-activation": Case(
        _save_zip(_world_model_with_evaluated_activation), "path", ("not a readable",)
    ),
    "plain-yolov8-not-world": Case(_save_plain_yolov8, "path", ("not a YOLO-World model",)),
    "torchscript-archive": Case(_save_torchscript, "path", ("TorchScript archive",)),
    "folder-named-pt": Case(_save_folder, "path", ("is a folder",)),
    "symlink-loop": Case(_save_symlink_loop, "path", ("symbolic links",)),
    "named-pipe": Case(lambda path, marker: os.mkfifo(path), "path", ("named pipe",)),
    "registry-first-use-os-system": Case(_save_zip(_os_system), "registry", ("posix.system", *UNSAFE)),
    "registry-first-use-path-touch": Case(_save_zip(_path_touch), "registry", ("pathlib.Path", *UNSAFE)),
    "bare-name-truncated": Case(_save_truncated, "bare", ("not a readable",)),
    "bare-name-zero-bytes": Case(lambda path, marker: path.write_bytes(b""), "bare", ("empty",)),
    "bare-name-random-bytes": Case(
        lambda path, marker: path.write_bytes(np.random.default_rng(0).bytes(4096)), "bare", ("not a readable",)
    ),
    "clip-os-system-state-dict": Case(_save_zip(_os_system), "clip", ("posix.system", *UNSAFE)),
    "clip-exec-legacy-format": Case(_save_legacy(_exec), "clip", ("exec", *UNSAFE)),
    "clip-zero-bytes": Case(lambda path, marker: path.write_bytes(b""), "clip", ("empty",)),
}


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A folder with an image to detect on; the hostile file goes here too."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    image = np.zeros((64, 96, 3), np.uint8)
    cv2.rectangle(image, (10, 10), (50, 40), (0, 200, 255), -1)
    cv2.imwrite(str(folder / "frame.png"), image)
    return folder


def _command(case: Case, inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Path]:
    """The ``ovdet`` arguments that use the hostile file from its place, and that file's path."""
    image = str(inputs / "frame.png")
    if case.place == "path":
        target = inputs / "weights.pt"
        return ["detect", image, "--model", target, *DETECT], target
    if case.place == "registry":
        monkeypatch.setenv("OVDET_WEIGHTS_DIR", str(inputs))
        return ["detect", image, "--model", "yolov8s-worldv2", *DETECT], inputs / WORLD
    if case.place == "bare":
        monkeypatch.chdir(inputs)
        return ["detect", image, "--model", WORLD, *DETECT], inputs / WORLD
    target = inputs / "clip.pt"
    monkeypatch.setenv("OVDET_CLIP_WEIGHTS", str(target))
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # torch's own default must not be what saves us
    return ["embed", "--classes", "bottle", "-o", tmp_path / "vocab.npz"], target


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_weights_file_is_refused(
    name: str, inputs: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case, marker = CASES[name], tmp_path / "PAYLOAD-RAN"
    args, target = _command(case, inputs, tmp_path, monkeypatch)
    case.make(target, marker)
    with unchanged(inputs):
        result = run_cli(args, capfd)
    assert not marker.exists(), "the pickle's payload ran"
    assert_error(result, 1, *case.mentions)
    assert not (tmp_path / "vocab.npz").exists()
    assert_no_temporaries(tmp_path)


def _tamper_in_place(path: Path) -> None:
    """Change one byte in the middle of ``path``, keeping its size and restoring its timestamps."""
    before = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(before.st_size // 2)
        byte = handle.read(1)
        handle.seek(before.st_size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _pinned_copy(model_path: Path, folder: Path) -> Path:
    """The detector as a registry file in ``folder``, its SHA-256 pinned and remembered as by an earlier run."""
    target = shutil.copy2(model_path, folder / WORLD)
    (folder / weights.SUMS_FILE).write_text(f"{hashlib.sha256(target.read_bytes()).hexdigest()}  {WORLD}\n")
    weights.file_sha256(target)
    return target


@pytest.mark.parametrize("named_by", ["registry-name", "explicit-path"])
def test_pinned_detector_edited_in_place_is_refused(
    named_by: str,
    model_path: Path,
    inputs: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OVDET_WEIGHTS_DIR", str(inputs))
    target = _pinned_copy(model_path, inputs)
    _tamper_in_place(target)
    model = "yolov8s-worldv2" if named_by == "registry-name" else str(target)
    with unchanged(inputs):
        result = run_cli(["detect", inputs / "frame.png", "--model", model, *DETECT], capfd)
    assert_error(result, 1, "SHA-256", str(target))
    assert_no_temporaries(inputs)


def test_registry_clip_edited_in_place_is_refused(
    clip_path: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "weights"
    target = folder / "clip" / "ViT-B-32.pt"
    target.parent.mkdir(parents=True)
    shutil.copy2(clip_path, target)
    spec = replace(weights.WEIGHTS["clip-vit-b-32"], sha256=weights.file_sha256(target))  # as if OpenAI's file
    monkeypatch.setitem(weights.WEIGHTS, "clip-vit-b-32", spec)
    monkeypatch.setenv("OVDET_WEIGHTS_DIR", str(folder))
    monkeypatch.delenv("OVDET_CLIP_WEIGHTS")
    _tamper_in_place(target)
    with unchanged(folder):
        result = run_cli(["embed", "--classes", "bottle", "-o", tmp_path / "vocab.npz"], capfd)
    assert_error(result, 1, "SHA-256", str(target))
    assert not (tmp_path / "vocab.npz").exists()


def test_clip_file_cannot_call_the_detector_classes_allowed_for_the_detector(
    model_path: Path, inputs: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading the detector allows Ultralytics' model classes for the process; the CLIP file loaded next must not
    get to call one of them with a configuration that Ultralytics would ``eval``."""
    marker, clip = tmp_path / "PAYLOAD-RAN", inputs / "clip.pt"
    _save_zip(_world_model_with_evaluated_activation)(clip, marker)
    monkeypatch.setenv("OVDET_CLIP_WEIGHTS", str(clip))
    with unchanged(inputs):
        result = run_cli(["detect", inputs / "frame.png", "--model", model_path, *DETECT], capfd)
    assert not marker.exists(), "the pickle's payload ran"
    assert_error(result, 1, "ultralytics.nn.tasks.WorldModel", "CLIP", "OVDET_TRUST_WEIGHTS")
