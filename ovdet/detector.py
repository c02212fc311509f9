"""``OpenVocabDetector``: expensive work once (``set_classes``), cheap work per image (``detect``)."""

from __future__ import annotations

import os
import reprlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from .analytics.rules import Rule
from .analytics.stream import Analysed, Analytics, analyse_stream
from .analytics.zones import Geometry
from .analytics.zones_yaml import ZonesFile, check_rule_classes
from .core.config import InferenceSettings
from .core.errors import ConfigError, ModelError, SourceError, VocabularyError
from .core.profiling import Profiler
from .core.weights import resolve_weights
from .export.exporter import ExportOptions, export_backend
from .io.images import load_image
from .io.pipeline import detect_stream
from .io.sources import Frame, FrameSource, open_source
from .models import choose_precision, load_backend, torch_backend_of
from .prompts.cache import EmbeddingCache
from .prompts.classes import ClassTable, embed
from .prompts.embeddings import Embeddings
from .prompts.spaces import TextEncoder
from .prompts.vocabulary import Vocabulary
from .prompts.vocabulary_files import load_vocabulary
from .runtimes.backend import Backend
from .vision.postprocess import postprocess
from .vision.preprocess import letterbox_batch

__all__ = ["OpenVocabDetector"]


def _untimed(stage: str) -> nullcontext[None]:
    return nullcontext()


class OpenVocabDetector:
    """Detect objects named in words, with YOLO-World or YOLOE.

    Args:
        model: A registry name (``"yolov8s-worldv2"``, m, l, x), a local YOLO-World or YOLOE ``.pt`` file, or an
            ``ovdet export``.
        device: ``"auto"`` picks CUDA when present; else ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        runtime: For a ``.pt``: ``"auto"`` (OpenVINO on a CPU, converted once per weights file and cached;
            PyTorch on CUDA; ``$OVDET_RUNTIME`` overrides), ``"torch"``, ``"openvino"`` or ``"onnxruntime"``.
        text_encoder: Encoder for prompts; default: the model's own (CLIP ViT-B/32 for YOLO-World, MobileCLIP-B or
            MobileCLIP2-B for YOLOE), loaded only when a prompt is not cached.
        cache_dir: Folder of the embedding cache; default ``$OVDET_CACHE_DIR/embeddings``.
        precision: ``"fp32"`` (the default), ``"bf16"`` or ``"fp16"`` (both the device's reduced floating point,
            as ``half=True``: BF16 on a CPU with OpenVINO, FP16 on CUDA), or ``"int8"``.
        calibration: INT8 for a ``.pt`` run by OpenVINO: a video file or image folder of your own scenes that the
            cached conversion is calibrated on (convolutions INT8; whatever takes the class embeddings stays in
            floating point, so classes still change freely).
        vocabulary: Classes to set at once: a vocabulary file (``.yaml`` or ``.npz``), a
            :class:`~ovdet.prompts.vocabulary.Vocabulary` or :class:`~ovdet.prompts.embeddings.Embeddings`. A
            precision it records (written by ``ovdet eval --write-vocab``) is used for a ``.pt`` unless
            ``precision`` or ``half`` is given.
        task: ``"detect"`` or ``"segment"``; ``None``: what the model does. A ``-seg`` YOLOE segments (each
            detection gets a ``mask``); ``"detect"`` on it skips the mask branch.
        **settings: Defaults for :class:`InferenceSettings` (``conf``, ``iou``, ``imgsz``, ``max_det``, ``half``,
            ``agnostic_nms``, ``batch``). An exported model's ``imgsz`` defaults to the one it was exported at.

    Attributes:
        precision: The precision chosen: asked for, recorded by the vocabulary, an INT8 export's, or ``"fp32"``;
            ``backend.precision`` is what the runtime computes in (``bf16`` or ``fp16`` for reduced precision).
        calibration: The INT8 calibration source of a converted ``.pt``, else ``None``.

    Example:
        >>> detector = OpenVocabDetector("yolov8s-worldv2")  # doctest: +SKIP
        >>> detector.set_classes(["red backpack", "person wearing sunglasses"])  # doctest: +SKIP
        >>> detections = detector.detect("street.jpg", conf=0.1)  # doctest: +SKIP
        >>> detections.data["class_name"]  # doctest: +SKIP
        array(['red backpack'], dtype='<U12')
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = "yolov8s-worldv2",
        *,
        device: str = "auto",
        runtime: str = "auto",
        text_encoder: TextEncoder | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        calibration: str | os.PathLike[str] | None = None,
        precision: str | None = None,
        vocabulary: str | os.PathLike[str] | Vocabulary | Embeddings | None = None,
        task: str | None = None,
        **settings: Any,
    ) -> None:
        self.model_path = resolve_weights(model)
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocabulary(vocabulary)
        recorded = vocabulary.as_vocabulary() if isinstance(vocabulary, Embeddings) else vocabulary
        choice = choose_precision(self.model_path, precision, settings.get("half"), calibration, recorded)
        self.precision, self.calibration = choice.precision, choice.calibration
        self.settings = InferenceSettings().replace(**{**settings, "half": choice.half})
        self.backend: Backend = load_backend(
            self.model_path, device=device, half=choice.half, runtime=runtime, calibration=choice.calibration,
            text_encoder=text_encoder, task=task,
        )  # fmt: skip
        exported_imgsz = getattr(self.backend, "default_imgsz", None)
        if settings.get("imgsz") is None and exported_imgsz:
            self.settings = self.settings.replace(imgsz=exported_imgsz)
        self._text_encoder = text_encoder
        self._cache = EmbeddingCache(cache_dir)
        fixed = self.backend.fixed_classes
        self._table: ClassTable | None = ClassTable.of(Vocabulary.from_names(fixed)) if fixed else None
        self.vocabulary_version = 0  # bumped by every vocabulary change, so running streams can follow it
        self.profiler: Profiler | None = None  # set one to measure time per stage
        if vocabulary is not None:
            self.set_classes(vocabulary)

    def __repr__(self) -> str:
        classes = ", ".join(self.classes) or "none set"
        where = f"{self.backend.name} on {self.backend.device}"
        return f"OpenVocabDetector({self.model_path.name}, {where}, classes: {classes})"

    @property
    def text_encoder(self) -> TextEncoder:
        """The prompt encoder, created on first use (constructing it loads no model)."""
        if self._text_encoder is None:
            self._text_encoder = self.backend.default_text_encoder()
        return self._text_encoder

    @property
    def task(self) -> str:
        """``"segment"`` when each detection gets a ``mask``, else ``"detect"``; the backend runs that task."""
        return self.backend.task

    @property
    def classes(self) -> tuple[str, ...]:
        """The current class names, in class-id order."""
        return self._table.names if self._table is not None else ()

    @property
    def embeddings(self) -> Embeddings | None:
        """The current vocabulary's embeddings; ``None`` before :meth:`set_classes` or for a fixed-class export."""
        return self._table.embeddings if self._table is not None else None

    @property
    def vocabulary(self) -> Vocabulary | None:
        """The current vocabulary (classes, phrasings, thresholds, decoys), or ``None`` before :meth:`set_classes`."""
        return self._table.vocabulary if self._table is not None else None

    def set_classes(self, classes: Sequence[str] | Vocabulary | Embeddings) -> None:
        """Set what to detect: class names, a :class:`~ovdet.prompts.vocabulary.Vocabulary`, or precomputed embeddings.

        Plain names are each encoded as their own prompt (as Ultralytics does). A vocabulary averages each class's
        phrasings × templates and adds decoys, which compete for boxes and are then dropped. Prompts found in the
        embedding cache are not encoded again; when all are cached, no text model loads.

        Example:
            >>> detector.set_classes(["infusion pump", "syringe driver"])  # doctest: +SKIP
            >>> detector.set_classes(load_vocabulary("vocab.yaml"))  # doctest: +SKIP
        """
        if isinstance(classes, Embeddings):
            self.set_embeddings(classes)
            return
        vocabulary = classes if isinstance(classes, Vocabulary) else Vocabulary.from_names(classes)
        if self.backend.fixed_classes is not None:
            self._use_fixed_classes(vocabulary)
            return
        self._check_slots(len(vocabulary.row_prompts()))  # before encoding: 10,000 names for 16 slots take minutes
        self._apply(embed(vocabulary, self.text_encoder, self._cache))

    def embed_vocabulary(self, vocabulary: Vocabulary) -> Embeddings:
        """A vocabulary's embeddings, through the cache, without setting them: ``set_classes`` of the result is cheap
        (a server encodes on one thread while another detects).

        Example:
            >>> detector.set_classes(detector.embed_vocabulary(Vocabulary.from_names(["cat"])))  # doctest: +SKIP
        """
        return embed(vocabulary, self.text_encoder, self._cache).embeddings

    def set_embeddings(self, embeddings: Embeddings) -> None:
        """Use precomputed embeddings (e.g. from ``ovdet embed``: ``Embeddings.load("vocab.npz")``).

        No text model is needed; thresholds and decoys stored with them by ``ovdet embed`` apply.
        """
        if not isinstance(embeddings, Embeddings):
            raise VocabularyError(
                f"set_embeddings takes Embeddings, got {reprlib.repr(embeddings)}: pass Embeddings.load('vocab.npz')"
            )
        table = ClassTable.of_embeddings(embeddings)
        if self.backend.fixed_classes is not None:
            self._use_fixed_classes(table.vocabulary)
            return
        self._apply(table)

    def _apply(self, table: ClassTable) -> None:
        embeddings = table.embeddings
        embeddings.require_space(self.backend.space, f"{self.model_path.name}")
        rows = len(table.reported)
        if len(embeddings) != rows:
            raise VocabularyError(
                f"embeddings have {len(embeddings)} rows but the vocabulary needs {rows}: "
                f"re-create them with ovdet embed"
            )
        self._check_slots(rows)
        self.backend.set_vocabulary(embeddings.vectors)
        self._table = table
        self.vocabulary_version += 1

    def _check_slots(self, rows: int) -> None:
        limit = self.backend.max_classes
        if limit is not None and rows > limit:
            raise ModelError(
                f"{self.model_path.name} takes at most {limit} classes (decoys included), got {rows}: "
                f"use fewer classes or re-export with a larger --max-classes"
            )

    def _use_fixed_classes(self, vocabulary: Vocabulary) -> None:
        fixed = self.backend.fixed_classes
        if vocabulary.names != fixed or vocabulary.dropped:
            raise ModelError(
                f"{self.model_path.name} was exported with the fixed classes {', '.join(fixed)} and cannot detect "
                f"{', '.join(vocabulary.names)}: pass exactly those classes, or re-export with --dynamic-vocab"
            )
        self._table = ClassTable.of(Vocabulary.from_names(fixed) if vocabulary.templates != ("{}",) else vocabulary)
        self.vocabulary_version += 1

    def detect(self, images: Any, **settings: Any) -> sv.Detections | list[sv.Detections]:
        """Detect the current classes in one image or a list of images (one batched forward).

        Args:
            images: A path, a BGR numpy array, a PIL image, or a list of them.
            **settings: Per-call overrides of :class:`InferenceSettings`.

        Returns:
            ``supervision.Detections`` in original-image pixels with ``confidence``, ``class_id`` and
            ``data["class_name"]``; a list of them for a list input.
        """
        settings = self.settings.replace(**settings)
        single = not isinstance(images, (list, tuple))
        arrays = [load_image(image) for image in ([images] if single else images)]
        results = self.detect_arrays(arrays, settings) if arrays else []
        return results[0] if single else results

    def stream(
        self,
        source: str | int | os.PathLike[str] | FrameSource,
        *,
        vid_stride: int = 1,
        track: bool = False,
        reconnect_timeout: float = 30.0,
        stop: threading.Event | None = None,
        zones: str | os.PathLike[str] | ZonesFile | Geometry | None = None,
        rules: Sequence[Rule] | None = None,
        **settings: Any,
    ) -> Iterator[tuple[Frame, sv.Detections]] | Iterator[Analysed]:
        """Detect in every frame of a video file, stream, webcam or image folder, in order, exactly once.

        Decoding runs ahead in a thread; frames are inferred ``batch`` at a time. Calling :meth:`set_classes`
        between two frames changes the vocabulary from the next frame on (and restarts the tracker).

        Args:
            source: A video file, a stream URL (rtsp/rtmp/http), a webcam index, an image folder or glob, or a
                :class:`~ovdet.io.sources.FrameSource`.
            vid_stride: Process every n-th frame.
            track: Give detections stable ``tracker_id`` values across frames (ByteTrack).
            reconnect_timeout: Seconds a dropped live stream may stay away before the stream ends.
            stop: Set it (from another thread or a signal handler) to end the stream after the frames in flight,
                without waiting for a stream that is reconnecting.
            zones: A zones file (zones, lines and rules; see :mod:`ovdet.analytics.zones_yaml`) or its parsed
                form. Lines and ``dwell``/``crosses`` rules turn tracking on.
            rules: :class:`~ovdet.analytics.rules.Rule` objects to use instead of the zones file's rules.
            **settings: Per-call overrides of :class:`InferenceSettings`.

        Yields:
            ``(frame, detections)``: the :class:`~ovdet.io.sources.Frame` (``image``, ``index``, ``timestamp``,
            ``source``) and its ``supervision.Detections``. With ``zones`` or ``rules``:
            :class:`~ovdet.analytics.stream.Analysed` ``(frame, detections, alerts)``, the detections carrying
            their zones (``detections.data["zones"]``) and the frame's counts (``detections.metadata``).

        Example:
            >>> for frame, detections in detector.stream("shop.mp4", track=True):  # doctest: +SKIP
            ...     print(frame.index, frame.timestamp, len(detections))
        """
        settings = self.settings.replace(**settings)
        if isinstance(source, bool) or not isinstance(source, (str, int, os.PathLike, FrameSource)):
            raise SourceError(
                f"cannot stream from {reprlib.repr(source)}: pass a video file, stream URL, webcam index, image "
                f"folder or glob, or a FrameSource"
            )
        detections = partial(
            detect_stream, lambda images: self.detect_arrays(images, settings), batch=settings.batch,
            track_threshold=settings.conf, stop=stop, profiler=self.profiler,
            vocabulary_version=lambda: self.vocabulary_version,
        )  # fmt: skip
        if zones is None and rules is None:
            if not isinstance(source, FrameSource):
                source = open_source(source, vid_stride=vid_stride, reconnect_timeout=reconnect_timeout)
            return detections(source, track=track)
        analytics = Analytics(zones, rules)
        check_rule_classes(analytics.engine.rules, self.classes, analytics.origin)
        if not isinstance(source, FrameSource):
            source = open_source(source, vid_stride=vid_stride, reconnect_timeout=reconnect_timeout)
        analytics.check_source(source)
        analytics.follow_tracks_of(source)
        return analyse_stream(detections(source, track=track or analytics.needs_tracks), analytics)

    def export(self, format: str = "onnx", *, output: str | os.PathLike[str] | None = None, **options: Any) -> Path:
        """Export for a deployment runtime, with its metadata in ``ovdet.json`` beside the model (a ``.pt``'s).

        A fixed export bakes the current classes in; a dynamic one (``dynamic_vocab``) takes 1 to ``max_classes``
        class embeddings per call and ships the text tower of the detector's encoder (CLIP, MobileCLIP) with its
        tokenizer, so the deployment changes classes with neither torch nor Ultralytics installed.

        Args:
            format: ``"onnx"``, ``"openvino"``, ``"torchscript"`` or ``"engine"``.
            output: Folder to write (default ``runs/export/<model>-<format>-<fixed|dynamic><K>``); replaced if it
                holds an earlier export, refused if it holds anything else.
            **options: :class:`~ovdet.export.exporter.ExportOptions`' ``dynamic_vocab``, ``max_classes``, ``imgsz``
                (default: the detector's), ``batch``, ``half``, ``int8``, ``calibration``, ``calibration_frames``.

        Returns:
            The exported model file; pass it (or its folder) to ``OpenVocabDetector`` or ``ovdet detect --model``.

        Example:
            >>> detector.export("openvino", dynamic_vocab=True, max_classes=16)  # doctest: +SKIP
            PosixPath('runs/export/yolov8s-worldv2-openvino-dynamic16/yolov8s-worldv2.xml')
        """
        options["imgsz"] = options.get("imgsz") or self.settings.imgsz
        if options.get("calibration") is not None:
            options["calibration"] = os.fspath(options["calibration"])
        chosen = ExportOptions(format, **options)
        backend = torch_backend_of(self.backend, self.model_path)
        if chosen.dynamic_vocab:
            return export_backend(backend, self.model_path, chosen, output, text_encoder=self.text_encoder)
        return export_backend(backend, self.model_path, chosen, output, embeddings=self._baked_embeddings())

    def _baked_embeddings(self) -> Embeddings:
        """The current classes, which a fixed-vocabulary export bakes in."""
        if self.embeddings is None:
            raise ModelError(
                'a fixed-vocabulary export bakes the current classes in, and none are set: call set_classes(["person", '
                "...]) first (ovdet export --classes), or export with --dynamic-vocab"
            )
        dropped = self.vocabulary.dropped if self.vocabulary is not None else ()
        if dropped:
            raise ModelError(
                f"a fixed-vocabulary export bakes classes only, and this vocabulary also has the decoy or background "
                f"prompts {', '.join(map(repr, dropped))}: export with --dynamic-vocab, which takes them at run time"
            )
        return self.embeddings

    def detect_arrays(self, images: Sequence[np.ndarray], settings: InferenceSettings) -> list[sv.Detections]:
        """Detect in BGR uint8 arrays with explicit settings; the fast path under :meth:`detect`."""
        table = self._table  # one vocabulary for the whole batch, even if set_classes runs meanwhile
        if table is None:
            raise ModelError('no classes set: call set_classes(["person", ...]) before detect')
        if settings.half != self.settings.half:
            raise ConfigError("half is chosen when the detector is created: OpenVocabDetector(..., half=True)")
        stage = self.profiler.stage if self.profiler is not None else _untimed
        with stage("preprocess"):
            batch, placements = letterbox_batch(
                images, settings.imgsz, self.backend.stride, self.backend.rect, self.backend.input_dtype
            )
        with stage("inference"):
            raw = self.backend.infer(batch)
            raw, prototypes = raw if isinstance(raw, tuple) else (raw, None)
        with stage("postprocess"):
            thresholds = table.class_thresholds(settings.conf)
            results = postprocess(
                raw,
                placements,
                table.rows,
                conf=min(settings.conf, float(thresholds.min())),
                iou=settings.iou,
                max_det=settings.max_det,
                agnostic=settings.agnostic_nms,
                end2end=self.backend.end2end,
                prototypes=prototypes,
            )
            if not all(table.reported) or (thresholds != settings.conf).any():
                results = [self._reportable(detections, thresholds) for detections in results]
        return results

    def _reportable(self, detections: sv.Detections, thresholds: np.ndarray) -> sv.Detections:
        """Drop decoy and background boxes, and boxes under their class's own threshold."""
        is_class = detections.class_id < len(thresholds)
        limit = thresholds[np.where(is_class, detections.class_id, 0)]
        return detections[is_class & (detections.confidence > limit)]
