"""Known weights as a table, and resolving a name to a verified local file.

Resolution order: an explicit path → ``$OVDET_WEIGHTS_DIR`` (default ``./weights``) → a download into that
folder with a progress bar, a size and SHA-256 check and an atomic rename, so a partial file is never used.
Files whose digest is not published are pinned on first use: their SHA-256 goes into ``SHA256SUMS`` in the
weights folder, and every later use is checked against it. A file is read into memory once and its bytes are
checked and then loaded (:func:`read_weights`), so what was checked is exactly what runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .environment import cache_dir
from .errors import OutputError, WeightsError
from .files import write_atomically

__all__ = [
    "WEIGHTS",
    "WeightsFile",
    "WeightsSpec",
    "download",
    "file_sha256",
    "known_sha256",
    "pin_first_use",
    "read_weights",
    "registry_entry",
    "resolve_weights",
    "weights_dir",
]

log = logging.getLogger(__name__)

DETECTOR_KINDS = ("yolo-world", "yoloe")
_ASSETS = "https://github.com/ultralytics/assets/releases/download/v8.4.0"  # Ultralytics 8.4.190's release tag
_CLIP_SHA256 = "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"
DOWNLOAD_TIMEOUT_S = 30.0
SUMS_FILE = "SHA256SUMS"


@dataclass(frozen=True)
class WeightsSpec:
    """One downloadable weights file.

    Attributes:
        name: Registry key, e.g. ``"yolov8s-worldv2"``.
        filename: Path relative to the weights folder.
        url: Where the file is published.
        kind: ``"yolo-world"`` or ``"yoloe"`` (detectors), ``"clip"`` or ``"mobileclip"`` (text encoders).
        space: Embedding space the file produces or was trained against, by its name in
            ``ovdet.prompts.spaces.SPACES`` (the table of spaces, which names each encoder's row here).
        sha256: Published digest, or ``None`` where none is published (pinned on first use).
        imgsz: Native input size (detectors).
    """

    name: str
    filename: str
    url: str
    kind: str
    space: str
    sha256: str | None = None
    imgsz: int = 640


def _detector(name: str, kind: str, space: str) -> WeightsSpec:
    return WeightsSpec(name=name, filename=f"{name}.pt", url=f"{_ASSETS}/{name}.pt", kind=kind, space=space)


def _mobileclip(name: str, filename: str, space: str) -> WeightsSpec:
    return WeightsSpec(name=name, filename=f"mobileclip/{filename}", url=f"{_ASSETS}/{filename}", kind="mobileclip",
                       space=space)  # fmt: skip


WEIGHTS: dict[str, WeightsSpec] = {
    spec.name: spec
    for spec in (
        *(
            _detector(f"yolov8{scale}-world{version}", "yolo-world", "clip:ViT-B/32")
            for version in ("v2", "")
            for scale in "smlx"
        ),
        *(_detector(f"yoloe-{v}{scale}-seg", "yoloe", "mobileclip:blt") for v in ("11", "v8") for scale in "sml"),
        *(_detector(f"yoloe-26{scale}-seg", "yoloe", "mobileclip2:b") for scale in "nsmlx"),
        WeightsSpec(
            name="clip-vit-b-32",
            filename="clip/ViT-B-32.pt",
            url=f"https://openaipublic.azureedge.net/clip/models/{_CLIP_SHA256}/ViT-B-32.pt",
            kind="clip",
            space="clip:ViT-B/32",
            sha256=_CLIP_SHA256,
        ),
        _mobileclip("mobileclip-blt", "mobileclip_blt.ts", "mobileclip:blt"),
        _mobileclip("mobileclip2-b", "mobileclip2_b.ts", "mobileclip2:b"),
    )
}


def weights_dir() -> Path:
    """The folder that holds weights: ``$OVDET_WEIGHTS_DIR``, else ``./weights``."""
    return Path(os.environ.get("OVDET_WEIGHTS_DIR") or "weights").expanduser()


def lookup(name: str) -> WeightsSpec:
    """Return the registry entry for ``name``, or raise listing the valid names."""
    key = name.removesuffix(".pt")
    for spec in WEIGHTS.values():
        if key in (spec.name, Path(spec.filename).stem) and (key == spec.name or spec.kind in DETECTOR_KINDS):
            return spec
    if key.endswith("-pf"):
        raise WeightsError(
            f"{name!r} is a prompt-free YOLOE checkpoint, which ovdet does not run: use {key.removesuffix('-pf')!r} "
            f"(words as prompts)"
        )
    if f"{key}-seg" in WEIGHTS:
        raise WeightsError(
            f"Ultralytics publishes {key!r} only with masks: use --model {key}-seg (it detects too), or a local .pt"
        )
    raise WeightsError(f"unknown model {name!r}: pass a path to a local .pt file or one of {', '.join(WEIGHTS)}")


def known_sha256(spec: WeightsSpec) -> str | None:
    """The published SHA-256 of ``spec``'s file, else the one pinned in the weights folder, else ``None``."""
    target = weights_dir() / spec.filename
    return spec.sha256 or _pinned_digests(target.parent).get(target.name)


def resolve_weights(name_or_path: str | os.PathLike[str], *, allow_download: bool = True) -> Path:
    """Turn a registry name or a path into a verified local file.

    Args:
        name_or_path: A path to an existing file or folder (an exported model), or a registry name such as
            ``"yolov8s-worldv2"``.
        allow_download: Fetch a missing registry file from its URL (``OVDET_OFFLINE=1`` turns this off).

    Returns:
        The path of a local file that passed its checks.

    Example:
        >>> resolve_weights("yolov8s-worldv2")  # doctest: +SKIP
        PosixPath('weights/yolov8s-worldv2.pt')
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file() or path.is_dir():
        return path
    if os.path.lexists(path):
        raise WeightsError(
            f"{path} cannot be used as weights ({_not_a_file(path)}): pass a YOLO-World .pt file or an exported model"
        )
    looks_like_path = path.suffix != "" or os.sep in text
    if looks_like_path and text.removesuffix(".pt") not in WEIGHTS and path.name.removesuffix(".pt") not in WEIGHTS:
        raise WeightsError(f"weights file {path} does not exist: check the path, or use one of {', '.join(WEIGHTS)}")
    spec = lookup(path.name if looks_like_path else text)
    return resolve_spec(spec, allow_download=allow_download)


def resolve_spec(spec: WeightsSpec, *, allow_download: bool = True) -> Path:
    """Find ``spec``'s file in the weights folder, downloading it if allowed, and verify it."""
    folder = weights_dir()
    target = folder / spec.filename
    if not target.is_file():
        offline = os.environ.get("OVDET_OFFLINE", "").lower() in ("1", "true", "yes")
        if not allow_download or offline:
            raise WeightsError(_missing_message(spec, target, "downloads are off (OVDET_OFFLINE)"))
        download(spec, target)
    verify(spec, target)
    return target


def verify(spec: WeightsSpec, path: Path) -> None:
    """Check ``path`` against the published or the pinned SHA-256 of ``spec`` before anything else runs.

    This early check trusts the remembered digest of an unchanged-looking file; :func:`read_weights` checks the
    bytes that are actually loaded.
    """
    expected = spec.sha256 or _pinned_digests(path.parent).get(path.name)
    if expected is not None:
        _check_digest(spec, path, file_sha256(path), expected)


def _check_digest(spec: WeightsSpec, path: Path, actual: str, expected: str) -> None:
    if actual != expected:
        raise WeightsError(
            f"{path} has SHA-256 {actual[:12]}…, expected {expected[:12]}… for {spec.name}: "
            f"the file is corrupt, altered or a different release; delete it to download again from {spec.url}"
        )


@dataclass(frozen=True)
class WeightsFile:
    """A weights file read into memory once, with the SHA-256 of exactly these bytes.

    Attributes:
        path: Where it was read from (for messages).
        data: Its bytes: load from these, never from ``path`` again.
        sha256: Hex digest of ``data``.
    """

    path: Path
    data: bytes
    sha256: str


def read_weights(path: str | os.PathLike[str], *, check_registry: bool = True) -> WeightsFile:
    """Read a weights file once and hash the bytes read; a registry file must match its published or pinned digest.

    Args:
        path: The file.
        check_registry: Whether a file at a registry entry's place in the weights folder is checked against the
            entry's published or pinned SHA-256 (an explicit ``OVDET_CLIP_WEIGHTS`` is the user's own choice).

    Example:
        >>> read_weights("weights/yolov8s-worldv2.pt").sha256  # doctest: +SKIP
        '3f2a…'
    """
    path = Path(path)
    data = _read_regular_file(path)
    if not data:
        raise WeightsError(f"{path} is empty (0 bytes): download it again or copy the whole file")
    digest = hashlib.sha256(data).hexdigest()
    spec = registry_entry(path) if check_registry else None
    expected = (spec.sha256 or _pinned_digests(path.parent).get(path.name)) if spec else None
    if expected is not None:
        _check_digest(spec, path, digest, expected)
    return WeightsFile(path, data, digest)


def _read_regular_file(path: Path) -> bytes:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a named pipe must not block the open
    except OSError as exc:
        reason = exc.strerror or exc
        raise WeightsError(f"{path} cannot be read ({reason}): check the path and its permissions") from exc
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise WeightsError(f"{path} is {what}, not a weights file: pass the .pt file itself")
    try:
        with os.fdopen(descriptor, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise WeightsError(f"{path} cannot be read ({exc.strerror or exc}): copy it again or check the disk") from exc


def registry_entry(path: Path) -> WeightsSpec | None:
    """The registry entry whose place in the weights folder ``path`` is, if any."""
    folder = path.parent.resolve()
    for spec in WEIGHTS.values():
        place = weights_dir() / spec.filename
        if path.name == place.name and folder == place.parent.resolve():
            return spec
    return None


def _not_a_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except OSError as exc:  # a symlink loop or a dangling link
        return exc.strerror or type(exc).__name__
    return "a named pipe" if stat.S_ISFIFO(mode) else "not a regular file"


def download(spec: WeightsSpec, target: Path) -> Path:
    """Download ``spec.url`` to ``target`` with a progress bar; the file appears only once it is complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    log.info("downloading %s from %s", spec.name, spec.url)
    try:
        with urllib.request.urlopen(spec.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            digest = hashlib.sha256()
            written = 0
            with (
                open(partial, "wb") as out,
                tqdm(total=total, unit="B", unit_scale=True, desc=target.name, leave=False) as bar,
            ):
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        partial.unlink(missing_ok=True)
        raise WeightsError(_missing_message(spec, target, f"the download failed ({_reason(exc)})")) from exc
    if total is not None and written != total:
        partial.unlink(missing_ok=True)
        raise WeightsError(
            f"download of {spec.url} stopped at {written} of {total} bytes: run again to retry, "
            f"or put the file at {target} by hand"
        )
    actual = digest.hexdigest()
    if spec.sha256 and actual != spec.sha256:
        partial.unlink(missing_ok=True)
        raise WeightsError(
            f"download of {spec.url} has SHA-256 {actual[:12]}…, expected {spec.sha256[:12]}…: "
            f"the server sent another file; nothing was saved, retry later or fetch it by hand into {target}"
        )
    os.replace(partial, target)
    _remember_digest(target, actual)
    return target


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered in the cache folder by path, size and mtime so a file is hashed once."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    known = _load_digest_cache()
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    _remember_digest(path, digest.hexdigest())
    return digest.hexdigest()


def _remember_digest(path: Path, digest: str) -> None:
    path = Path(path).resolve()
    stat = path.stat()
    known = _load_digest_cache()
    known[f"{path}|{stat.st_size}|{stat.st_mtime_ns}"] = digest
    store = cache_dir() / "digests.json"
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        write_atomically([(store, json.dumps(known, indent=0).encode())], sync=False)
    except (OSError, OutputError) as exc:  # a read-only cache only costs a re-hash next time
        log.debug("could not record the digest of %s: %s", path, exc)


def _load_digest_cache() -> dict[str, str]:
    try:
        return json.loads((cache_dir() / "digests.json").read_text())
    except (OSError, ValueError):
        return {}


def _pinned_digests(folder: Path) -> dict[str, str]:
    try:
        lines = (folder / SUMS_FILE).read_text().splitlines()
    except OSError:
        return {}
    pinned = {}
    for line in lines:
        digest, _, name = line.strip().partition("  ")
        if digest and name:
            pinned[name] = digest
    return pinned


def pin_first_use(file: WeightsFile) -> None:
    """Record the SHA-256 of a registry file that has no published digest, once its bytes loaded as the right model.

    The digest pinned is that of the bytes that were loaded; later uses are checked against it, so a swapped or
    damaged file is caught.
    """
    spec = registry_entry(file.path)
    if spec is None or spec.sha256 is not None or file.path.name in _pinned_digests(file.path.parent):
        return
    sums = file.path.parent / SUMS_FILE
    try:
        with open(sums, "a") as handle:
            handle.write(f"{file.sha256}  {file.path.name}\n")
        log.info("pinned SHA-256 %s of %s in %s", file.sha256, file.path.name, sums)
    except OSError as exc:
        log.warning("could not pin the SHA-256 of %s in %s: %s", file.path, sums, exc)


def _missing_message(spec: WeightsSpec, target: Path, why: str) -> str:
    return (
        f"{spec.filename} is not in {target.parent} and {why}: download {spec.url} and put it at {target} "
        f"(or set OVDET_WEIGHTS_DIR to the folder that holds it)"
    )


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return str(reason).splitlines()[0] if str(reason) else type(exc).__name__
