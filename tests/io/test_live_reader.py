"""A live source keeps at most one frame waiting: stale frames are dropped and counted, files lose none."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from ovdet.core.profiling import Profiler
from ovdet.io.pipeline import FrameReader
from ovdet.io.sources import Frame, FrameSource

_END = None


class ScriptedSource(FrameSource):
    """Yields the frames a test hands it, when it hands them; raises what it is handed."""

    def __init__(self, live: bool) -> None:
        self.name = "scripted"
        self.live = live
        self.script: queue.Queue = queue.Queue()

    def __iter__(self) -> Iterator[Frame]:
        while (item := self.script.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, str):
                self.warn(item)
                continue
            yield Frame(np.zeros((4, 4, 3), np.uint8), item, item / 10, self.name)


def _hand(source: ScriptedSource, reader: FrameReader, *items: object) -> None:
    """Hand items to the source and wait until the reader has decoded every frame among them."""
    frames = reader.decoded + sum(isinstance(item, int) for item in items)
    for item in items:
        source.script.put(item)
    deadline = time.monotonic() + 10
    while reader.decoded < frames and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)  # the frame is handed over just after it is counted


@pytest.fixture
def live() -> Iterator[tuple[ScriptedSource, FrameReader]]:
    source = ScriptedSource(live=True)
    reader = FrameReader(source, depth=6, profiler=Profiler()).start()
    yield source, reader
    source.script.put(_END)
    reader.stop()


def test_a_live_reader_gives_the_newest_frame_and_counts_the_stale_ones(live) -> None:
    source, reader = live
    _hand(source, reader, 0, 1, 2, 3, 4)
    assert [frame.index for frame in reader.next_batch(4)] == [4]
    assert reader.dropped == 4 and reader.profiler.frames_dropped == 4
    _hand(source, reader, 5)
    assert [frame.index for frame in reader.next_batch(4)] == [5]
    assert reader.dropped == 4


def test_no_more_than_one_live_frame_ever_waits(live) -> None:
    source, reader = live
    taken = []
    for burst in range(6):
        _hand(source, reader, *range(burst * 10, burst * 10 + burst + 1))
        taken += [frame.index for frame in reader.next_batch(1)]
    assert taken == [0, 11, 22, 33, 44, 55]  # always the newest of each burst
    assert reader.dropped + len(taken) == reader.decoded == 21
    assert sorted(index for _, index in reader.profiler._decoded_at) == taken  # nothing left behind by drops


def test_the_last_live_frame_comes_before_the_end_and_before_an_error(live) -> None:
    source, reader = live
    _hand(source, reader, 0, "stream x: reconnecting in 0.5 s", 1, RuntimeError("camera unplugged"))
    with pytest.warns(UserWarning, match="reconnecting"):
        assert [frame.index for frame in reader.next_batch(1)] == [1]
    with pytest.raises(RuntimeError, match="camera unplugged"):
        reader.next_batch(1)


def test_a_live_source_that_ends_ends_the_batches(live) -> None:
    source, reader = live
    _hand(source, reader, 0, 1)
    source.script.put(_END)
    assert [frame.index for frame in reader.next_batch(1)] == [1]
    assert reader.next_batch(1) == []


def test_a_stop_request_ends_a_live_wait(live) -> None:
    _, reader = live
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert reader.next_batch(1, stop) == []


def test_dropped_frames_are_reported_once_when_the_stream_stops(caplog: pytest.LogCaptureFixture) -> None:
    source = ScriptedSource(live=True)
    reader = FrameReader(source, depth=2).start()
    _hand(source, reader, 0, 1, 2)
    reader.next_batch(1)
    source.script.put(_END)
    with caplog.at_level(logging.WARNING, logger="ovdet"):
        reader.stop()
    [record] = caplog.records
    assert "scripted: 2 of 3 frame(s) dropped to stay live" in record.getMessage()


def test_a_file_keeps_every_frame_however_slow_the_consumer() -> None:
    source = ScriptedSource(live=False)
    reader = FrameReader(source, depth=8).start()
    _hand(source, reader, 0, 1, 2, 3, 4)
    source.script.put(_END)
    taken = []
    while batch := reader.next_batch(2):
        taken += [frame.index for frame in batch]
    reader.stop()
    assert taken == [0, 1, 2, 3, 4] and reader.dropped == 0
