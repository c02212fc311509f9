"""Frame sources: every readable frame once, in order, with container timestamps; damaged files warn."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from ovdet import ConfigError, SourceError
from ovdet.io.sources import ImageSequence, LiveStream, VideoFile, Webcam, open_source
from tests.conftest import BOTTLES, PEOPLE_GIF
from tests.media import corrupt_middle, small_frames, truncate, write_clip


def test_real_clip_frames_and_timestamps() -> None:
    source = open_source(BOTTLES)
    assert isinstance(source, VideoFile) and source.total == 1189
    frames = list(source)
    assert [f.index for f in frames] == list(range(1189))
    stamps = np.array([f.timestamp for f in frames])
    assert stamps[0] == 0.0 and (np.diff(stamps) > 0).all()
    np.testing.assert_allclose(np.diff(stamps).mean(), 1 / float(source.fps), rtol=0.01)
    assert frames[0].image.shape == (360, 640, 3) and frames[0].source == str(BOTTLES)


def test_vid_stride_keeps_source_indices() -> None:
    frames = list(open_source(PEOPLE_GIF, vid_stride=5))
    assert [f.index for f in frames] == [0, 5, 10, 15, 20]
    assert open_source(PEOPLE_GIF, vid_stride=5).total == 5
    with pytest.raises(ConfigError, match="vid_stride"):
        open_source(PEOPLE_GIF, vid_stride=0)


def test_gif_timestamps_come_from_the_container() -> None:
    frames = list(open_source(PEOPLE_GIF))
    assert len(frames) == 23
    assert [f.timestamp for f in frames[:4]] == [0.0, 0.08, 0.17, 0.25]  # the GIF's own uneven delays


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv", ".mov", ".webm"])
def test_containers(tmp_path: Path, suffix: str) -> None:
    codec = {".webm": "libvpx-vp9", ".avi": "mpeg4"}.get(suffix, "libx264")
    path = write_clip(tmp_path / f"clip{suffix}", small_frames(12), codec=codec)
    frames = list(open_source(path))
    assert len(frames) == 12
    assert frames[-1].timestamp == pytest.approx(11 / 25)


def test_truncated_video_yields_readable_frames_then_warns(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "cut.mp4", small_frames(60), keyframe_interval=5, movflags="faststart")
    truncate(path, 0.5)
    with pytest.warns(UserWarning, match=r"cut\.mp4 is truncated or corrupt: read (\d+) frames, last good frame"):
        frames = list(open_source(path))
    assert 10 < len(frames) < 60
    assert [f.index for f in frames] == list(range(len(frames)))


def test_corrupt_middle_skips_bad_data_and_goes_on(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "bad.ts", small_frames(60), keyframe_interval=5)
    corrupt_middle(path, start=0.45, length=3000)
    with pytest.warns(UserWarning, match="bad.ts"):
        frames = list(open_source(path))
    assert frames[-1].index >= 50, "frames after the damage are still read"
    assert [f.index for f in frames] == sorted({f.index for f in frames})


def test_unreadable_videos_are_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="could not be opened"):
        open_source(empty)
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError):
        list(open_source(noise))


def test_image_folder_is_a_sequence(tmp_path: Path) -> None:
    for i, frame in enumerate(small_frames(3)):
        cv2.imwrite(str(tmp_path / f"{i}.png"), frame)
    (tmp_path / "broken.png").write_bytes(b"nope")
    source = open_source(tmp_path)
    assert isinstance(source, ImageSequence) and source.total == 4
    with pytest.warns(UserWarning, match=r"skipped image .*broken\.png could not be decoded"):
        frames = list(source)
    assert [Path(f.source).name for f in frames] == ["0.png", "1.png", "2.png"]
    assert all(f.index == 0 and f.timestamp is None for f in frames)


def test_urls_and_webcam_indices_pick_their_source(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_source("rtsp://127.0.0.1:8554/cam"), LiveStream)
    assert isinstance(open_source("http://127.0.0.1/live.ts"), LiveStream)

    class FakeCapture:
        def __init__(self, index: int) -> None:
            self.reads = 0

        def isOpened(self) -> bool:
            return True

        def get(self, prop: int) -> float:
            return 20.0 if prop == cv2.CAP_PROP_FPS else self.reads * 50.0

        def read(self):
            self.reads += 1
            return (self.reads <= 4, np.zeros((8, 8, 3), np.uint8))

        def release(self) -> None:
            pass

    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    camera = open_source("0")
    assert isinstance(camera, Webcam) and camera.live and camera.fps == Fraction(20)
    frames = list(camera)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    np.testing.assert_allclose([f.timestamp for f in frames], [0.0, 0.05, 0.1, 0.15])


def test_stream_that_never_answers_is_an_error() -> None:
    stream = LiveStream("http://127.0.0.1:9/none.ts", reconnect_timeout=0.2)
    with pytest.raises(SourceError, match="gave no frame"):
        list(stream)


def test_written_clip_matches_what_pyav_reads(tmp_path: Path) -> None:
    frames = small_frames(5)
    path = write_clip(tmp_path / "x.mkv", frames)
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate == 25
    assert len(list(open_source(path))) == 5
