"""The evaluation loop: run a detector over labelled images once per vocabulary variant, score each run with
pycocotools, rank the phrasings and templates, and pick each class's alert threshold by F1.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.config import InferenceSettings
from ..core.errors import SourceError
from ..io.images import load_image
from ..prompts.vocabulary import Vocabulary
from .labelled import LabelledDataset, LabelledImage, match_categories
from .metrics import OperatingPoint, RunMetrics, best_f1_point, coco_metrics, coco_results
from .prompts import (
    ALL_PHRASINGS,
    ALL_TEMPLATES,
    TEMPLATES,
    RankedVariant,
    Variant,
    best_vocabulary,
    plan_variants,
    rank,
    without_thresholds,
)
from .segments import require_outlines
from .verdicts import Verdict, class_verdicts

if TYPE_CHECKING:
    from ..detector import OpenVocabDetector
    from .precisions import PrecisionComparison

__all__ = ["AP_CONF", "Evaluation", "detect_dataset", "evaluate"]

log = logging.getLogger(__name__)

AP_CONF = 0.001  # as evaluators run detectors for AP: nearly every box counts, the precision-recall curve is whole

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Evaluation:
    """Everything an evaluation found, for reports and for writing the chosen vocabulary back.

    Attributes:
        dataset: The labelled data.
        vocabulary: The vocabulary as given.
        chosen: The best phrasings and templates, with each class's F1-best threshold: the file to write back.
        as_written: Metrics of the vocabulary as given.
        best: Metrics of ``chosen`` (the same object as ``as_written`` when the prompts did not change).
        written_points: Per class, precision and recall at its given threshold (its own ``conf``, else the
            default threshold).
        chosen_points: Per class, precision and recall at the threshold ``chosen`` gives it (or the default).
        phrasings: Per class with several phrasings, the ensemble and each phrasing alone, best first.
        templates: With several templates, all of them and each alone, by mAP, best first; else empty.
        settings: The settings the detector ran with.
        model: The model file's name.
        runs: How many passes over the images were made.
        precisions: The chosen vocabulary in each precision compared, and the one recommended (see
            :func:`~ovdet.evaluation.precisions.compare_precisions`); ``None`` when none was compared.
    """

    dataset: LabelledDataset
    vocabulary: Vocabulary
    chosen: Vocabulary
    as_written: RunMetrics
    best: RunMetrics
    written_points: dict[str, OperatingPoint]
    chosen_points: dict[str, OperatingPoint]
    phrasings: dict[str, tuple[RankedVariant, ...]]
    templates: tuple[RankedVariant, ...]
    settings: InferenceSettings
    model: str
    runs: int
    precisions: PrecisionComparison | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        """The evaluated classes (those labelled in the data), in vocabulary order."""
        return tuple(name for name in self.vocabulary.names if name in self.as_written.classes)

    def verdicts(self, fps: float | None = None) -> list[Verdict]:
        """Every vocabulary class's verdict at its chosen threshold (see :mod:`~ovdet.evaluation.verdicts`).

        Args:
            fps: Frame rate of the video the images come from, for false alarms per hour.
        """
        objects = {name: len(self.best.classes[name].objects) for name in self.class_names}
        points = {name: self.chosen_points[name] for name in self.class_names}
        return class_verdicts(self.vocabulary.names, points, objects, len(self.dataset.images), fps)


def evaluate(
    detector: OpenVocabDetector,
    dataset: LabelledDataset,
    vocabulary: Vocabulary,
    *,
    default_conf: float | None = None,
    progress: Progress | None = None,
    **settings: Any,
) -> Evaluation:
    """Evaluate a vocabulary on labelled images, compare its phrasings and templates, and choose thresholds.

    The detector runs at confidence :data:`AP_CONF` once for the vocabulary as written, once per variant (see
    :func:`~ovdet.evaluation.prompts.plan_variants`), and once more for the best combination if it differs.
    Afterwards the detector uses the chosen vocabulary.

    Args:
        detector: The detector to evaluate (its model and device).
        dataset: The labelled images.
        vocabulary: Classes named like the data's categories (matched case-insensitively).
        default_conf: Threshold of classes without their own (default: the detector's ``conf``).
        progress: Called with ``(images done, images planned)`` after every batch.
        **settings: Overrides of the detector's :class:`~ovdet.core.config.InferenceSettings` (``conf`` excepted).

    Raises:
        VocabularyError: Labelled categories have no class of that name in the vocabulary.
        SourceError: An image cannot be read or its size differs from the annotations', or the detector
            segments and a labelled object has no outline.

    Example:
        >>> dataset = load_dataset("ward/annotations.json")  # doctest: +SKIP
        >>> evaluation = evaluate(detector, dataset, load_vocabulary("ward.yaml"), imgsz=640)  # doctest: +SKIP
        >>> evaluation.as_written.map50, evaluation.chosen.classes[0].conf  # doctest: +SKIP
        (0.58, 0.31)
    """
    if detector.task == "segment":
        require_outlines(dataset)
    run_settings = detector.settings.replace(**settings).replace(conf=AP_CONF)
    default_conf = detector.settings.conf if default_conf is None else default_conf
    categories = _scored_categories(dataset, vocabulary)
    base = without_thresholds(vocabulary)
    variants = plan_variants(base, categories.values())
    runner = _Runner(detector, dataset, categories, run_settings, progress, planned_runs=1 + len(variants))
    as_written = runner.run(base)
    scores = [(variant, runner.run(variant.vocabulary)) for variant in variants]
    phrasings, templates = _rankings(base, as_written, scores)
    chosen_prompts = best_vocabulary(base, phrasings, templates)
    best = as_written if chosen_prompts == base else runner.run(chosen_prompts)
    chosen = _with_f1_thresholds(chosen_prompts, vocabulary, best)
    detector.set_classes(chosen)
    return Evaluation(
        dataset=dataset,
        vocabulary=vocabulary,
        chosen=chosen,
        as_written=as_written,
        best=best,
        written_points=_points(as_written, vocabulary, default_conf),
        chosen_points=_points(best, chosen, default_conf),
        phrasings=phrasings,
        templates=templates,
        settings=run_settings,
        model=detector.model_path.name,
        runs=runner.runs,
    )


def detect_dataset(
    detector: OpenVocabDetector,
    dataset: LabelledDataset,
    categories: Mapping[int, str],
    settings: InferenceSettings,
    on_batch: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Detect the detector's current classes in every image, as COCO results with the data's category ids.

    Boxes of classes that are not paired with a category (decoys are dropped already) are left out. Detections
    with masks add their ``segmentation`` (run-length encoding).

    Example:
        >>> detector.set_classes(["syringe driver"])  # doctest: +SKIP
        >>> detect_dataset(detector, dataset, {1: "syringe driver"}, InferenceSettings(conf=0.001))[0]  # doctest: +SKIP
        {'image_id': 1, 'category_id': 1, 'bbox': [12.5, 40.0, 88.1, 120.3], 'score': 0.71}
    """
    category_of = {name: category_id for category_id, name in categories.items()}
    results: list[dict[str, Any]] = []
    for start in range(0, len(dataset.images), settings.batch):
        chunk = dataset.images[start : start + settings.batch]
        arrays = [_read(image, dataset.name) for image in chunk]
        for image, detections in zip(chunk, detector.detect_arrays(arrays, settings)):
            results += coco_results(image.id, detections, category_of)
        if on_batch is not None:
            on_batch(len(chunk))
    return results


def _scored_categories(dataset: LabelledDataset, vocabulary: Vocabulary) -> dict[int, str]:
    categories = match_categories(dataset, vocabulary.names)
    unscored = [name for name in vocabulary.names if name not in categories.values()]
    if unscored:
        log.warning("%s has no labelled %s: detected but not scored", dataset.name, ", ".join(unscored))
    return categories


class _Runner:
    """Runs vocabularies over the dataset and scores them, counting passes for progress."""

    def __init__(
        self,
        detector: OpenVocabDetector,
        dataset: LabelledDataset,
        categories: dict[int, str],
        settings: InferenceSettings,
        progress: Progress | None,
        planned_runs: int,
    ) -> None:
        self.detector, self.dataset, self.categories, self.settings = detector, dataset, categories, settings
        self.progress = progress
        self.planned_runs = planned_runs
        self.runs = 0
        self._done = 0

    def run(self, vocabulary: Vocabulary) -> RunMetrics:
        self.runs += 1
        self.planned_runs = max(self.planned_runs, self.runs)
        self.detector.set_classes(vocabulary)
        results = detect_dataset(self.detector, self.dataset, self.categories, self.settings, self._advance)
        return coco_metrics(self.dataset, results, self.categories, masks=self.detector.task == "segment")

    def _advance(self, images: int) -> None:
        self._done += images
        if self.progress is not None:
            self.progress(self._done, self.planned_runs * len(self.dataset.images))


def _read(image: LabelledImage, where: str) -> np.ndarray:
    array = load_image(image.path)
    height, width = array.shape[:2]
    if (width, height) != (image.width, image.height):
        raise SourceError(
            f"image {image.path} is {width}x{height} but {where} gives {image.width}x{image.height}: the labels "
            f"belong to another version of the image; re-export them with this one"
        )
    return array


def _rankings(
    base: Vocabulary, as_written: RunMetrics, scores: Sequence[tuple[Variant, RunMetrics]]
) -> tuple[dict[str, tuple[RankedVariant, ...]], tuple[RankedVariant, ...]]:
    """Per class, its phrasing variants ranked against the ensemble; the template variants ranked by mAP."""
    by_subject: dict[str, list[RankedVariant]] = {}
    for variant, metrics in scores:
        by_subject.setdefault(variant.subject, []).append(_ranked(variant, metrics))
    phrasings = {
        c.name: rank(_ranked_class(ALL_PHRASINGS, c.prompts, as_written, c.name), by_subject[c.name])
        for c in base.classes
        if c.name in by_subject
    }
    templates: tuple[RankedVariant, ...] = ()
    if TEMPLATES in by_subject:
        written = RankedVariant(ALL_TEMPLATES, base.templates, as_written.map50_95, as_written.map50)
        templates = rank(written, by_subject[TEMPLATES])
    return phrasings, templates


def _ranked(variant: Variant, metrics: RunMetrics) -> RankedVariant:
    if variant.subject == TEMPLATES:
        return RankedVariant(variant.label, variant.prompts, metrics.map50_95, metrics.map50)
    return _ranked_class(variant.label, variant.prompts, metrics, variant.subject)


def _ranked_class(label: str, prompts: tuple[str, ...], metrics: RunMetrics, name: str) -> RankedVariant:
    outcome = metrics.classes[name]
    return RankedVariant(label, prompts, outcome.ap50_95, outcome.ap50)


def _with_f1_thresholds(chosen: Vocabulary, written: Vocabulary, metrics: RunMetrics) -> Vocabulary:
    """Each evaluated class gets its F1-best threshold; a class nothing correct was found for keeps its own."""
    written_conf = {c.name: c.conf for c in written.classes}
    classes = []
    for vocabulary_class in chosen.classes:
        conf = written_conf[vocabulary_class.name]
        outcome = metrics.classes.get(vocabulary_class.name)
        if outcome is not None and (point := best_f1_point(*outcome.score_arrays(), len(outcome.objects), AP_CONF)):
            conf = point.threshold
        classes.append(dataclasses.replace(vocabulary_class, conf=conf))
    return dataclasses.replace(chosen, classes=tuple(classes))


def _points(metrics: RunMetrics, vocabulary: Vocabulary, default_conf: float) -> dict[str, OperatingPoint]:
    thresholds = {c.name: default_conf if c.conf is None else c.conf for c in vocabulary.classes}
    return {name: outcome.at(thresholds[name]) for name, outcome in metrics.classes.items()}
