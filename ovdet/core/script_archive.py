"""A TorchScript archive's tensors, read without running any of its code.

``torch.jit.load`` compiles an archive's code and runs the ``__setstate__`` of its scripted classes while it loads,
so a crafted ``.ts`` can write files before anyone looks at its tensors. ovdet never calls it on a weights file.
An archive is a zip (``<name>/data.pkl``, ``<name>/data/<n>``, ``<name>/code/…``), and its tensors are read here:

- ``data.pkl`` is unpickled by an unpickler that builds nothing but tensors (``torch._utils._rebuild_tensor_v2``
  over storages read from ``data/``), ordered dicts, and inert stand-ins for the archive's own classes, which
  keep the state they were pickled with and run no code; any other reference is refused, naming it;
- the code files are read as text, never compiled, for each module class's ``__parameters__`` and
  ``__buffers__`` lists, so that the names returned are exactly those of the module's ``state_dict()`` (a class
  that declares none keeps all its tensors).
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from .errors import WeightsError
from .weights import WeightsFile

__all__ = ["is_torchscript", "read_tensors"]

_SCRIPT_MODULE = "__torch__"
_CLASS = re.compile(r"^class (\w+)\(", re.MULTILINE)
_DECLARED = re.compile(r"^\s+__(?:parameters|buffers)__ = \[([^\]]*)\]", re.MULTILINE)
_QUOTED = re.compile(r"""["']([^"']*)["']""")
_STORAGE_DTYPES = {f"{kind}Storage": dtype for kind, dtype in (
    ("Float", "float32"), ("Double", "float64"), ("Half", "float16"), ("BFloat16", "bfloat16"), ("Long", "int64"),
    ("Int", "int32"), ("Short", "int16"), ("Char", "int8"), ("Byte", "uint8"), ("Bool", "bool"))}  # fmt: skip
_TYPE_TAGS = {"restore_type_tag": lambda value, tag: value, **dict.fromkeys(
    ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist"), list)}  # fmt: skip


def is_torchscript(data: bytes) -> bool:
    """Whether ``data`` is a TorchScript archive: a zip whose one top folder holds ``data.pkl`` and ``code/``."""
    if not data.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _prefix(archive.namelist()) is not None
    except (zipfile.BadZipFile, ValueError):
        return False


def read_tensors(file: WeightsFile, kind: str, advice: str) -> dict[str, Any]:
    """The tensors of a TorchScript archive's module, named as its ``state_dict()`` names them; no code runs.

    Args:
        file: The archive's bytes (already checked against their digest).
        kind: What it should hold, for messages, e.g. ``"MobileCLIP-B text encoder"``.
        advice: What to use instead, ending the message of a refusal.

    Example:
        >>> tensors = read_tensors(read_weights("mobileclip_blt.ts"), "MobileCLIP-B", "use …")  # doctest: +SKIP
        >>> tensors["token_embedding.weight"].shape  # doctest: +SKIP
        torch.Size([49408, 512])
    """
    try:
        with zipfile.ZipFile(io.BytesIO(file.data)) as archive:
            names = archive.namelist()
            prefix = _prefix(names)
            if prefix is None:
                raise WeightsError(f"{file.path} is not a TorchScript archive (no data.pkl and code/): {advice}")
            _check_byte_order(archive, prefix, file, advice)
            declared = _declared_tensors(archive, prefix, names)
            root = _Unpickler(
                archive, prefix, file, f"a {kind} does not hold, and unpickling it could run code: {advice}"
            ).load()
    except WeightsError:
        raise
    except Exception as exc:  # a damaged zip, truncated pickle or storage: zipfile, pickle and torch raise many types
        raise WeightsError(
            f"{file.path} is not a readable TorchScript archive ({type(exc).__name__}): {advice}"
        ) from exc
    return dict(_named_tensors(root, declared))


def _prefix(names: list[str]) -> str | None:
    """The archive's top folder, if it holds ``data.pkl`` and code; ``None`` otherwise."""
    tops = {name.split("/", 1)[0] for name in names if "/" in name}
    if len(tops) != 1:
        return None
    top = tops.pop()
    has_code = any(name.startswith(f"{top}/code/") for name in names)
    return top if has_code and f"{top}/data.pkl" in names else None


def _check_byte_order(archive: zipfile.ZipFile, prefix: str, file: WeightsFile, advice: str) -> None:
    name = f"{prefix}/byteorder"
    if name in archive.namelist() and archive.read(name).strip() not in (b"little", b""):
        raise WeightsError(f"{file.path} stores its tensors big-endian, which ovdet does not read: {advice}")


def _declared_tensors(archive: zipfile.ZipFile, prefix: str, names: list[str]) -> dict[str, set[str]]:
    """Qualified class name → its declared parameters and buffers, read from the code files as text."""
    declared: dict[str, set[str]] = {}
    code = f"{prefix}/code/"
    for name in names:
        if not (name.startswith(code) and name.endswith(".py")):
            continue
        module = name[len(code) : -len(".py")].replace("/", ".")
        text = archive.read(name).decode("utf-8", errors="replace")
        starts = list(_CLASS.finditer(text))
        for match, end in zip(starts, [*(later.start() for later in starts[1:]), len(text)], strict=True):
            lists = _DECLARED.findall(text, match.end(), end)
            if lists:
                declared[f"{module}.{match.group(1)}"] = {item for items in lists for item in _QUOTED.findall(items)}
    return declared


class _ScriptObject:
    """An inert stand-in for an object of one of the archive's classes: it keeps its pickled state, runs nothing."""

    qualified_name = ""

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _Storage:
    """A storage type named in ``data.pkl`` (``torch.FloatStorage`` …): only its element type is used."""

    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype


class _Unpickler(pickle.Unpickler):
    """Builds tensors, ordered dicts and :class:`_ScriptObject` stand-ins; refuses every other reference."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str, file: WeightsFile, refusal: str) -> None:
        super().__init__(io.BytesIO(archive.read(f"{prefix}/data.pkl")))
        self._archive, self._prefix, self._file, self._refusal = archive, prefix, file, refusal
        self._classes: dict[str, type[_ScriptObject]] = {}
        self._storages: dict[str, Any] = {}

    def find_class(self, module: str, name: str) -> Any:
        import torch

        qualified = f"{module}.{name}"
        if module == _SCRIPT_MODULE or module.startswith(f"{_SCRIPT_MODULE}."):
            if qualified not in self._classes:
                self._classes[qualified] = type(name, (_ScriptObject,), {"qualified_name": qualified})
            return self._classes[qualified]
        if qualified == "torch._utils._rebuild_tensor_v2":
            return _rebuild_tensor
        if qualified == "collections.OrderedDict":
            return OrderedDict
        if module == "torch.jit._pickle" and name in _TYPE_TAGS:
            return _TYPE_TAGS[name]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(getattr(torch, _STORAGE_DTYPES[name]))
        raise WeightsError(f"{self._file.path} was not loaded: it refers to {qualified}, which {self._refusal}")

    def persistent_load(self, pid: Any) -> Any:
        import torch

        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _Storage)):
            raise pickle.UnpicklingError(f"unexpected persistent id {str(pid)[:60]}")
        _, storage, key, _, count = pid
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}/data/{key}")
            flat = torch.frombuffer(bytearray(raw), dtype=storage.dtype) if raw else torch.empty(0, dtype=storage.dtype)
            if flat.numel() < count:
                raise pickle.UnpicklingError(f"storage {key} holds {flat.numel()} elements, not {count}")
            self._storages[key] = flat
        return self._storages[key]


def _rebuild_tensor(storage: Any, offset: int, size: tuple, stride: tuple, *_: Any) -> Any:
    """``torch._utils._rebuild_tensor_v2`` over a storage read from the archive; its bounds are checked."""
    import torch

    if not isinstance(storage, torch.Tensor) or not all(isinstance(n, int) for n in (offset, *size, *stride)):
        raise pickle.UnpicklingError("a tensor that is not over one of the archive's storages")
    return storage.as_strided(tuple(size), tuple(stride), offset)


def _named_tensors(root: Any, declared: dict[str, set[str]]) -> Iterator[tuple[str, Any]]:
    """Each declared parameter and buffer under its dotted name, walking submodules (each object once)."""
    import torch

    stack, seen = [("", root)], set()
    while stack:
        path, node = stack.pop()
        state = getattr(node, "state", None)
        if id(node) in seen or not isinstance(state, dict):
            continue
        seen.add(id(node))
        tensors = declared.get(node.qualified_name)  # None: a class whose code declares none, all its tensors
        for name, value in state.items():
            if isinstance(value, torch.Tensor) and (tensors is None or name in tensors):
                yield f"{path}{name}", value
            elif isinstance(value, _ScriptObject):
                stack.append((f"{path}{name}.", value))
