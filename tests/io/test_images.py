"""Image input: paths, arrays and PIL images; odd formats converted; bad files reported or skipped."""

from __future__ import annotations

import builtins
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ovdet import SourceError
from ovdet.io import images
from ovdet.io.images import MAX_IMAGE_PIXELS, expand_image_source, load_image, to_bgr8
from tests.media import png_header, refusing_open


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


def _write_exif_rotated(path: Path, image: np.ndarray) -> None:
    pil = Image.fromarray(image[..., ::-1])
    exif = pil.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    pil.save(path, exif=exif)


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("c.jpg", lambda p, im: cv2.imwrite(str(p), im)),
        ("c.png", lambda p, im: cv2.imwrite(str(p), im)),
        ("c16.png", lambda p, im: cv2.imwrite(str(p), im.astype(np.uint16) * 257 + 3)),
        ("g.png", lambda p, im: cv2.imwrite(str(p), cv2.cvtColor(im, cv2.COLOR_BGR2GRAY))),
        ("a.png", lambda p, im: cv2.imwrite(str(p), np.dstack([im, im[..., 0]]))),
        ("p.png", lambda p, im: Image.fromarray(im[..., ::-1]).convert("P", palette=Image.ADAPTIVE).save(p)),
        ("c.webp", lambda p, im: cv2.imwrite(str(p), im)),
        ("c.tif", lambda p, im: cv2.imwrite(str(p), im)),
        ("r.jpg", _write_exif_rotated),
    ],
    ids=["jpeg", "png", "png-16-bit", "gray", "rgba", "palette", "webp", "tiff", "exif-rotated"],
)
def test_files_decode_to_what_opencv_reads(tmp_path: Path, bottle_frames: list[np.ndarray], name: str, write) -> None:
    """Pillow decodes files, and the pixels equal OpenCV's IMREAD_COLOR (what Ultralytics feeds the model)."""
    path = tmp_path / name
    write(path, cv2.resize(bottle_frames[0], (96, 54)))
    expected = cv2.imread(str(path), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(load_image(path), expected)


@pytest.mark.parametrize(
    ("width", "height", "mention"),
    [(40000, 40000, "more than 67,108,864 pixels"), (12000, 9000, "more than"), (9000, 9000, "9000×9000 pixels")],
    ids=["40000x40000", "past-pillow-warning", "past-ovdet-limit"],
)
def test_too_large_image_is_refused_from_its_header(tmp_path: Path, width: int, height: int, mention: str) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(png_header(width, height))  # the header only: decoding would fail with another message
    with pytest.raises(SourceError, match=mention) as caught:
        load_image(path)
    assert "8192×8192" in str(caught.value) and "\n" not in str(caught.value)


def test_limit_is_inclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 48 * 32)
    path = tmp_path / "c.png"
    cv2.imwrite(str(path), np.zeros((32, 48, 3), np.uint8))
    assert load_image(path).shape == (32, 48, 3)
    cv2.imwrite(str(path), np.zeros((33, 48, 3), np.uint8))
    with pytest.raises(SourceError, match="48×33 pixels"):
        load_image(path)


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def _broken_crc(image: np.ndarray) -> bytes:
    data = bytearray(_png(image))
    data[29] ^= 0xFF  # the header chunk's checksum
    return bytes(data)


@pytest.mark.parametrize(
    "content",
    [
        lambda im: _broken_crc(im),
        lambda im: _png(im)[:60],
        lambda im: png_header(0, 0),
        lambda im: cv2.imencode(".jpg", im)[1].tobytes()[:300],
        lambda im: b"hello, I am text\n",
    ],
    ids=["png-broken-crc", "png-truncated", "png-0x0", "jpeg-truncated", "text-named-jpg"],
)
def test_damaged_files_are_one_error_and_nothing_on_stderr(
    tmp_path: Path, colour: np.ndarray, content, capfd: pytest.CaptureFixture[str]
) -> None:
    """No libpng or OpenCV lines on stderr: the error is ovdet's own."""
    path = tmp_path / "bad.jpg"
    path.write_bytes(content(colour))
    capfd.readouterr()
    with pytest.raises(SourceError, match="could not be decoded") as caught:
        load_image(path)
    assert capfd.readouterr().err == ""
    assert "\n" not in str(caught.value)


def test_one_pixel_image_is_read(tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    cv2.imwrite(str(path), np.full((1, 1, 3), 9, np.uint8))
    assert load_image(path).tolist() == [[[9, 9, 9]]]


def test_unreadable_file_is_an_error(tmp_path: Path, colour: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.png"
    cv2.imwrite(str(path), colour)
    monkeypatch.setattr(builtins, "open", refusing_open(path))
    with pytest.raises(SourceError, match=r"locked\.png cannot be read \(permission denied\)"):
        load_image(path)


def test_unreadable_folder_is_an_error(tmp_path: Path, colour: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), colour)

    def refuse(self: Path):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(SourceError, match="cannot be read \\(permission denied\\)"):
        expand_image_source(tmp_path)


def test_limit_is_documented() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"{MAX_IMAGE_PIXELS:,}" in readme and "8192×8192" in readme
