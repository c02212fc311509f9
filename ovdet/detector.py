"""``OpenVocabDetector``: expensive work once (``set_classes``), cheap work per image (``detect``)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import supervision as sv

from .backends import Backend, load_backend
from .cache import EmbeddingCache
from .config import InferenceSettings
from .embeddings import Embeddings
from .errors import ConfigError, ModelError
from .io.images import load_image
from .io.sources import Frame, FrameSource, open_source
from .pipeline import detect_stream
from .postprocess import postprocess
from .preprocess import letterbox_batch
from .text import TextEncoder
from .vocabulary import validate_class_names
from .weights import resolve_weights

__all__ = ["OpenVocabDetector"]


class OpenVocabDetector:
    """Detect objects named in words, with YOLO-World.

    Args:
        model: A registry name (``"yolov8s-worldv2"``, m, l, x) or a local ``.pt`` file.
        device: ``"auto"`` picks CUDA when present; else ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        text_encoder: Encoder for prompts; default CLIP ViT-B/32, loaded only when a prompt is not cached.
        cache_dir: Folder of the embedding cache; default ``$OVDET_CACHE_DIR/embeddings``.
        **settings: Defaults for :class:`InferenceSettings` (``conf``, ``iou``, ``imgsz``, ``max_det``, ``half``,
            ``agnostic_nms``, ``batch``).

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
        text_encoder: TextEncoder | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> None:
        self.settings = InferenceSettings().replace(**settings)
        self.model_path = resolve_weights(model)
        self.backend: Backend = load_backend(self.model_path, device=device, half=self.settings.half)
        self._text_encoder = text_encoder
        self._cache = EmbeddingCache(cache_dir)
        self._embeddings: Embeddings | None = None
        self._class_names: tuple[str, ...] = self.backend.fixed_classes or ()
        self.vocabulary_version = 0  # bumped by every vocabulary change, so running streams can follow it

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
    def classes(self) -> tuple[str, ...]:
        """The current class names, in class-id order."""
        return self._class_names

    @property
    def embeddings(self) -> Embeddings | None:
        """The current vocabulary's embeddings; ``None`` before :meth:`set_classes` or for a fixed-class export."""
        return self._embeddings

    def set_classes(self, classes: Sequence[str] | Embeddings) -> None:
        """Set the vocabulary: class names (each encoded as its own prompt) or precomputed embeddings.

        Prompts found in the embedding cache are not encoded again; when all are cached, no text model loads.

        Example:
            >>> detector.set_classes(["infusion pump", "syringe driver"])  # doctest: +SKIP
        """
        if isinstance(classes, Embeddings):
            self.set_embeddings(classes)
            return
        names = validate_class_names(classes)
        if self.backend.fixed_classes is not None:
            self._use_fixed_classes(names)
            return
        self.set_embeddings(Embeddings(tuple(names), self.encode_prompts(names), self.text_encoder.space))

    def encode_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        """Embed prompts through the cache: ``(N, D)`` float32 rows in the order given."""
        encoder = self.text_encoder
        key = encoder.cache_key
        found = self._cache.get_many(key, prompts)
        missing = [prompt for prompt in dict.fromkeys(prompts) if prompt not in found]
        if missing:
            fresh = dict(zip(missing, encoder.encode(missing)))
            self._cache.put_many(key, fresh)
            found.update(fresh)
        return np.stack([found[prompt] for prompt in prompts])

    def set_embeddings(self, embeddings: Embeddings) -> None:
        """Use precomputed embeddings (e.g. ``Embeddings.load("vocab.npz")``); no text model is needed."""
        if self.backend.fixed_classes is not None:
            self._use_fixed_classes(embeddings.names)
            return
        embeddings.require_space(self.backend.space, f"{self.model_path.name}")
        validate_class_names(embeddings.names)
        limit = self.backend.max_classes
        if limit is not None and len(embeddings) > limit:
            raise ModelError(
                f"{self.model_path.name} takes at most {limit} classes, got {len(embeddings)}: "
                f"use fewer classes or re-export with a larger --max-classes"
            )
        self.backend.set_vocabulary(embeddings.vectors)
        self._embeddings = embeddings
        self._class_names = embeddings.names
        self.vocabulary_version += 1

    def _use_fixed_classes(self, names: Sequence[str]) -> None:
        fixed = self.backend.fixed_classes
        if tuple(names) != fixed:
            raise ModelError(
                f"{self.model_path.name} was exported with the fixed classes {', '.join(fixed)} and cannot detect "
                f"{', '.join(names)}: pass exactly those classes, or re-export with --dynamic-vocab"
            )
        self._class_names = tuple(fixed)
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
        **settings: Any,
    ) -> Iterator[tuple[Frame, sv.Detections]]:
        """Detect in every frame of a video file, stream, webcam or image folder, in order, exactly once.

        Decoding runs ahead in a thread; frames are inferred ``batch`` at a time. Calling :meth:`set_classes`
        between two frames changes the vocabulary from the next frame on (and restarts the tracker).

        Args:
            source: A video file, a stream URL (rtsp/rtmp/http), a webcam index, an image folder or glob, or a
                :class:`~ovdet.io.sources.FrameSource`.
            vid_stride: Process every n-th frame.
            track: Give detections stable ``tracker_id`` values across frames (ByteTrack).
            reconnect_timeout: Seconds a dropped live stream may stay away before the stream ends.
            **settings: Per-call overrides of :class:`InferenceSettings`.

        Yields:
            ``(frame, detections)``: the :class:`~ovdet.io.sources.Frame` (``image``, ``index``, ``timestamp``,
            ``source``) and its ``supervision.Detections``.

        Example:
            >>> for frame, detections in detector.stream("shop.mp4", track=True):  # doctest: +SKIP
            ...     print(frame.index, frame.timestamp, len(detections))
        """
        settings = self.settings.replace(**settings)
        if not isinstance(source, FrameSource):
            source = open_source(source, vid_stride=vid_stride, reconnect_timeout=reconnect_timeout)
        return detect_stream(self, source, settings, track=track)

    def detect_arrays(self, images: Sequence[np.ndarray], settings: InferenceSettings) -> list[sv.Detections]:
        """Detect in BGR uint8 arrays with explicit settings; the fast path under :meth:`detect`."""
        if not self._class_names:
            raise ModelError('no classes set: call set_classes(["person", ...]) before detect')
        if settings.half != self.settings.half:
            raise ConfigError("half is chosen when the detector is created: OpenVocabDetector(..., half=True)")
        batch, placements = letterbox_batch(
            images, settings.imgsz, self.backend.stride, self.backend.rect, self.backend.input_dtype
        )
        raw = self.backend.infer(batch)
        return postprocess(
            raw,
            placements,
            self._class_names,
            conf=settings.conf,
            iou=settings.iou,
            max_det=settings.max_det,
            agnostic=settings.agnostic_nms,
        )
