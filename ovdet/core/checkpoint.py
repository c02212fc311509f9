"""Unpickling ``.pt`` files without running code from them.

A ``.pt`` file is a pickle, and a pickle can call any function while it loads. ovdet loads weights with PyTorch's
restricted unpickler (``weights_only=True``), which only builds tensors, plain containers and the types on an
allowlist; a file that refers to anything else is refused, naming it, before that reference is looked up.
``OVDET_TRUST_WEIGHTS=1`` lifts the restriction for files one made oneself. A TorchScript archive is never loaded
here, trusted or not: ``torch.load`` would pass it to ``torch.jit.load``, which runs its code.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from .errors import WeightsError
from .script_archive import is_torchscript
from .weights import WeightsFile

__all__ = ["TRUST_VARIABLE", "load", "trusted"]

TRUST_VARIABLE = "OVDET_TRUST_WEIGHTS"
_LOCK = threading.Lock()  # one load at a time, so that no load sees another's allowlist
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")  # as torch's restricted unpickler names what it refused

Allowlist = Callable[[io.BytesIO], AbstractContextManager[Any]]


def trusted() -> bool:
    """Whether the user opted out of restricted loading (``OVDET_TRUST_WEIGHTS=1``)."""
    return os.environ.get(TRUST_VARIABLE, "").lower() in ("1", "true", "yes")


def load(file: WeightsFile, kind: str, allowlist: Allowlist | None = None) -> Any:
    """``torch.load`` of ``file``'s bytes, restricted to what a ``kind`` checkpoint holds unless trusted.

    Args:
        file: The bytes to load (already checked against their digest).
        kind: What the file should be, for messages, e.g. ``"YOLO-World"``.
        allowlist: Given the bytes, a context manager under which the globals such a checkpoint needs are allowed
            (for example Ultralytics' model classes); ``None`` allows only PyTorch's own safe types.

    Example:
        >>> state_dict = load(read_weights("clip.pt"), "CLIP")  # doctest: +SKIP
    """
    import torch

    if is_torchscript(file.data):  # torch.load would hand it to torch.jit.load, which runs its code, trusted or not
        raise WeightsError(
            f"{file.path} is a TorchScript archive, not a {kind} checkpoint: loading TorchScript runs its code, so "
            f"ovdet never loads it as weights; pass the {kind} .pt file saved with torch.save"
        )
    if trusted():
        return torch.load(io.BytesIO(file.data), map_location="cpu", weights_only=False)
    with _LOCK, (allowlist or _only_torch_types)(io.BytesIO(file.data)):
        _refuse_unexpected(file, kind, _unsafe_globals(file.data))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's notes on pickle protocols are for developers
                return torch.load(io.BytesIO(file.data), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:  # the legacy format cannot be scanned beforehand
            match = _REFUSED_GLOBAL.search(str(exc))
            if match is None:
                raise
            _refuse_unexpected(file, kind, [match.group(1)])
            raise


@contextmanager
def _only_torch_types(_: io.BytesIO) -> Iterator[None]:
    """PyTorch's own safe types only, for the time of one load.

    Ultralytics' restricted loader allows its model classes for the rest of the process, and calling one of them
    (which a pickle can do) builds a model from a configuration; a file that is not an Ultralytics checkpoint
    must not get to do that.
    """
    import torch

    serialization = torch.serialization
    if not hasattr(serialization, "clear_safe_globals"):  # torch < 2.4 has no process-wide allowlist to mind
        yield
        return
    allowed = serialization.get_safe_globals()
    serialization.clear_safe_globals()
    try:
        yield
    finally:
        serialization.add_safe_globals(allowed)


def _unsafe_globals(data: bytes) -> list[str]:
    """Globals of a zip-format checkpoint outside the current allowlist, found without unpickling anything."""
    import torch

    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data)))
    except Exception:  # not a torch.save zip (legacy format, TorchScript, damaged): torch.load says which
        return []


def _refuse_unexpected(file: WeightsFile, kind: str, names: list[str]) -> None:
    if names:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise WeightsError(
            f"{file.path} was not loaded: it refers to {shown}, which a {kind} checkpoint does not hold, and "
            f"unpickling it could run code; if you made this file yourself, set {TRUST_VARIABLE}=1 to load it"
        )
