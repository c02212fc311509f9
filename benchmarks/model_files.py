"""The model file each benchmark configuration runs: the ``.pt`` itself, or an export of it made once."""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.compute import ModelFlops
from benchmarks.configs import TEXT_DIM, prompts, torch_options
from ovdet.bench import OVDET, ULTRALYTICS, BenchmarkError, RunConfig

if TYPE_CHECKING:
    from ovdet.detector import OpenVocabDetector

log = logging.getLogger(__name__)


class ModelFiles:
    """The model file each configuration runs: the ``.pt`` itself, or an export of it made once into ``folder``.

    Args:
        weights: The YOLO-World ``.pt`` file (a registry name is resolved).
        folder: Where exports are written.
        imgsz: The input size Ultralytics' (fixed-shape) export is made for.

    Example:
        >>> files = ModelFiles("yolov8s-worldv2", "/tmp/bench")  # doctest: +SKIP
        >>> config = RunConfig("ovdet openvino fp32", export="openvino")
        >>> files.path(config, ["bottle"], max_classes=80)  # doctest: +SKIP
        '/tmp/bench/openvino-dynamic80/yolov8s-worldv2.xml'
    """

    def __init__(
        self,
        weights: str | os.PathLike[str],
        folder: str | os.PathLike[str],
        imgsz: int = 640,
        calibration: str | os.PathLike[str] | None = None,
        calibration_frames: int = 32,
    ) -> None:
        from ovdet.core.weights import resolve_weights

        self.weights = resolve_weights(weights)
        if self.weights.suffix != ".pt":
            raise BenchmarkError(f"{self.weights} is not a YOLO-World .pt file: exports are made from the .pt")
        self.folder = Path(folder)
        self.imgsz = imgsz
        self.calibration, self.calibration_frames = calibration, calibration_frames
        self.flops = ModelFlops(self.weights)
        self._detector: OpenVocabDetector | None = None
        self._made: dict[tuple[Any, ...], str] = {}

    def vectors(self, classes: Sequence[str]) -> np.ndarray:
        """``(K, 512)`` embeddings of ``classes``, through ovdet's cache (which the workers then find warm)."""
        detector = self._source()
        detector.set_classes(list(classes))
        return detector.embeddings.vectors.copy()

    def path(self, config: RunConfig, classes: Sequence[str], max_classes: int) -> str:
        """The model file for ``config`` (ovdet exports take up to ``max_classes`` classes)."""
        if config.export is None:
            return str(self.weights)
        baked = config.engine == ULTRALYTICS
        key = (config.engine, config.export, config.int8, tuple(classes) if baked else max_classes)
        if key not in self._made:
            started = time.perf_counter()
            if baked:
                self._made[key] = self._ultralytics_export(config.export, classes, config.int8)
            else:
                self._made[key] = self._ovdet_export(config.export, max_classes, config.int8)
            log.info("exported %s in %.1f s", self._made[key], time.perf_counter() - started)
        return self._made[key]

    def convert_for(self, config: RunConfig, classes: int) -> None:
        """Let an ovdet configuration on the ``.pt`` make (and cache) any graph it converts to for ``classes``.

        A timed cold ``set_classes`` then measures text encoding, not a one-time conversion.
        """
        from ovdet.detector import OpenVocabDetector
        from ovdet.prompts.embeddings import Embeddings

        if config.engine != OVDET or config.export is not None:
            return
        detector = OpenVocabDetector(self.weights, **config.options)
        vectors = np.random.default_rng(0).standard_normal((classes, TEXT_DIM)).astype(np.float32)
        detector.set_embeddings(Embeddings(prompts(classes), vectors, detector.backend.space))

    def _source(self) -> OpenVocabDetector:
        from ovdet.detector import OpenVocabDetector

        if self._detector is None:
            self._detector = OpenVocabDetector(self.weights, device="cpu", imgsz=self.imgsz, **torch_options())
        return self._detector

    def _ovdet_export(self, export: str, max_classes: int, int8: bool) -> str:
        output = self.folder / f"{export}-dynamic{max_classes}{'-int8' if int8 else ''}"
        quantized = {}
        if int8:
            quantized = {
                "int8": True,
                "calibration": self._calibration_images(),
                "calibration_frames": self.calibration_frames,
            }
        detector = self._source()
        return str(detector.export(export, dynamic_vocab=True, max_classes=max_classes, output=output, **quantized))

    def _ultralytics_export(self, export: str, classes: Sequence[str], int8: bool) -> str:
        import shutil

        from ultralytics import YOLOWorld

        from ovdet.runtimes.torch import inject_classes

        folder = self.folder / f"ultralytics-{export}-{len(self._made)}"
        folder.mkdir(parents=True, exist_ok=True)
        weights = shutil.copy2(self.weights, folder / self.weights.name)  # Ultralytics exports beside the .pt
        model = YOLOWorld(str(weights))
        inject_classes(model.model, self.vectors(classes), classes)
        quantized = {"int8": True, "data": str(self._ultralytics_dataset(classes)), "fraction": 1.0} if int8 else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return str(model.export(format=export, imgsz=self.imgsz, **quantized))

    def _calibration_images(self) -> Path:
        """``calibration_frames`` frames spread over the calibration clip, as JPEG files: the one set both engines
        calibrate on (Ultralytics takes only an image dataset)."""
        from ovdet.bench import read_frames

        folder = self.folder / "calibration" / "images"
        if not folder.is_dir():
            import cv2

            if self.calibration is None:
                raise BenchmarkError("an INT8 configuration needs a calibration clip: pass --calibration")
            total = sum(1 for _ in read_frames(self.calibration, 10_000))
            step = max(total // self.calibration_frames, 1)
            frames = read_frames(self.calibration, self.calibration_frames, step)
            folder.mkdir(parents=True)
            for index, frame in enumerate(frames):
                cv2.imwrite(str(folder / f"{index:04d}.jpg"), frame)
        return folder

    def _ultralytics_dataset(self, classes: Sequence[str]) -> Path:
        """A dataset YAML whose validation images are the calibration frames (they need no labels to calibrate)."""
        import yaml

        images = self._calibration_images()
        path = images.parent / "calibration.yaml"
        names = dict(enumerate(classes))
        dataset = {"path": str(images.parent), "train": "images", "val": "images", "names": names}
        path.write_text(yaml.safe_dump(dataset))
        return path
