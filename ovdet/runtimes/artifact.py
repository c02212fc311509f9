"""An exported detector on disk: its folder, its files and the ``ovdet.json`` metadata that travels with it.

Layout of an export folder::

    yolov8s-worldv2-onnx-dynamic16/
    ├── ovdet.json                      what this file describes
    ├── yolov8s-worldv2.onnx            the detector graph (.xml + .bin, .torchscript or .engine for other formats)
    ├── text-encoder.onnx               CLIP text tower (changeable vocabulary only)
    └── bpe_simple_vocab_16e6.txt.gz    its tokenizer's byte-pair merges (changeable vocabulary only)

Reading it needs no torch: deployments load it with numpy and their runtime only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..core.errors import OvdetError, WeightsError
from ..prompts.spaces import CLIP_SPACE, SPACES
from .metadata_fields import check_fields
from .registry import runtime_for_suffix, runtime_named

__all__ = [
    "METADATA_FILE",
    "SCHEMA",
    "Artifact",
    "ArtifactMetadata",
    "TextTowerInfo",
    "artifact_format",
    "exported_metadata",
    "load_graph",
]

T = TypeVar("T")

METADATA_FILE = "ovdet.json"
SCHEMA = 1
MAX_METADATA_BYTES = 16 << 20  # ovdet.json of 100,000 baked class names is under 4 MB
IMAGES_INPUT, TEXT_INPUT, OUTPUT, PROTOTYPES = "images", "text_embeddings", "output0", "output1"
# Fields absent from exports of earlier ovdet, and their values there
_OPTIONAL = {"family": "yolo-world", "task": "detect", "end2end": False, "model_sha256": None}


@dataclass(frozen=True)
class TextTowerInfo:
    """The exported CLIP text tower of a changeable-vocabulary artifact.

    Attributes:
        model_file: ONNX file of the tower, relative to the artifact folder; ``input_ids`` in, features out.
        vocab_file: CLIP's byte-pair merges (``bpe_simple_vocab_16e6.txt.gz``), relative to the folder.
        cache_key: The embedding-cache key of the source encoder (``space@weights SHA-256``).
        context_length: Tokens per prompt; exports written before it was recorded were CLIP's.
    """

    model_file: str
    vocab_file: str
    cache_key: str
    context_length: int = SPACES[CLIP_SPACE].context_length


@dataclass(frozen=True)
class ArtifactMetadata:
    """What ``ovdet.json`` records about an exported detector.

    Attributes:
        format: ``"onnx"``, ``"openvino"``, ``"torchscript"`` or ``"engine"``.
        model_file: The detector graph, relative to the artifact folder.
        vocabulary: ``"fixed"`` (embeddings baked in) or ``"dynamic"`` (embeddings are an input).
        max_classes: Classes per call: exactly this many when fixed, at most this many when dynamic.
        classes: The baked class names (fixed), else ``None``.
        embedding_space: Space the head was trained on, e.g. ``"clip:ViT-B/32"``.
        embedding_dim: Length of one text embedding.
        imgsz: Input size it was exported for (the largest an engine accepts).
        stride: Largest stride; inputs are padded to a multiple of it.
        max_batch: Most images per call for engines; ``None`` where the batch is dynamic.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"`` (INT8 convolutions, the rest in floating point): the
            precision of the weights and the computation.
        input_dtype: ``"float32"`` or ``"float16"``: the dtype of the inputs, which can stay FP32 in an FP16 graph.
        source_weights: File name of the PyTorch weights it came from.
        source_sha256: SHA-256 of those weights.
        ovdet_version: The ovdet that wrote it.
        text_encoder: The exported text tower (dynamic), else ``None``.
        family: ``"yolo-world"`` or ``"yoloe"``.
        task: ``"detect"``, or ``"segment"``: the graph then also outputs mask prototypes (``output1``).
        end2end: A one-to-one head (YOLOE-26): its output is top-k selected, never NMS'd.
        model_sha256: SHA-256 of ``model_file`` (TorchScript exports): a TorchScript graph is code, and it is
            loaded only when its bytes match this digest.
        schema: Version of this layout.

    Example:
        >>> meta = ArtifactMetadata.from_json(json_text)  # doctest: +SKIP
        >>> meta.vocabulary, meta.max_classes  # doctest: +SKIP
        ('dynamic', 16)
    """

    format: str
    model_file: str
    vocabulary: str
    max_classes: int
    classes: tuple[str, ...] | None
    embedding_space: str
    embedding_dim: int
    imgsz: int
    stride: int
    max_batch: int | None
    precision: str
    input_dtype: str
    source_weights: str
    source_sha256: str
    ovdet_version: str
    text_encoder: TextTowerInfo | None = None
    family: str = "yolo-world"
    task: str = "detect"
    end2end: bool = False
    model_sha256: str | None = None
    schema: int = field(default=SCHEMA)

    @property
    def dynamic(self) -> bool:
        """Whether the vocabulary can change after export."""
        return self.vocabulary == "dynamic"

    def to_json(self) -> str:
        """The ``ovdet.json`` text."""
        data = asdict(self)
        data["classes"] = list(self.classes) if self.classes is not None else None
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = METADATA_FILE) -> ArtifactMetadata:
        """Parse and check ``ovdet.json``; every problem is a :class:`WeightsError` naming ``where``."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise WeightsError(f"{where} is not valid JSON ({exc}): re-export the model with ovdet export") from exc
        if not isinstance(data, dict):
            raise WeightsError(f"{where} is not an ovdet export description: re-export the model with ovdet export")
        schema = data.get("schema")
        if type(schema) is not int or schema != SCHEMA:
            raise WeightsError(
                f"{where} has layout version {schema!r} (field schema), this ovdet reads version {SCHEMA}: "
                f"re-export the model with this ovdet (written by ovdet {data.get('ovdet_version', '?')})"
            )
        expected = {name for name in cls.__dataclass_fields__ if name not in ("text_encoder", "schema", *_OPTIONAL)}
        missing = sorted(expected - set(data))
        if missing:
            raise WeightsError(f"{where} lacks {', '.join(missing)}: re-export the model with ovdet export")
        check_fields(data, where)
        fields = {name: data[name] for name in expected} | {name: data.get(name, _OPTIONAL[name]) for name in _OPTIONAL}
        if fields["classes"] is not None:
            fields["classes"] = tuple(fields["classes"])
        text_tower = data.get("text_encoder")
        metadata = cls(**fields, text_encoder=TextTowerInfo(**text_tower) if text_tower is not None else None)
        metadata.check(where)
        return metadata

    def check(self, where: str = METADATA_FILE) -> None:
        """Raise :class:`WeightsError` if the fields contradict each other."""
        problems = []
        if self.family == "yolo-world" and (self.task, self.end2end) != ("detect", False):
            problems.append("a yolo-world export detects (task detect) with NMS (end2end false)")
        if (self.family == "yoloe") == self.embedding_space.startswith("clip:"):
            problems.append(f"family {self.family} does not use the embedding space {self.embedding_space}")
        if self.imgsz % self.stride:
            problems.append(f"imgsz {self.imgsz} is not a multiple of the stride {self.stride}")
        if self.vocabulary == "fixed" and (self.classes is None or len(self.classes) != self.max_classes):
            problems.append(f"a fixed vocabulary needs {self.max_classes} class names")
        if self.vocabulary == "dynamic" and self.classes is not None:
            problems.append("a dynamic vocabulary has no baked class names")
        if problems:
            raise WeightsError(
                f"{where} is inconsistent ({'; '.join(problems)}): re-export the model with ovdet export"
            )


@dataclass(frozen=True)
class Artifact:
    """An export folder whose metadata has been read and checked.

    Attributes:
        folder: The artifact folder.
        metadata: Its ``ovdet.json``.

    Example:
        >>> artifact = Artifact.open("runs/export/yolov8s-worldv2-onnx-dynamic16", "onnx")  # doctest: +SKIP
        >>> artifact.model_path.name  # doctest: +SKIP
        'yolov8s-worldv2.onnx'
    """

    folder: Path
    metadata: ArtifactMetadata

    @property
    def model_path(self) -> Path:
        """The detector graph file."""
        return self.folder / self.metadata.model_file

    @classmethod
    def open(cls, path: str | os.PathLike[str], expected_format: str) -> Artifact:
        """Read the artifact at ``path`` (its folder or its graph file) and check that it is complete.

        Raises:
            WeightsError: ``ovdet.json`` is missing, unreadable, of another format, or names files that are absent.
        """
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        metadata = read_metadata(folder, path.name)
        if metadata.format != expected_format:
            raise WeightsError(
                f"{folder / METADATA_FILE} describes a {metadata.format} export, not {expected_format}: "
                f"pass its {metadata.model_file} file or its folder"
            )
        if not path.is_dir() and path.name != metadata.model_file:
            raise WeightsError(
                f"{folder / METADATA_FILE} describes {metadata.model_file}, not {path.name}: "
                f"keep each export in its own folder as ovdet export writes it"
            )
        artifact = cls(folder, metadata)
        absent = [name for name in artifact.file_names() if not (folder / name).is_file()]
        if absent:
            raise WeightsError(
                f"the export in {folder} is incomplete, {', '.join(absent)} missing: copy the whole folder or re-export"
            )
        outside = [name for name in artifact.file_names() if (folder / name).resolve().parent != folder.resolve()]
        if outside:
            raise WeightsError(
                f"{folder / METADATA_FILE} names {', '.join(outside)}, a link to a file outside the export folder: "
                f"copy the whole folder (files, not links) or re-export"
            )
        return artifact

    def file_names(self) -> list[str]:
        """Every file of the artifact, ``ovdet.json`` included, relative to its folder."""
        names = [METADATA_FILE, self.metadata.model_file]
        if self.metadata.format == "openvino":
            names.append(str(Path(self.metadata.model_file).with_suffix(".bin")))
        if self.metadata.text_encoder is not None:
            names += [self.metadata.text_encoder.model_file, self.metadata.text_encoder.vocab_file]
        return names

    def size_bytes(self) -> dict[str, int]:
        """Bytes on disk: ``detector`` (graph and weights), ``text_encoder`` (tower and vocabulary) and ``total``."""
        text_files = set()
        if self.metadata.text_encoder is not None:
            text_files = {self.metadata.text_encoder.model_file, self.metadata.text_encoder.vocab_file}
        sizes = {name: (self.folder / name).stat().st_size for name in self.file_names()}
        text = sum(size for name, size in sizes.items() if name in text_files)
        return {"detector": sum(sizes.values()) - text, "text_encoder": text, "total": sum(sizes.values())}

    def check_graph(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        """Check the graph's inputs (names, text slots) and outputs (names, class rows) against the metadata.

        Args:
            inputs: Input name → shape as the runtime reports it (dimensions may be symbolic or ``-1``).
            outputs: Output name → shape, likewise.
        """
        metadata = self.metadata
        expected = [IMAGES_INPUT, TEXT_INPUT] if metadata.dynamic else [IMAGES_INPUT]
        text_shape = list(inputs.get(TEXT_INPUT, ()))
        slots_match = not metadata.dynamic or text_shape[:1] == [metadata.max_classes]
        width = _known(text_shape[1:2])
        slots_match = slots_match and (not metadata.dynamic or width in (None, metadata.embedding_dim))
        if sorted(inputs) != sorted(expected) or not slots_match:
            slots = f"{metadata.max_classes} text slots of {metadata.embedding_dim}"
            raise self._mismatch(f"inputs {', '.join(expected)} with {slots}", inputs)
        expected = [OUTPUT, PROTOTYPES] if metadata.task == "segment" else [OUTPUT]
        if sorted(outputs) != sorted(expected):
            raise self._mismatch(f"outputs {', '.join(expected)}", outputs)
        self.check_output(outputs[OUTPUT])

    def check_output(self, shape: Sequence[Any]) -> None:
        """Check the rows of the graph's first output: 4 box rows, a row per class slot, then (segmenting) the mask
        coefficients. A graph whose rows are known only once it runs is checked on its first output.

        Args:
            shape: The output's shape (a dimension may be symbolic or ``-1``).
        """
        rows = _known(list(shape)[1:2])
        if rows is not None and not _rows_fit(rows, self.metadata):
            raise self._mismatch(f"{OUTPUT} with 4 + {self.metadata.max_classes} rows", {OUTPUT: shape})

    def _mismatch(self, expected: str, found: dict[str, Any]) -> WeightsError:
        shapes = ", ".join(f"{name}{list(shape)}" for name, shape in found.items())
        return WeightsError(
            f"{self.model_path} does not match its {METADATA_FILE} (expected {expected}, found {shapes}): "
            f"re-export the model with ovdet export"
        )


def _known(dimension: list[Any]) -> int | None:
    """A graph's ``[dimension]`` as a number; ``None`` where it is absent or symbolic (``None``, a name, ``-1``)."""
    if not dimension or not isinstance(dimension[0], int) or dimension[0] < 0:
        return None
    return dimension[0]


def _rows_fit(rows: int, metadata: ArtifactMetadata) -> bool:
    """Box and class rows, then (segmenting) mask coefficients: a detection graph has exactly 4 + classes."""
    boxes_and_classes = 4 + metadata.max_classes
    return rows > boxes_and_classes if metadata.task == "segment" else rows == boxes_and_classes


def load_graph(path: Path, runtime: str, load: Callable[[], T], shown: str | None = None) -> T:
    """``load()`` of the graph file ``path``; a file the runtime cannot read (random bytes, truncated, edited) is one
    :class:`WeightsError` line naming it (``shown``: the files to name, default ``path``), not the runtime's own
    exception.

    Example:
        >>> session = load_graph(path, "onnxruntime", lambda: onnxruntime.InferenceSession(str(path)))  # doctest: +SKIP
    """
    try:
        return load()
    except (OvdetError, MemoryError):
        raise
    except Exception as exc:  # each runtime raises its own types for a damaged file
        raise WeightsError(
            f"{runtime} cannot load {shown or path} ({_reason(exc)}): if the file was damaged or replaced, re-export "
            f"the model with ovdet export"
        ) from exc


def _reason(exc: Exception) -> str:
    """The runtime's own words, without the lines that only say where in its sources it failed."""
    lines = [line.strip() for line in str(exc).splitlines()]
    said = [line for line in lines if line and not line.startswith(("Exception from ", "Check '"))]
    return said[0][:300] if said else type(exc).__name__


def read_metadata(folder: Path, shown_name: str) -> ArtifactMetadata:
    """Read ``folder/ovdet.json``, with an error that explains what an ovdet export is when it is missing."""
    where = folder / METADATA_FILE
    if where.exists() and not where.is_file():
        raise WeightsError(f"{where} is not a file: re-export the model with ovdet export")
    try:
        with where.open("rb") as handle:
            data = handle.read(MAX_METADATA_BYTES + 1)
    except FileNotFoundError as exc:
        raise WeightsError(
            f"{shown_name} is not an ovdet export (no {METADATA_FILE} in {folder}): load a folder written by "
            f"ovdet export or the model file inside it, or a YOLO-World .pt file"
        ) from exc
    except OSError as exc:
        raise WeightsError(f"cannot read {where} ({exc.strerror}): check its permissions") from exc
    if len(data) > MAX_METADATA_BYTES:
        raise WeightsError(f"{where} is over {MAX_METADATA_BYTES >> 20} MB: re-export the model with ovdet export")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WeightsError(f"{where} is not UTF-8 text: re-export the model with ovdet export") from exc
    return ArtifactMetadata.from_json(text, str(where))


def artifact_format(path: str | os.PathLike[str]) -> str | None:
    """The export format of ``path``: from ``ovdet.json`` for a folder, else from the file suffix; ``None`` if neither.

    Example:
        >>> artifact_format("model.onnx")
        'onnx'
    """
    path = Path(path)
    if path.is_dir():
        return read_metadata(path, path.name).format
    runtime = runtime_for_suffix(path.suffix)
    return runtime.format if runtime is not None else None


def exported_metadata(path: str | os.PathLike[str]) -> ArtifactMetadata | None:
    """The metadata of the export at ``path`` (its folder or its model file); ``None`` for anything else, such as a
    ``.pt`` file or a registry name."""
    path = Path(path)
    if path.suffix in runtime_named("torch").suffixes:  # weights, even a folder so named: their loading says what
        return None
    exported = artifact_format(path) if path.exists() else None
    return Artifact.open(path, exported).metadata if exported is not None else None
