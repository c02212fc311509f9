"""The first ten minutes: the README's set-up command runs ``ovdet detect`` on Ultralytics' bundled sample images,
and ``ovdet detect`` without outputs saves its results to runs/detect/predict, predict2 … (ovdet/commands/run_dir.py,
ovdet/io/samples.py)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from ovdet.commands.run_dir import next_run_folder
from ovdet.io import samples
from tests.hostile.harness import assert_clean_stderr, assert_error, decoded_frames, run_cli, unchanged
from tests.media import small_frames, write_clip

REPO = Path(__file__).resolve().parents[1]
SAMPLES = ["bus.jpg", "zidane.jpg"]
FAST = ["--imgsz", "160", "--device", "cpu", "--conf", "0.01"]


def readme_setup_commands() -> list[str]:
    """The commands of the README's first code block (its set-up), without comments."""
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def saved_folder(out: str) -> str:
    return re.search(r"^results saved to (.+)$", out, flags=re.M).group(1)


pytestmark = pytest.mark.usefixtures("module_embedding_cache")  # CLIP loads only in the module's first run


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "inputs" / "shelf.jpg"
    path.parent.mkdir()
    cv2.imwrite(str(path), small_frames(1)[0])
    return path


def test_readme_first_command_runs_on_the_bundled_samples_and_says_where(tmp_path: Path) -> None:
    install, tests = readme_setup_commands()[:2]
    assert install.startswith("pip install") and tests == "pytest"
    detect = next(part.strip() for part in install.split("&&") if part.strip().startswith("ovdet detect"))
    arguments = shlex.split(detect)[1:]
    assert arguments[0] == "detect" and arguments[1].startswith("--"), "the first command names no source"
    clean = tmp_path / "fresh"
    clean.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))}
    completed = subprocess.run(
        [sys.executable, "-m", "ovdet", *arguments], cwd=clean, env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert saved_folder(completed.stdout) == os.path.join("runs", "detect", "predict")
    folder = clean / "runs" / "detect" / "predict"
    assert sorted(p.name for p in folder.iterdir()) == ["bus.jpg", "detections.jsonl", "zidane.jpg"]
    records = [json.loads(line) for line in (folder / "detections.jsonl").read_text().splitlines()]
    assert [Path(r["source"]).name for r in records] == SAMPLES
    assert {d["class_name"] for r in records for d in r["detections"]} <= {"person", "bus"}
    assert "2 image(s)" in completed.stdout
    assert [p.name for p in clean.iterdir()] == ["runs"]


def test_results_go_to_predict_then_predict2(image: Path, capfd) -> None:
    for expected in ("predict", "predict2"):
        with unchanged(image.parent):
            result = run_cli(["detect", image, "--classes", "person", *FAST], capfd)
        assert_clean_stderr(result)
        assert saved_folder(result.out) == os.path.join("runs", "detect", expected)
        folder = Path("runs", "detect", expected)
        assert sorted(p.name for p in folder.iterdir()) == ["detections.jsonl", "shelf.jpg"]
        assert cv2.imread(str(folder / "shelf.jpg")).shape == cv2.imread(str(image)).shape
        assert len((folder / "detections.jsonl").read_text().splitlines()) == 1


def test_project_name_and_exist_ok(image: Path, capfd) -> None:
    named = ["detect", image, "--classes", "person", *FAST, "--project", "trials", "--name", "shelf"]
    folders = []
    for extra in ([], [], ["--exist-ok"]):
        result = run_cli([*named, *extra], capfd)
        assert result.code == 0, result.err
        folders.append(saved_folder(result.out))
    assert folders == [os.path.join("trials", x) for x in ("shelf", "shelf2", "shelf")]
    assert len(Path("trials/shelf/detections.jsonl").read_text().splitlines()) == 1  # replaced, not appended
    assert not Path("runs").exists()


def test_a_failed_exist_ok_run_keeps_the_earlier_results(image: Path, capfd) -> None:
    named = ["detect", image, "--classes", "person", *FAST, "--name", "shelf"]
    assert run_cli(named, capfd).code == 0
    earlier = Path("runs/detect/shelf")
    with unchanged(earlier):
        result = run_cli([*named, "--exist-ok", "--model", "missing-model.pt"], capfd)
    assert_error(result, 1, "missing-model.pt")


def test_no_save_writes_nothing(image: Path, capfd) -> None:
    before = set(Path.cwd().iterdir())
    result = run_cli(["detect", image, "--classes", "person", *FAST, "--no-save"], capfd)
    assert_clean_stderr(result)
    assert "nothing saved (--no-save)" in result.out and "1 image(s)" in result.out
    assert set(Path.cwd().iterdir()) == before


def test_an_explicit_output_replaces_the_default_folder(image: Path, tmp_path: Path, capfd) -> None:
    result = run_cli(["detect", image, "--classes", "person", *FAST, "--output", tmp_path / "o.jsonl"], capfd)
    assert result.code == 0, result.err
    assert f"→ {tmp_path / 'o.jsonl'}" in result.out and not Path("runs").exists()


def test_a_video_is_saved_as_an_annotated_video(tmp_path: Path, capfd) -> None:
    clip = write_clip(tmp_path / "ward camera.mp4", small_frames(6))
    result = run_cli(["detect", clip, "--classes", "person", *FAST], capfd)
    assert result.code == 0, result.err
    folder = Path(saved_folder(result.out))
    assert sorted(p.name for p in folder.iterdir()) == ["detections.jsonl", "ward_camera.mp4"]
    assert decoded_frames(folder / "ward_camera.mp4") == 6
    assert "6 frame(s)" in result.out and "frames/s" in result.out


def test_the_default_folder_may_not_hold_the_input_images(tmp_path: Path, capfd) -> None:
    folder = Path("runs/detect/predict")
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "shelf.jpg"), small_frames(1)[0])
    with unchanged(folder):
        result = run_cli(["detect", folder / "shelf.jpg", "--classes", "person", *FAST, "--exist-ok"], capfd)
    assert_error(result, 2, "--project/--name", "runs/detect/predict", "folder of the input images")


def test_no_source_without_ultralytics_says_to_pass_one(capfd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(samples.importlib.util, "find_spec", lambda name: None)
    result = run_cli(["detect", "--classes", "person"], capfd)
    assert_error(result, 2, "no source given", "pass an image")
    assert not Path("runs").exists()


@pytest.mark.parametrize(
    "mistake",
    [["--model", "missing.pt"], ["--vocab", "missing.yaml"], ["--precision", "int8", "--calibration", "missing.mp4"]],
    ids=["missing-weights", "missing-vocabulary", "missing-calibration"],
)
def test_a_run_that_fails_before_its_first_frame_leaves_no_results_folder(
    mistake: list[str], image: Path, capfd
) -> None:
    classes = [] if "--vocab" in mistake else ["--classes", "person"]
    result = run_cli(["detect", image, *classes, *FAST, *mistake], capfd)
    assert_error(result, result.code, mistake[-1])
    assert result.code in (1, 2) and not Path("runs").exists()


def test_a_source_still_needs_classes(image: Path, capfd) -> None:
    assert_error(run_cli(["detect", image], capfd), 2, "--classes", str(image))


def test_run_folders_are_numbered_like_ultralytics(tmp_path: Path) -> None:
    assert next_run_folder(tmp_path, "predict") == tmp_path / "predict"
    for name in ("predict", "predict2", "predict4"):
        (tmp_path / name).mkdir()
    assert next_run_folder(tmp_path, "predict") == tmp_path / "predict3"
    assert next_run_folder(tmp_path, "predict", exist_ok=True) == tmp_path / "predict"
