"""Image input: paths, arrays and PIL images; odd formats converted; bad files reported or skipped."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ovdet import SourceError
from ovdet.io.images import expand_image_source, load_image, to_bgr8


@pytest.fixture
def colour() -> np.ndarray:
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, :, 2] = 200  # red in BGR
    image[10:20, 10:30] = (0, 255, 0)
    return image


def test_path_array_and_pil_agree(tmp_path: Path, colour: np.ndarray) -> None:
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), colour)
    pil = Image.open(path)
    for source in (path, str(path), colour, pil):
        np.testing.assert_array_equal(load_image(source), colour)


def test_grayscale_file_becomes_three_channels(tmp_path: Path) -> None:
    gray = np.arange(48 * 64, dtype=np.uint16).reshape(48, 64).astype(np.uint8)
    path = tmp_path / "g.png"
    cv2.imwrite(str(path), gray)
    image = load_image(path)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 0], gray)


def test_rgba_file_drops_alpha(tmp_path: Path, colour: np.ndarray) -> None:
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), np.dstack([colour, np.full(colour.shape[:2], 7, np.uint8)]))
    np.testing.assert_array_equal(load_image(path), colour)
    pil = Image.open(path)
    assert pil.mode == "RGBA"
    np.testing.assert_array_equal(load_image(pil), colour)


def test_sixteen_bit_file_is_scaled_to_eight_bits(tmp_path: Path) -> None:
    deep = np.full((8, 8, 3), 0xABCD, np.uint16)
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), deep)
    assert load_image(path).max() == 0xAB
    assert to_bgr8(deep).max() == 0xAB


def test_array_layouts() -> None:
    assert to_bgr8(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    assert to_bgr8(np.zeros((5, 6, 1), np.uint8)).shape == (5, 6, 3)
    assert to_bgr8(np.zeros((5, 6, 4), np.uint8)).shape == (5, 6, 3)
    with pytest.raises(SourceError, match="pixel type float64"):
        to_bgr8(np.zeros((5, 6, 3)))
    with pytest.raises(SourceError, match="shape"):
        to_bgr8(np.zeros((5, 6, 2), np.uint8))


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "does not exist"), (b"", "empty"), (b"\x89PNG\r\n\x1a\n garbage", "could not be decoded")],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        load_image(path)


def test_truncated_jpeg_header_is_an_error(tmp_path: Path, colour: np.ndarray) -> None:
    path = tmp_path / "cut.jpg"
    _, encoded = cv2.imencode(".jpg", colour)
    path.write_bytes(encoded.tobytes()[:20])
    with pytest.raises(SourceError):
        load_image(path)


def test_folder_skips_non_images_with_a_warning(tmp_path: Path, colour: np.ndarray) -> None:
    for name in ("b.jpg", "a.png"):
        cv2.imwrite(str(tmp_path / name), colour)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    with pytest.warns(UserWarning, match=r"skipped 1 non-image file.*notes\.txt"):
        paths = expand_image_source(tmp_path)
    assert [p.name for p in paths] == ["a.png", "b.jpg"]


def test_glob_and_empty_folder(tmp_path: Path, colour: np.ndarray) -> None:
    cv2.imwrite(str(tmp_path / "x.jpg"), colour)
    assert [p.name for p in expand_image_source(str(tmp_path / "*.jpg"))] == ["x.jpg"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="holds no images"):
        expand_image_source(empty)
    with pytest.raises(SourceError, match="does not exist"):
        expand_image_source(tmp_path / "missing")
