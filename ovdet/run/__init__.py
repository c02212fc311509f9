"""The one run: a source's frames and detections through the zones and rules into the outputs, for ``ovdet detect``,
``ovdet batch`` (here and in each Ray worker), the server's video jobs and ``ovdet bench``.

:class:`~.loop.Run` owns the frame loop, the analytics, progress, the counts and the outputs' lifetimes;
:data:`~.outputs.OUTPUT_KINDS` is the one table of output kinds and :func:`~.outputs.open_outputs` the one place
outside :mod:`ovdet.io` that opens them; :mod:`.signals` turns SIGINT and SIGTERM into a clean stop.
"""

from .counts import RunCounts, frame_unit
from .loop import Frames, Run
from .outputs import JSONL_SUFFIXES, OUTPUT_KINDS, OutputKind, OutputSpec, open_outputs
from .signals import EXIT_BY_SIGNAL, StopRequest, stop_on_signals
from .writer import SinkWriter

__all__ = [
    "EXIT_BY_SIGNAL",
    "JSONL_SUFFIXES",
    "OUTPUT_KINDS",
    "Frames",
    "OutputKind",
    "OutputSpec",
    "Run",
    "RunCounts",
    "SinkWriter",
    "StopRequest",
    "frame_unit",
    "open_outputs",
    "stop_on_signals",
]
