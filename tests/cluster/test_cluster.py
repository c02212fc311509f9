"""``ovdet batch`` in this process (no Ray): the same outputs as ``ovdet detect``, a manifest that makes re-runs
skip finished sources and refuse other settings, a Parquet dataset that matches the JSONL, bad input in one line."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ovdet.cluster.plan import check_collisions, expand_sources, plan_tasks
from ovdet.core.errors import UsageError
from tests.hostile.harness import (
    REPO,
    Result,
    assert_clean_stderr,
    assert_error,
    assert_no_temporaries,
    assert_valid_output,
    checksums,
    run_cli,
    unchanged,
)
from tests.media import small_frames, write_clip

CLASSES = "bottle,person"


@pytest.fixture(autouse=True)
def shared_embeddings(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run here embeds the same two classes: CLIP loads once, not per run."""
    monkeypatch.setenv("OVDET_CACHE_DIR", str(session_cache))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two short clips in two folders, and a corrupt one."""
    root = tmp_path_factory.mktemp("archive")
    frames = small_frames(5)
    (root / "cam1").mkdir()
    (root / "cam2").mkdir()
    write_clip(root / "cam1" / "door.mp4", frames[:3])
    write_clip(root / "cam2" / "door.mp4", frames[2:])
    (root / "cam2" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    return root


def _settings(model_path: Path) -> list:
    return ["--classes", CLASSES, "--model", model_path, "--imgsz", 160, "--conf", 0.01, "--device", "cpu"]


def _job_error(result: Result, *mentions: str) -> str:
    """A job with failed sources: a warning per failure as it happens, then one error line; exit 1."""
    lines = assert_clean_stderr(result, 1)
    errors = [line for line in lines if line.startswith("ovdet: error: ")]
    assert errors == [lines[-1]], lines
    for mention in mentions:
        assert mention in errors[0], errors[0]
    return errors[0]


def _detections(jsonl: Path) -> int:
    return sum(len(json.loads(line)["detections"]) for line in jsonl.read_text().splitlines())


def test_outputs_equal_ovdet_detect_and_a_rerun_skips_what_is_done(archive, model_path, tmp_path, capfd) -> None:
    out = tmp_path / "out"
    with unchanged(archive):
        first = run_cli(["batch", archive, *_settings(model_path), "--output-dir", out, "--jsonl", "--csv", "--coco"],
                        capfd)  # fmt: skip
    line = _job_error(first, "1 of 3 source(s) failed", "broken.mp4")
    assert "manifest.json" in line
    manifest = json.loads((out / "manifest.json").read_text())
    statuses = {Path(source).relative_to(archive).as_posix(): entry["status"]
                for source, entry in manifest["sources"].items()}  # fmt: skip
    assert statuses == {"cam1/door.mp4": "done", "cam2/door.mp4": "done", "cam2/broken.mp4": "failed"}
    assert "could not be opened" in manifest["sources"][str(archive / "cam2" / "broken.mp4")]["error"]

    rows = 0
    for name in ("cam1/door.mp4", "cam2/door.mp4"):
        single = tmp_path / "single" / name
        single.parent.mkdir(parents=True, exist_ok=True)
        detect = ["detect", archive / name, *_settings(model_path), "--output", f"{single}.jsonl",
                  "--output", f"{single}.csv", "--coco", f"{single}.coco.json", "--quiet"]  # fmt: skip
        assert_clean_stderr(run_cli(detect, capfd))
        for suffix in (".jsonl", ".csv", ".coco.json"):
            assert (out / f"{name}{suffix}").read_bytes() == Path(f"{single}{suffix}").read_bytes(), suffix
            assert_valid_output(out / f"{name}{suffix}")
        rows += _detections(out / f"{name}.jsonl")
    dataset = ds.dataset(out / "detections", format="parquet").to_table()
    assert rows > 0 and dataset.num_rows == rows
    assert sorted(set(dataset.column("source").to_pylist())) == [str(archive / "cam1/door.mp4"),
                                                                 str(archive / "cam2/door.mp4")]  # fmt: skip
    assert_no_temporaries(out)

    done = {path: digest for path, digest in checksums([out]).items() if path.name != "manifest.json"}
    again = run_cli(["batch", archive, *_settings(model_path), "--output-dir", out, "--jsonl", "--csv", "--coco"],
                    capfd)  # fmt: skip
    _job_error(again, "1 of 3 source(s) failed", "broken.mp4")
    assert "2 already done" in again.out and "1 failed" in again.out
    assert {path: digest for path, digest in checksums([out]).items() if path.name != "manifest.json"} == done


def test_an_output_folder_of_other_settings_is_refused_unless_overwrite(archive, model_path, tmp_path, capfd) -> None:
    out = tmp_path / "out"
    clip = archive / "cam1" / "door.mp4"
    assert_clean_stderr(run_cli(["batch", clip, *_settings(model_path), "--output-dir", out, "--quiet"], capfd))
    with unchanged(out):
        refused = run_cli(["batch", clip, *_settings(model_path), "--conf", 0.5, "--output-dir", out], capfd)
    assert_error(refused, 2, str(out), "conf", "--overwrite")
    redone = run_cli(["batch", clip, *_settings(model_path), "--conf", 0.5, "--output-dir", out, "--overwrite"], capfd)
    assert_clean_stderr(redone)
    assert json.loads((out / "manifest.json").read_text())["settings"]["conf"] == 0.5


def test_an_unreachable_ray_address_is_one_line_naming_it(archive, model_path, tmp_path, capfd) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    result = run_cli(["batch", archive, *_settings(model_path), "--output-dir", tmp_path / "out", "--ray", address],
                     capfd)  # fmt: skip
    assert_error(result, 1, f"--ray {address}", "ray start --head")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "arguments, mentions",
    [
        (["--workers", "2"], ["--workers", "--ray"]),
        (["--workers", "0", "--ray"], ["--workers 0"]),
        (["--ray", "ray://"], ["ray://", "not an address"]),
        (["--ray"], ["is a file or folder", "--ray local"]),  # the source after --ray was taken for its address
    ],
)
def test_bad_counts_and_addresses_are_refused(archive, model_path, tmp_path, capfd, arguments, mentions) -> None:
    sources = [archive / "cam1", archive / "cam2"]
    result = run_cli(["batch", *_settings(model_path), "--output-dir", tmp_path / "out", *arguments, *sources], capfd)
    assert_error(result, 1 if "ray://" in arguments else 2, *mentions)


def test_ray_taking_the_only_source_says_so(archive, model_path, tmp_path, capfd) -> None:
    result = run_cli(["batch", *_settings(model_path), "--output-dir", tmp_path / "out", "--ray", archive], capfd)
    assert_error(result, 2, f"--ray {archive} is a file or folder", "after the sources")


def test_outputs_mirror_the_sources_and_a_list_file_names_them(archive, tmp_path) -> None:
    listing = tmp_path / "sources.txt"
    listing.write_text(f"# the doors\n{archive / 'cam1' / 'door.mp4'}\n\n{archive / 'cam2' / 'door.mp4'}\n")
    sources = expand_sources([f"@{listing}", str(archive / "cam1")])
    assert sources == [str(archive / "cam1" / "door.mp4"), str(archive / "cam2" / "door.mp4")]
    tasks = plan_tasks(sources, tmp_path / "out", ["jsonl", "video"])
    assert tasks[1].outputs == {"jsonl": str(tmp_path / "out/cam2/door.mp4.jsonl"),
                                "video": str(tmp_path / "out/cam2/door.mp4.annotated.mp4")}  # fmt: skip
    assert tasks[1].parquet == str(tmp_path / "out/detections/cam2/door.mp4.parquet")
    with pytest.raises(UsageError, match="does not exist"):
        expand_sources([str(archive / "nowhere.mp4")])


def test_an_output_folder_inside_the_archive_is_not_taken_for_sources(archive, tmp_path) -> None:
    copy = tmp_path / "archive"
    (copy / "out" / "cam1").mkdir(parents=True)
    (copy / "a.mp4").write_bytes((archive / "cam1" / "door.mp4").read_bytes())
    (copy / "out" / "cam1" / "a.mp4.annotated.mp4").write_bytes(b"")
    assert expand_sources([str(copy)], skip=copy / "out") == [str(copy / "a.mp4")]


def test_an_output_folder_that_is_a_source_folder_is_refused(archive, model_path, capfd) -> None:
    """Its outputs would be taken for sources by the next run, which the manifest promises to resume."""
    with unchanged(archive):
        result = run_cli(["batch", archive / "cam2", *_settings(model_path), "--output-dir", archive / "cam2"], capfd)
    assert_error(result, 2, "--output-dir", "source folder", "of their own")


def test_ctrl_c_stops_the_job_and_leaves_finished_sources_complete(model_path, tmp_path) -> None:
    short = write_clip(tmp_path / "a-short.mp4", small_frames(2))
    long = write_clip(tmp_path / "b-long.mp4", small_frames(40) * 8)
    out = tmp_path / "out"
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "ovdet", "batch", short, long, *map(str, _settings(model_path)),
             "--output-dir", out, "--quiet"],
            stdout=subprocess.DEVNULL, stderr=handle, cwd=REPO,
        )  # fmt: skip
    partial = out / "b-long.mp4.jsonl"
    deadline = time.monotonic() + 240
    while not (partial.exists() and partial.read_bytes().count(b"\n") >= 3):
        assert process.poll() is None and time.monotonic() < deadline, stderr.read_text()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    result = Result(process.returncode, "", stderr.read_text())
    assert_clean_stderr(result, 130)
    assert "stopped by SIGINT" in result.err
    sources = json.loads((out / "manifest.json").read_text())["sources"]
    assert sources[str(short)]["status"] == "done" and sources[str(long)]["status"] == "stopped"
    for output in (out / "a-short.mp4.jsonl", partial):
        assert_valid_output(output)
    assert partial.read_bytes().count(b"\n") < 320
    dataset = ds.dataset(out / "detections", format="parquet").to_table()  # the finished source only
    assert set(dataset.column("source").to_pylist()) <= {str(short)}
    assert dataset.num_rows == _detections(out / "a-short.mp4.jsonl")
    assert_no_temporaries(out)


_FOLDERS = st.text(alphabet="abcxyz-_.é 0", min_size=1, max_size=8).filter(lambda name: name not in (".", ".."))
_VIDEOS = st.builds(lambda stem, suffix: stem + suffix, _FOLDERS, st.sampled_from([".mp4", ".MKV", ".avi"]))


@given(st.lists(st.tuples(st.lists(_FOLDERS, max_size=2), _VIDEOS), min_size=1, max_size=6))
def test_every_source_gets_its_own_outputs_inside_the_output_folder(paths) -> None:
    root, out = Path("/archive"), Path("/results/out")
    sources = list(dict.fromkeys(str(root.joinpath(*folders, video)) for folders, video in paths))
    tasks = plan_tasks(sources, out, ["jsonl", "csv", "coco", "events", "video"])
    files = [file for task in tasks for file in task.files]
    assert len(set(files)) == len(files)
    assert all(Path(file).is_relative_to(out) for file in files)
    assert all(Path(task.parquet).is_relative_to(out / "detections") for task in tasks)


def test_two_sources_that_would_write_one_file_are_refused(archive, tmp_path) -> None:
    folder = tmp_path / "door.mp4.events"  # an image folder whose JSONL is door.mp4's events file
    folder.mkdir()
    (folder / "frame.jpg").write_bytes(b"")
    (tmp_path / "door.mp4").write_bytes((archive / "cam1" / "door.mp4").read_bytes())
    sources = expand_sources([str(tmp_path / "door.mp4"), str(folder)])
    tasks = plan_tasks(sources, tmp_path / "out", ["jsonl", "events"])
    with pytest.raises(UsageError, match=r"would both write .*door\.mp4\.events\.jsonl"):
        check_collisions(tasks, [])


def test_an_output_folder_that_is_a_file_is_one_line(archive, model_path, tmp_path, capfd) -> None:
    taken = tmp_path / "out"
    taken.write_bytes(b"not a folder")
    with unchanged(taken):
        result = run_cli(["batch", archive, *_settings(model_path), "--output-dir", taken], capfd)
    assert_error(result, 1, str(taken))


def test_a_folder_gives_each_image_folder_and_each_video_below_it(archive, tmp_path) -> None:
    (tmp_path / "ward" / "stills").mkdir(parents=True)
    (tmp_path / "ward" / "stills" / "0001.jpg").write_bytes(b"")
    (tmp_path / "ward" / "notes.txt").write_text("not a source")
    (tmp_path / "ward" / "bed.mp4").write_bytes((archive / "cam1" / "door.mp4").read_bytes())
    assert expand_sources([str(tmp_path / "ward")]) == [str(tmp_path / "ward" / "bed.mp4"),
                                                        str(tmp_path / "ward" / "stills")]  # fmt: skip
