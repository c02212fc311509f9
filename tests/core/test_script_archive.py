"""TorchScript archives read for their tensors without ``torch.jit.load`` (issue 23): the same tensors under the
same names as ``torch.jit.load(...).state_dict()``, and a damaged or crafted archive is one ``WeightsError`` line."""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from ovdet import WeightsError
from ovdet.core.script_archive import is_torchscript, read_tensors
from ovdet.core.weights import WeightsFile, read_weights
from ovdet.prompts.mobileclip import MobileClipTextEncoder
from ovdet.prompts.text import ClipTextEncoder


def _jit_state_dict(path: Path) -> dict[str, torch.Tensor]:
    return dict(torch.jit.load(str(path), map_location="cpu").state_dict())  # our own fixtures only


@pytest.mark.parametrize("tower", ["clip", "mobileclip:blt", "mobileclip2:b"])
def test_the_tensors_are_those_torch_jit_load_gives(tower: str, clip_path: Path, mobileclip_paths) -> None:
    path = clip_path if tower == "clip" else mobileclip_paths[tower]["torchscript"]
    ours = read_tensors(read_weights(path, check_registry=False), "tower", "use another")
    expected = _jit_state_dict(path)
    assert sorted(ours) == sorted(expected)
    for name, tensor in expected.items():
        assert ours[name].dtype == tensor.dtype and torch.equal(ours[name], tensor), name


def test_encoding_never_calls_torch_jit_load(clip_path: Path, mobileclip_paths, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("torch.jit.load was called on a weights file")

    monkeypatch.setattr(torch.jit, "load", refuse)
    assert ClipTextEncoder(clip_path).encode(["bottle"]).shape == (1, 512)
    for space in ("mobileclip:blt", "mobileclip2:b"):
        encoder = MobileClipTextEncoder(space, mobileclip_paths[space]["torchscript"])
        assert np.isfinite(encoder.encode(["bottle"])).all()


def _rewrite(path: Path, change: Callable[[str, bytes], bytes | None]) -> bytes:
    """The archive at ``path`` with each member's bytes passed through ``change`` (``None`` drops the member)."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = change(item.filename, source.read(item))
            if data is not None:
                target.writestr(item, data)
    return out.getvalue()


def _member(suffix: str, replacement: Callable[[bytes], bytes | None]) -> Callable[[str, bytes], bytes | None]:
    return lambda name, data: replacement(data) if name.endswith(suffix) else data


DAMAGE = {  # name → (change to the archive, what the one line says)
    "storage-truncated": (_member("/data/0", lambda data: data[: len(data) // 2]), "not a readable TorchScript"),
    "storage-missing": (_member("/data/0", lambda data: None), "not a readable TorchScript"),
    "data-pkl-truncated": (_member("/data.pkl", lambda data: data[:40]), "not a readable TorchScript"),
    "big-endian": (_member("/byteorder", lambda data: b"big"), "big-endian"),
    "global-builtins-eval": (
        _member("/data.pkl", lambda data: pickle.dumps(_Reduce(eval, ("1",)), protocol=2)),
        "__builtin__.eval",
    ),
    "global-torch-load": (
        _member("/data.pkl", lambda data: pickle.dumps(_Reduce(torch.load, ("x",)), protocol=2)),
        "torch.serialization.load",
    ),
    "storage-key-escapes": (
        _member("/data.pkl", lambda data: data.replace(b"X\x01\x00\x00\x000", b"X\x04\x00\x00\x00../0")),
        "not a readable TorchScript",
    ),
}


class _Reduce:
    def __init__(self, function, args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_or_crafted_archive_is_one_weights_error(damage: str, mobileclip_paths, tmp_path: Path) -> None:
    change, says = DAMAGE[damage]
    data = _rewrite(mobileclip_paths["mobileclip:blt"]["torchscript"], change)
    assert is_torchscript(data)
    with pytest.raises(WeightsError, match="use another") as raised:
        read_tensors(WeightsFile(tmp_path / "t.ts", data, ""), "MobileCLIP-B text encoder", "use another")
    assert says in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "data", [b"", b"PK\x03\x04 not a zip", b"\x80\x02}q\x00.", b"{}"], ids=["empty", "bad-zip", "pickle", "json"]
)
def test_what_is_not_an_archive_is_not_taken_for_one(data: bytes) -> None:
    assert not is_torchscript(data)


def test_a_torch_save_file_is_not_taken_for_torchscript(tmp_path: Path) -> None:
    torch.save({"weight": torch.ones(2)}, tmp_path / "state.pt")
    assert not is_torchscript((tmp_path / "state.pt").read_bytes())
