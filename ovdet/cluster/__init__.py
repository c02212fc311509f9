"""Batch runs over many sources, in this process or on a Ray cluster: ``ovdet batch``'s engine.

It sits at the facade's level (it drives :class:`~ovdet.detector.OpenVocabDetector`); nothing below imports it.
:func:`~ovdet.cluster.job.run_batch` plans the sources (:mod:`.plan`), keeps the manifest (:mod:`.manifest`) and
runs the sources on a pool (:mod:`.pools`) of workers (:mod:`.worker`). Ray is imported only for ``--ray``.
"""

from .job import BatchReport, BatchRequest, run_batch

__all__ = ["BatchReport", "BatchRequest", "run_batch"]
