"""Weights files that are code: TorchScript archives and pickles whose loading would create a marker file.

Every maker is ``make(path, marker)``. What each would do if loaded the usual way:

- ``torch.jit.load`` runs a scripted class's ``__setstate__`` (here ``torch.save`` into the marker path), and
  unpickles the archive's ``data.pkl`` (here a call of ``os.system`` or ``exec``);
- ``torch.load(weights_only=False)``, Ultralytics' default, calls whatever a pickle names.
"""

from __future__ import annotations

import builtins
import io
import os
import pathlib
import pickle
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tests import mobileclip_fixtures


class _Call:
    """Pickles as ``function(*args)``: unpickling it with plain ``pickle`` makes that call."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.function, self.args


class SetStatePayload(torch.nn.Module):
    """A scripted module whose ``__setstate__``, which ``torch.jit.load`` runs, writes a file at ``marker``."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(2))
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, str, bool]:
        return (self.weight, self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, str, bool]) -> None:
        self.weight = state[0]
        self.marker = state[1]
        self.training = state[2]
        torch.serialization.save(self.weight, self.marker)  # not torch.save, which Ultralytics replaces


class TowerWithPayload(torch.nn.Module):
    """A real MobileCLIP-B text tower with a payload submodule beside it, as one TorchScript archive."""

    def __init__(self, tower: torch.nn.Module, marker: str) -> None:
        super().__init__()
        self.tower = mobileclip_fixtures.NormalizedTower(tower)
        self.payload = _scripted(SetStatePayload(marker))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.tower(input_ids)


def _scripted(module: torch.nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script's deprecation note
        return torch.jit.script(module)


def script_setstate(path: Path, marker: Path) -> None:
    """A TorchScript archive whose only module runs its payload while ``torch.jit.load`` loads it."""
    _scripted(SetStatePayload(str(marker))).save(str(path))


def tower_with_setstate(path: Path, marker: Path) -> None:
    """A usable MobileCLIP-B tower whose archive also carries a ``__setstate__`` payload."""
    import open_clip

    tower = mobileclip_fixtures.build_text_tower("mobileclip:blt")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(TowerWithPayload(tower, str(marker)), open_clip.tokenize(["a"]), check_trace=False)
    traced.save(str(path))


def _script_with_pickle(payload: Callable[[Path], Any]) -> Callable[[Path, Path], None]:
    """A genuine TorchScript archive whose ``data.pkl`` is replaced by a pickle that calls ``payload(marker)``."""

    def make(path: Path, marker: Path) -> None:
        buffer = io.BytesIO()
        torch.jit.save(_scripted(torch.nn.Linear(2, 2)), buffer)
        with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(path, "w") as target:
            for item in source.infolist():
                data = source.read(item)
                if item.filename.endswith("/data.pkl"):
                    data = pickle.dumps(payload(marker), protocol=2)
                target.writestr(item, data)

    return make


def _os_system(marker: Path) -> _Call:
    return _Call(os.system, f"touch '{marker}'")


def _exec(marker: Path) -> _Call:
    return _Call(builtins.exec, f"open({str(marker)!r}, 'w').close()")


def _path_touch(marker: Path) -> _Call:
    return _Call(pathlib.Path.touch, pathlib.Path(marker))


def _checkpoint(model: Any) -> dict[str, Any]:
    return {"date": "2024-01-01T00:00:00", "version": "8.4.190", "model": model, "ema": None, "train_args": {}}


def _torch_save(payload: Callable[[Path], Any], legacy: bool = False) -> Callable[[Path, Path], None]:
    return lambda path, marker: torch.save(
        _checkpoint(payload(marker)), path, _use_new_zipfile_serialization=not legacy
    )


def _raw_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(_checkpoint(_os_system(marker)), protocol=2))


# name → (maker, what the one error line names when the file is refused for its pickle)
PAYLOADS: dict[str, tuple[Callable[[Path, Path], None], str | None]] = {
    "script-setstate": (script_setstate, None),
    "script-pickle-os-system": (_script_with_pickle(_os_system), "posix.system"),
    "script-pickle-exec": (_script_with_pickle(_exec), "exec"),
    "script-pickle-path-touch": (_script_with_pickle(_path_touch), "getattr"),
    "pickle-os-system": (_torch_save(_os_system), "posix.system"),
    "pickle-exec-legacy-format": (_torch_save(_exec, legacy=True), "exec"),
    "pickle-path-touch": (_torch_save(_path_touch), "pathlib"),
    "raw-pickle-os-system": (_raw_pickle, "posix.system"),
}
