"""Shared fixtures: real architectures with random weights, built once per test session (no downloads)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from ovdet.core.weights import SUMS_FILE
from tests import network_guard, weights_fixtures
from tests.footage import BOTTLES, PEOPLE, PEOPLE_GIF, SHARED_DATA  # noqa: F401 (tests import them from here)

# No network beyond loopback for the whole run, in this process and in every interpreter it starts.
network_guard.install()
_GUARD_SITE = str(Path(network_guard.__file__).parent)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (_GUARD_SITE, os.environ.get("PYTHONPATH"))))


def read_frames(path: Path, count: int, step: int = 1) -> list[np.ndarray]:
    """The first ``count`` frames of a clip, every ``step``-th, as BGR arrays."""
    capture = cv2.VideoCapture(str(path))
    frames, index = [], 0
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        if index % step == 0:
            frames.append(frame)
        index += 1
    capture.release()
    return frames


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Says how the tests that need the full sample clips (marked ``shared_media``) fared, e.g. how many skipped."""
    outcomes = {
        outcome: sum(
            "shared_media" in getattr(report, "keywords", {}) for report in terminalreporter.stats.get(outcome, [])
        )
        for outcome in ("passed", "failed", "skipped", "error")
    }
    outcomes = {outcome: count for outcome, count in outcomes.items() if count}
    if outcomes:
        counts = ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items())
        where = "found" if SHARED_DATA.is_dir() else "absent"
        terminalreporter.write_line(f"tests that need the full clips of {SHARED_DATA} ({where}): {counts}")


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<dir>/yolov8s-worldv2.pt`` and ``<dir>/clip/ViT-B-32.pt``: random-init, recalibrated, real formats."""
    root = weights_fixtures.build_weights_dir(
        tmp_path_factory.mktemp("weights"), weights_fixtures.read_calibration_frames()
    )
    # Pinned as by an earlier run, so that no test's output depends on being the first to load the detector.
    digest = hashlib.sha256((root / "yolov8s-worldv2.pt").read_bytes()).hexdigest()
    (root / SUMS_FILE).write_text(f"{digest}  yolov8s-worldv2.pt\n")
    return root


@pytest.fixture(scope="session", autouse=True)
def offline_weights(weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The whole session sees the random-init weights and no network, session fixtures included."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVDET_WEIGHTS_DIR", str(weights_dir))
        # The random-init CLIP file cannot carry OpenAI's published digest; an explicit path is not digest-checked.
        patch.setenv("OVDET_CLIP_WEIGHTS", str(weights_dir / "clip" / "ViT-B-32.pt"))
        patch.setenv("OVDET_OFFLINE", "1")
        patch.setenv("OVDET_CACHE_DIR", str(tmp_path_factory.mktemp("session-cache")))
        # PyTorch by default, for exact parity with Ultralytics; tests of the converted runtimes ask for them, and
        # their conversions are kept for the whole session.
        patch.setenv("OVDET_RUNTIME", "torch")
        patch.setenv("OVDET_COMPILED_DIR", str(tmp_path_factory.mktemp("compiled")))
        yield


@pytest.fixture(autouse=True)
def no_network(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fails the test if it, or a process it started, tried to reach past loopback (even if the error was caught)."""
    log = tmp_path_factory.mktemp("network") / "attempts.log"
    monkeypatch.setenv(network_guard.LOG_VARIABLE, str(log))
    yield
    attempts = log.read_text() if log.is_file() else ""
    assert not attempts, f"network access outside loopback:\n{attempts}"


@pytest.fixture(scope="session")
def _native_guard_library(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    return network_guard.build_native_guard(tmp_path_factory.mktemp("native-guard"))


@pytest.fixture
def native_network_guard(_native_guard_library: Path | None, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Child processes this test starts also fail and log lookups and connections from native code (LD_PRELOAD)."""
    if _native_guard_library is None:
        pytest.skip("the native network guard needs a C compiler on Linux")
    monkeypatch.setenv("LD_PRELOAD", str(_native_guard_library))
    return _native_guard_library


@pytest.fixture(scope="session", autouse=True)
def repository_stays_clean() -> Iterator[None]:
    """``ovdet detect`` without outputs saves to ./runs: no test may leave that in the repository."""
    runs = Path(__file__).resolve().parents[1] / "runs"
    existed = runs.exists()
    yield
    assert existed or not runs.exists(), f"a test saved results into the repository: {runs}"


@pytest.fixture(autouse=True)
def work_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs in an empty folder of its own, where default results (runs/detect/…) may land."""
    folder = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with an empty ovdet cache."""
    monkeypatch.setenv("OVDET_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def _module_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embeddings")


@pytest.fixture
def module_embedding_cache(_module_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One embedding cache for a test module, instead of a fresh one per test: prompts are encoded once per module."""
    monkeypatch.setenv("OVDET_CACHE_DIR", str(_module_cache_dir))
    return _module_cache_dir


@pytest.fixture(scope="session")
def model_path(weights_dir: Path) -> Path:
    return weights_dir / "yolov8s-worldv2.pt"


@pytest.fixture(scope="session")
def clip_path(weights_dir: Path) -> Path:
    return weights_dir / "clip" / "ViT-B-32.pt"


@pytest.fixture(scope="session")
def bottle_frames() -> list[np.ndarray]:
    return read_frames(BOTTLES, 4, step=60)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedding cache shared by the tests that only need embeddings, not a cold start."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture(scope="session")
def session_detector(model_path: Path, session_cache: Path):
    """One detector for tests that do not change its state beyond ``set_classes``."""
    from ovdet import OpenVocabDetector

    return OpenVocabDetector(model_path, device="cpu", cache_dir=session_cache)


@pytest.fixture
def detector(session_detector):
    """The session detector with three classes set (their embeddings cached after the first test)."""
    session_detector.set_classes(["bottle", "person", "red backpack"])
    return session_detector


@pytest.fixture(scope="session")
def mobileclip_paths(weights_dir: Path) -> dict[str, dict[str, Path]]:
    """Random-init MobileCLIP-B and MobileCLIP2-B text towers, ``{space: {"torchscript": .ts, "open_clip": .pt}}``.

    The ``.ts`` files lie at their registry places in the session's weights folder, so YOLOE detectors find them
    offline.
    """
    from tests import mobileclip_fixtures

    return mobileclip_fixtures.build_mobileclip_files(weights_dir)


# --- YOLOE (issue 13): random-init checkpoints of each family, detection and -seg -------------------------------


@pytest.fixture(scope="session")
def yoloe_paths(tmp_path_factory: pytest.TempPathFactory, mobileclip_paths: dict) -> dict[str, Path]:
    """``{"yoloe-11n": Path, "yoloe-11n-seg": Path, ...}`` for yoloe-v8, yoloe-11 and yoloe-26: random-init,
    recalibrated on real frames, saved as Ultralytics saves them; their MobileCLIP text towers are in the session's
    weights folder, as they would be in a user's."""
    from tests import yoloe_fixtures

    return yoloe_fixtures.build_yoloe_dir(tmp_path_factory.mktemp("yoloe"))
