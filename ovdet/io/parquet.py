"""The Parquet sink: one file of detections per source, a row per box, for DuckDB, pandas, Spark or pyarrow.

The file appears whole when the sink is closed, or not at all: a folder of them is a dataset that stays readable
however a run ends (``pyarrow.dataset.dataset("out/detections")``, DuckDB's ``read_parquet('out/**/*.parquet')``).
Boxes, confidences and timestamps are rounded as in the JSONL and CSV outputs, so all three agree; ``polygon``
holds a mask's boundary rings as in the JSONL (see :mod:`ovdet.io.masks`), null for a detection without a mask.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import supervision as sv

from ..core.errors import missing_dependency
from ..core.files import check_writable, write_atomically
from .masks import mask_to_rings
from .sinks import detection_rows
from .sources import Frame

__all__ = ["PARQUET_COLUMNS", "ParquetSink", "parquet_schema"]

PARQUET_COLUMNS = (
    "source", "frame", "timestamp", "x1", "y1", "x2", "y2", "confidence", "class_id", "class_name", "track_id",
    "polygon",
)  # fmt: skip
_ROW_GROUP = 65536  # rows buffered before they are compressed into the file's next row group


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise missing_dependency("pyarrow", "ray", "writing Parquet") from exc
    return pa, pq


def parquet_schema():
    """The dataset's columns and types; every file has it, an empty one included."""
    pa, _ = _pyarrow()
    floats = [pa.field(name, pa.float64(), nullable=False) for name in ("x1", "y1", "x2", "y2", "confidence")]
    return pa.schema(
        [
            pa.field("source", pa.string(), nullable=False),
            pa.field("frame", pa.int64(), nullable=False),
            pa.field("timestamp", pa.float64()),
            *floats,
            pa.field("class_id", pa.int32(), nullable=False),
            pa.field("class_name", pa.string(), nullable=False),
            pa.field("track_id", pa.int64()),
            pa.field("polygon", pa.list_(pa.list_(pa.int32()))),
        ]
    )


class ParquetSink:
    """Collects detections and writes them as one Parquet file when closed (unless :meth:`abandon` was called).

    Example:
        >>> sink = ParquetSink("out/detections/clip.mp4.parquet")  # doctest: +SKIP
        >>> sink.write(frame, detections); sink.close()  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        pa, pq = _pyarrow()
        self.path = check_writable(Path(path))
        self._schema = parquet_schema()
        self._buffer = pa.BufferOutputStream()
        self._writer = pq.ParquetWriter(self._buffer, self._schema, compression="zstd")
        self._columns: dict[str, list[Any]] = {name: [] for name in PARQUET_COLUMNS}
        self._abandoned = False
        self._closed = False

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        timestamp = None if frame.timestamp is None else round(frame.timestamp, 6)
        polygons = [None] * len(detections) if detections.mask is None else map(mask_to_rings, detections.mask)
        for row, polygon in zip(detection_rows(detections), polygons):
            values = (frame.source, frame.index, timestamp, *row["xyxy"], row["confidence"], row["class_id"],
                      row["class_name"], row["track_id"], polygon)  # fmt: skip
            for name, value in zip(PARQUET_COLUMNS, values):
                self._columns[name].append(value)
        if len(self._columns["frame"]) >= _ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        pa, _ = _pyarrow()
        if self._columns["frame"]:
            self._writer.write_table(pa.Table.from_pydict(self._columns, schema=self._schema))
        self._columns = {name: [] for name in PARQUET_COLUMNS}

    def abandon(self) -> None:
        """Write nothing at close: the source did not finish, and a dataset holds only finished sources."""
        self._abandoned = True

    def close(self) -> None:
        """Write the file (safe to call twice); after :meth:`abandon`, write nothing."""
        if self._closed:
            return
        self._closed = True
        if self._abandoned:
            return
        self._flush()
        self._writer.close()
        write_atomically([(self.path, self._buffer.getvalue().to_pybytes())])
