"""The one run, without a model: every output closed valid after an error or a stop, a source that yields nothing
refused after the outputs are closed, zones that do not fit refused before any output is opened, tracking asked
for by the outputs that follow tracks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

from ovdet.analytics.stream import Analytics
from ovdet.analytics.zones_yaml import read_zones_yaml
from ovdet.core.errors import SourceError, ZonesError
from ovdet.io.sources import Frame, FrameSource
from ovdet.prompts.vocabulary import Vocabulary
from ovdet.run import OutputSpec, Run
from ovdet.run.outputs import analytics_outputs
from tests.hostile.harness import assert_valid_output

BOTTLE = Vocabulary.from_names(["bottle"])


class Clip(FrameSource):
    """``count`` black 8×6 frames at 10 frames/s, read every ``vid_stride``-th."""

    def __init__(self, count: int, vid_stride: int = 1) -> None:
        self.name, self.fps, self.vid_stride, self.total, self.size = (
            "clip.mp4",
            Fraction(10),
            vid_stride,
            count,
            (8, 6),
        )
        self.closed = False

    def __iter__(self) -> Iterator[Frame]:
        for index in range(self.total):
            yield Frame(np.zeros((6, 8, 3), np.uint8), index, index / 10, self.name)

    def close(self) -> None:
        self.closed = True


def _bottle() -> sv.Detections:
    return sv.Detections(
        xyxy=np.array([[1.0, 1.0, 4.0, 4.0]]), confidence=np.array([0.9]), class_id=np.array([0]),
        data={"class_name": np.array(["bottle"])},
    )  # fmt: skip


def _frames(source: Clip, *, fail_at: int | None = None, stop_at: int | None = None, seen: list | None = None):
    """The stream of ``source`` with a bottle in every frame; it raises at ``fail_at``, or is stopped (as by a
    signal) after ``stop_at``, and then ends as a detector's stream does."""

    def frames(stop, track):
        if seen is not None:
            seen.append(track)
        for frame in source:
            if frame.index == fail_at:
                raise RuntimeError("the model failed")
            if stop.is_set():
                return
            yield frame, _bottle()
            if frame.index == stop_at:
                stop.set()

    return frames


def _outputs(folder: Path, analytics: Analytics | None = None) -> list[OutputSpec]:
    files = {"jsonl": "a.jsonl", "csv": "a.csv", "coco": "a.json", "events": "a.events.jsonl", "parquet": "a.parquet"}
    specs = [OutputSpec(kind, folder / name) for kind, name in files.items()]
    return specs + analytics_outputs(analytics, summary=folder / "summary.json")


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_an_error_mid_run_leaves_every_output_valid_and_abandons_the_parquet_file(tmp_path: Path) -> None:
    run = Run(Clip(5), _outputs(tmp_path, Analytics()))
    with pytest.raises(RuntimeError, match="the model failed"):
        run.execute(_frames(run.source, fail_at=3), BOTTLE)
    assert run.counts.frames == 3 and _lines(tmp_path / "a.jsonl") == 3
    for name in ("a.jsonl", "a.csv", "a.json", "a.events.jsonl", "summary.json"):
        assert_valid_output(tmp_path / name)
    assert json.loads((tmp_path / "summary.json").read_text())["frames"] == 3
    assert not (tmp_path / "a.parquet").exists()


def test_a_stop_ends_the_run_after_the_frame_in_flight_with_complete_outputs(tmp_path: Path) -> None:
    run = Run(Clip(5), _outputs(tmp_path))
    counts = run.execute(_frames(run.source, stop_at=1), BOTTLE)
    assert run.stopped and counts.frames == 2 and counts.detections == 2
    assert _lines(tmp_path / "a.jsonl") == 2 and len(json.loads((tmp_path / "a.json").read_text())) == 2
    assert not (tmp_path / "a.parquet").exists(), "a stopped source's Parquet file is not written"


def test_a_finished_run_writes_every_output(tmp_path: Path) -> None:
    run = Run(Clip(4), _outputs(tmp_path))
    assert run.execute(_frames(run.source), BOTTLE).frames == 4 and not run.stopped
    assert _lines(tmp_path / "a.jsonl") == 4 and (tmp_path / "a.parquet").is_file()


def test_a_source_without_frames_is_refused_once_the_outputs_are_closed(tmp_path: Path) -> None:
    run = Run(Clip(0), _outputs(tmp_path))
    with pytest.raises(SourceError, match=r"no frame or image could be read from clip\.mp4"):
        run.execute(_frames(run.source), BOTTLE)
    assert_valid_output(tmp_path / "a.jsonl")
    assert_valid_output(tmp_path / "a.json")


def test_zones_that_do_not_fit_are_refused_before_any_output_opens(tmp_path: Path) -> None:
    zones = tmp_path / "zones.yaml"
    zones.write_text("zones:\n  door: [[0, 0], [500, 0], [500, 400], [0, 400]]\n")
    source = Clip(3)
    with pytest.raises(ZonesError, match="door"):
        Run(source, _outputs(tmp_path), analytics=Analytics(read_zones_yaml(zones)))
    assert source.closed and sorted(path.name for path in tmp_path.iterdir()) == ["zones.yaml"]


def test_outputs_that_follow_tracks_turn_tracking_on(tmp_path: Path) -> None:
    seen: list[bool] = []
    for outputs in ([OutputSpec("jsonl", tmp_path / "a.jsonl")], [OutputSpec("events", tmp_path / "b.jsonl")]):
        run = Run(Clip(1), outputs)
        run.execute(_frames(run.source, seen=seen), BOTTLE)
    assert seen == [False, True]


def test_the_frame_rate_is_the_sources_over_its_stride() -> None:
    assert Clip(1, vid_stride=3).frame_rate == Fraction(10, 3)
