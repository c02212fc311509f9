"""Weights resolution: registry, local files, downloads from a loopback server, SHA-256 checks."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
import typing
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ovdet import WeightsError
from ovdet.core import weights
from tests import network_guard

REPO = Path(__file__).resolve().parents[2]


class _Handler(http.server.BaseHTTPRequestHandler):
    payloads: typing.ClassVar[dict[str, tuple[bytes, int]]] = {}

    def do_GET(self) -> None:
        body, declared = self.payloads.get(self.path, (b"", -1))
        if declared < 0:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """A loopback HTTP server; register files in ``_Handler.payloads`` as path → (body, Content-Length)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    _Handler.payloads = {}


@pytest.fixture
def empty_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "weights"
    monkeypatch.setenv("OVDET_WEIGHTS_DIR", str(folder))
    monkeypatch.delenv("OVDET_OFFLINE")
    return folder


def _serve(
    monkeypatch: pytest.MonkeyPatch, server: str, name: str, body: bytes, declared: int | None = None, **changes
) -> None:
    """Serve ``body`` for registry entry ``name`` (announcing ``declared`` bytes) and point the entry at it."""
    monkeypatch.setitem(weights.WEIGHTS, name, replace(weights.WEIGHTS[name], url=f"{server}/{name}", **changes))
    _Handler.payloads[f"/{name}"] = (body, len(body) if declared is None else declared)


def test_registry_lists_the_four_detectors_and_clip() -> None:
    assert {"yolov8s-worldv2", "yolov8m-worldv2", "yolov8l-worldv2", "yolov8x-worldv2", "clip-vit-b-32"} <= set(
        weights.WEIGHTS
    )
    clip = weights.WEIGHTS["clip-vit-b-32"]
    assert clip.sha256 in clip.url  # OpenAI publishes the digest in the URL
    assert clip.filename == "clip/ViT-B-32.pt"


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(WeightsError, match="yolov8s-worldv2"):
        weights.resolve_weights("yolov9-magic")


def test_missing_local_path_is_reported() -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        weights.resolve_weights("/nowhere/my-model.pt")


def test_explicit_path_wins(model_path: Path) -> None:
    assert weights.resolve_weights(model_path) == model_path


def test_name_resolves_in_weights_dir(weights_dir: Path) -> None:
    assert weights.resolve_weights("yolov8s-worldv2") == weights_dir / "yolov8s-worldv2.pt"
    assert weights.resolve_weights("yolov8s-worldv2.pt") == weights_dir / "yolov8s-worldv2.pt"


def test_offline_message_names_file_url_and_place(empty_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVDET_OFFLINE", "1")
    with pytest.raises(WeightsError) as error:
        weights.resolve_weights("yolov8m-worldv2")
    message = str(error.value)
    assert "yolov8m-worldv2.pt" in message and weights.WEIGHTS["yolov8m-worldv2"].url in message
    assert str(empty_weights / "yolov8m-worldv2.pt") in message and "\n" not in message


def test_unreachable_host_fails_fast_with_one_line(empty_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = replace(weights.WEIGHTS["yolov8l-worldv2"], url="http://127.0.0.1:9/yolov8l-worldv2.pt")
    monkeypatch.setitem(weights.WEIGHTS, "yolov8l-worldv2", spec)
    with pytest.raises(WeightsError, match="download failed") as error:
        weights.resolve_weights("yolov8l-worldv2")
    assert "\n" not in str(error.value)
    assert not any(empty_weights.rglob("*.pt*"))


def test_download_checks_sha_and_renames_atomically(
    empty_weights: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b"clip weights" * 1000
    _serve(monkeypatch, server, "clip-vit-b-32", body, sha256=hashlib.sha256(body).hexdigest())
    path = weights.resolve_weights("clip-vit-b-32")
    assert path == empty_weights / "clip" / "ViT-B-32.pt"
    assert path.read_bytes() == body
    assert not list(path.parent.glob("*.part"))


def test_download_with_wrong_sha_saves_nothing(
    empty_weights: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve(monkeypatch, server, "clip-vit-b-32", b"tampered", sha256="0" * 64)
    with pytest.raises(WeightsError, match="SHA-256"):
        weights.resolve_weights("clip-vit-b-32")
    assert not any((empty_weights / "clip").iterdir())


def test_truncated_download_is_never_used(empty_weights: Path, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(monkeypatch, server, "yolov8x-worldv2", b"half a file", declared=1000)
    with pytest.raises(WeightsError):
        weights.resolve_weights("yolov8x-worldv2")
    assert not any(empty_weights.glob("yolov8x-worldv2.pt*"))


def test_downloaded_detector_is_pinned_after_it_loads(
    empty_weights: Path, server: str, monkeypatch: pytest.MonkeyPatch, model_path: Path
) -> None:
    from ovdet import OpenVocabDetector

    body = model_path.read_bytes()
    _serve(monkeypatch, server, "yolov8s-worldv2", body)
    OpenVocabDetector("yolov8s-worldv2", device="cpu")
    sums = (empty_weights / weights.SUMS_FILE).read_text()
    assert sums == f"{hashlib.sha256(body).hexdigest()}  yolov8s-worldv2.pt\n"

    (empty_weights / "yolov8s-worldv2.pt").write_bytes(body[:-10] + b"0123456789")  # swapped afterwards
    with pytest.raises(WeightsError, match="SHA-256"):
        weights.resolve_weights("yolov8s-worldv2")


def test_local_file_with_wrong_published_sha_is_refused(empty_weights: Path) -> None:
    target = empty_weights / "clip" / "ViT-B-32.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the OpenAI release")
    with pytest.raises(WeightsError, match=r"SHA-256.*delete it"):
        weights.resolve_weights("clip-vit-b-32")


def test_digest_is_computed_once_per_file_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"abc")
    first, expected = weights.file_sha256(path), hashlib.sha256(b"abc").hexdigest()
    calls, real_sha256 = [], hashlib.sha256
    monkeypatch.setattr(weights.hashlib, "sha256", lambda *a: calls.append(a) or real_sha256(*a))
    assert weights.file_sha256(path) == first == expected
    assert calls == []


def test_pin_is_the_digest_of_the_bytes_loaded(empty_weights: Path) -> None:
    """A file swapped between loading and pinning must not get its own digest pinned."""
    target = empty_weights / "yolov8m-worldv2.pt"
    empty_weights.mkdir()
    target.write_bytes(b"the weights that were loaded")
    loaded = weights.read_weights(target)
    target.write_bytes(b"a file swapped in afterwards")
    weights.pin_first_use(loaded)
    assert (empty_weights / weights.SUMS_FILE).read_text() == f"{loaded.sha256}  yolov8m-worldv2.pt\n"
    with pytest.raises(WeightsError, match="SHA-256"):
        weights.read_weights(target)


def test_own_checkpoint_with_other_types_loads_only_when_trusted(
    model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ovdet.runtimes.torch import load_world_model

    checkpoint = torch.load(model_path, map_location="cpu", weights_only=False)  # the test's own fixture
    checkpoint["train_results"] = {"map50": np.linspace(0.1, 0.5, 5)}  # numpy arrays are outside the allowlist
    own = tmp_path / "own.pt"
    torch.save(checkpoint, own)
    with pytest.raises(WeightsError, match=r"numpy.*OVDET_TRUST_WEIGHTS=1") as error:
        load_world_model(weights.read_weights(own))
    assert "\n" not in str(error.value)
    monkeypatch.setenv("OVDET_TRUST_WEIGHTS", "1")
    assert type(load_world_model(weights.read_weights(own))).__name__ == "WorldModel"


_CONVERT_TO_OPENVINO = """
import sys
from pathlib import Path

import torch

from ovdet.export.writers import write_onnx, write_openvino

folder = Path(sys.argv[1])
write_onnx(torch.nn.Conv2d(3, 4, 1), (torch.zeros(1, 3, 8, 8),), folder / "tiny.onnx")
write_openvino(folder / "tiny.onnx", folder / "tiny.xml", half=False)
"""


def test_openvino_conversion_sends_no_telemetry(tmp_path: Path) -> None:
    """``import openvino`` and ``convert_model`` report usage to Google Analytics unless ovdet turns that off."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "OVDET_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", _CONVERT_TO_OPENVINO, str(tmp_path)], env=env, cwd=REPO, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    assert (tmp_path / "tiny.xml").is_file()
    network_log = Path(os.environ[network_guard.LOG_VARIABLE])
    assert not network_log.is_file() or network_log.read_text() == ""
    assert not any(home.iterdir()), "OpenVINO's telemetry wrote its client id into the home folder"
