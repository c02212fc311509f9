"""Frame sources: every readable frame once, in order, with container timestamps; damaged files warn."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from ovdet import ConfigError, SourceError
from ovdet.io.frame_index import SourceIndex
from ovdet.io.sources import ImageSequence, LiveStream, VideoFile, Webcam, open_source
from tests.conftest import BOTTLES, PEOPLE_GIF
from tests.media import (
    corrupt_middle,
    small_frames,
    truncate,
    write_audio_only,
    write_clip,
    write_no_frames,
    write_vfr_clip,
)


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
    with pytest.warns(UserWarning, match=r"cut\.mp4 is truncated or corrupt: frames \d+–59 missing at the end") as w:
        frames = list(open_source(path))
    assert 10 < len(frames) < 60
    assert [f.index for f in frames] == list(range(len(frames)))
    assert f"frames {len(frames)}–59 missing at the end" in str(w[0].message)
    assert str(w[0].message).endswith(f"the last is frame {len(frames) - 1}")


@pytest.mark.parametrize("suffix", [".ts", ".mkv", ".mp4"])
def test_frames_after_damage_keep_their_source_index(tmp_path: Path, suffix: str) -> None:
    """Frames lost in the middle leave a gap in the indices, reported where it is."""
    path = write_clip(tmp_path / f"bad{suffix}", small_frames(60), keyframe_interval=5)
    corrupt_middle(path, start=0.45, length=3000)
    with pytest.warns(UserWarning, match=rf"bad\{suffix} is truncated or corrupt: frames \d+–\d+ missing") as w:
        frames = list(open_source(path))
    indices = [f.index for f in frames]
    assert frames[-1].index == 59, "frames after the damage are still read"
    start = frames[0].timestamp
    assert indices == [round((f.timestamp - start) * 25) for f in frames], "index ≠ timestamp × fps"
    missing = sorted(set(range(60)) - set(indices))
    assert missing and f"frames {missing[0]}–{missing[-1]} missing" in str(w[0].message)


def test_real_clip_damaged_in_the_middle_keeps_source_indices(tmp_path: Path) -> None:
    path = tmp_path / "bottles.mp4"
    path.write_bytes(BOTTLES.read_bytes())
    corrupt_middle(path, start=0.5, length=20000)
    with pytest.warns(UserWarning, match=r"bottles\.mp4 is truncated or corrupt: frames? \d+") as w:
        source = open_source(path, vid_stride=3)
        frames = list(source)
    fps = float(source.fps)
    indices = [f.index for f in frames]
    assert indices == [round(f.timestamp * fps) for f in frames], "index ≠ timestamp × fps"
    assert all(i % 3 == 0 for i in indices) and indices[-1] == 1188 - 1188 % 3
    assert len(frames) < -(-1189 // 3), "the damage cost frames"
    first_gap = next(i for i in range(0, 1189, 3) if i not in indices)
    gap = re.search(r"frames? (\d+)", str(w[0].message))
    assert gap and int(gap.group(1)) <= first_gap < int(gap.group(1)) + 40, "the gap is reported where it is"
    assert str(w[0].message).endswith("the last is frame 1188")


def test_variable_frame_rate_file_is_not_reported_as_damaged(tmp_path: Path, recwarn) -> None:
    stamps = np.cumsum([0] + [20, 67, 40, 100, 33, 20, 80, 40] * 5).tolist()  # milliseconds, irregular
    for suffix in (".mkv", ".mp4"):
        path = write_vfr_clip(tmp_path / f"vfr{suffix}", small_frames(len(stamps)), stamps)
        frames = list(open_source(path))
        assert [f.index for f in frames] == list(range(len(stamps)))
        np.testing.assert_allclose([f.timestamp for f in frames], np.array(stamps) / 1000, atol=1e-3)
        assert [f.index for f in open_source(path, vid_stride=4)] == list(range(0, len(stamps), 4))
    assert not [str(w.message) for w in recwarn], "an intact file gets no warning"


def test_source_index_on_and_off_the_frame_rate_grid() -> None:
    constant = SourceIndex(Fraction(25), Fraction(1, 1000), 0)
    assert [constant.next(pts) for pts in (0, 40, 80, 400, 440, 481)] == [0, 1, 2, 10, 11, 12]
    assert constant.gaps == [(3, 9)] and constant.constant
    late_start = SourceIndex(Fraction(25), Fraction(1, 90000), 7200)
    assert [late_start.next(pts) for pts in (14400, 18000)] == [2, 3] and late_start.gaps == [(0, 1)]
    variable = SourceIndex(Fraction(25), Fraction(1, 1000), 0)
    assert [variable.next(pts) for pts in (0, 40, 60, 200, 210)] == [0, 1, 2, 3, 4]
    assert not variable.constant and variable.gaps == []
    unknown = SourceIndex(None, Fraction(1, 1000), None)
    assert [unknown.next(pts) for pts in (0, None, 5000)] == [0, 1, 2]


def test_one_frame_and_no_frame_videos(tmp_path: Path, recwarn) -> None:
    one = write_clip(tmp_path / "one.mp4", small_frames(1))
    assert [(f.index, f.timestamp) for f in open_source(one)] == [(0, 0.0)]
    assert not recwarn.list
    with pytest.raises(SourceError, match=r"no frame of video .*none\.avi could be decoded"):
        list(open_source(write_no_frames(tmp_path / "none.avi")))
    with pytest.raises(SourceError, match=r"sound\.mp4 holds no video stream \(only audio\)"):
        open_source(write_audio_only(tmp_path / "sound.mp4"))


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


def test_folder_where_no_image_reads_is_an_error(tmp_path: Path) -> None:
    for name in ("a.png", "b.jpg"):
        (tmp_path / name).write_bytes(b"not an image")
    with (
        pytest.warns(UserWarning, match="skipped image"),
        pytest.raises(SourceError, match=r"none of the 2 images in .* could be read"),
    ):
        list(open_source(tmp_path))


@pytest.mark.parametrize("name", ["2024", "0"])
def test_existing_folder_named_like_a_webcam_is_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path(name).mkdir()
    cv2.imwrite(f"{name}/a.png", small_frames(1)[0])
    monkeypatch.setattr(cv2, "VideoCapture", lambda index: pytest.fail(f"opened webcam {index}"))
    source = open_source(name)
    assert isinstance(source, ImageSequence)
    assert [Path(f.source).name for f in source] == ["a.png"]


def test_missing_webcam_is_one_error_without_opencv_lines(capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    with pytest.raises(SourceError, match="camera 7 could not be opened"):
        open_source("7")
    assert capfd.readouterr().err == ""


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
