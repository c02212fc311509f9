"""``ovdet batch --ray`` on a local Ray cluster that these tests start once, on loopback only: four clips, one
corrupt → three outputs byte-identical to ``ovdet detect`` and one recorded failure; a re-run skips the three; the
Parquet dataset holds exactly the JSONL's detections; a worker killed mid-source has its source run again.

Floating-point sums depend on how many threads share them, so "identical" compares like with like: Ray gives each
one-CPU actor one thread (``OMP_NUM_THREADS=1``), and the single-machine references here run on one thread too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from ovdet.cluster.lock import LOCK_NAME
from tests import network_guard
from tests.hostile.harness import assert_clean_stderr, assert_no_temporaries, assert_valid_output, run_cli, unchanged
from tests.media import small_frames, write_clip

CLASSES = "bottle,person"
# Ray's dashboard asks the cloud-metadata addresses which cloud it runs on, whatever its settings; the guard blocks
# them. Anything else a Ray process tries fails the module.
RAY_OWN_PROBES = ("'169.254.169.254'", "'metadata.google.internal'")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A two-CPU Ray cluster bound to 127.0.0.1, started once; its processes log network attempts to a file."""
    attempts = tmp_path_factory.mktemp("ray-network") / "attempts.log"
    settings = {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # one machine: every Ray process binds and announces loopback
        network_guard.LOG_VARIABLE: str(attempts),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        import ray

        ray.init(
            num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", object_store_memory=200 << 20,
            log_to_driver=False, logging_level="ERROR",
        )  # fmt: skip
    try:
        assert ray.util.get_node_ip_address() == "127.0.0.1"
        yield attempts
    finally:
        ray.shutdown()
    seen = attempts.read_text().splitlines() if attempts.is_file() else []
    others = [line for line in seen if not any(probe in line for probe in RAY_OWN_PROBES)]
    assert not others, f"network access outside loopback from the Ray cluster: {others}"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four short clips in two folders; the last is corrupt (a video header, then zeros)."""
    root = tmp_path_factory.mktemp("archive")
    frames = small_frames(6)
    for folder in ("ward-a", "ward-b"):
        (root / folder).mkdir()
    made = [
        write_clip(root / "ward-a" / "bed1.mp4", frames[:3]),
        write_clip(root / "ward-a" / "bed2.mp4", frames[3:]),
        write_clip(root / "ward-b" / "bed1.mp4", frames[1:4]),
    ]
    corrupt = root / "ward-b" / "bed2.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(4000))
    return [*made, corrupt]


@pytest.fixture(autouse=True)
def shared_embeddings(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVDET_CACHE_DIR", str(session_cache))


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _settings(model_path: Path) -> list:
    return ["--classes", CLASSES, "--model", model_path, "--imgsz", 160, "--conf", 0.01, "--device", "cpu"]


def test_four_clips_on_ray_match_single_machine_runs_and_a_rerun_skips_them(
    ray_cluster, clips, model_path, tmp_path, capfd
) -> None:
    out = tmp_path / "out"
    job = ["batch", *clips, *_settings(model_path), "--output-dir", out, "--ray", "--workers", 2]
    archive = clips[0].parents[1]
    with unchanged(archive):
        first = run_cli(job, capfd)
    lines = assert_clean_stderr(first, 1)
    assert lines[-1].startswith("ovdet: error: 1 of 4 source(s) failed") and "ward-b/bed2.mp4" in lines[-1]
    workers = [line for line in first.out.splitlines() if line.strip().startswith("worker ")]
    assert len(workers) == 2 and all("frames/s" in line for line in workers)

    sources = json.loads((out / "manifest.json").read_text())["sources"]
    assert [sources[str(clip)]["status"] for clip in clips] == ["done", "done", "done", "failed"]
    assert "could not be opened" in sources[str(clips[3])]["error"]

    rows = 0
    for clip in clips[:3]:
        mirrored = out / clip.relative_to(archive)
        single = tmp_path / "single.jsonl"
        with torch_threads(1):
            detect = run_cli(["detect", clip, *_settings(model_path), "--output", single, "--quiet"], capfd)
        assert_clean_stderr(detect)
        assert Path(f"{mirrored}.jsonl").read_bytes() == single.read_bytes(), clip
        assert_valid_output(Path(f"{mirrored}.jsonl"))
        rows += sum(len(json.loads(line)["detections"]) for line in single.read_text().splitlines())
    table = ds.dataset(out / "detections", format="parquet").to_table()
    assert rows > 0 and table.num_rows == rows
    assert_no_temporaries(out)

    # The manifest and the output folder's lock (it names the run holding it) are the run's bookkeeping.
    bookkeeping = ("manifest.json", LOCK_NAME)
    outputs = sorted(path for path in out.rglob("*") if path.is_file() and path.name not in bookkeeping)
    stamps = {path: os.stat(path).st_mtime_ns for path in outputs}
    again = run_cli(job, capfd)
    assert_clean_stderr(again, 1)
    assert "3 already done, 1 failed" in again.out
    assert {path: os.stat(path).st_mtime_ns for path in outputs} == stamps


def test_a_source_whose_worker_dies_runs_again_on_a_fresh_worker(ray_cluster, detector, tmp_path) -> None:
    import signal
    import threading
    import time

    from ovdet.cluster.plan import plan_tasks
    from ovdet.cluster.pools import RayPool
    from ovdet.cluster.worker import SourceWorker, WorkerSpec
    from ovdet.core.config import InferenceSettings

    clip = write_clip(tmp_path / "long.mp4", small_frames(30) * 2)
    spec = WorkerSpec(str(detector.model_path), "cpu", "torch", InferenceSettings(imgsz=160, conf=0.01),
                      detector.embeddings)  # fmt: skip
    [task] = plan_tasks([str(clip)], tmp_path / "ray-out", ["jsonl"])
    [reference] = plan_tasks([str(clip)], tmp_path / "here", ["jsonl"])
    with torch_threads(1):
        assert SourceWorker(spec, detector=detector).process(reference).status == "done"

    pool = RayPool(spec, threading.Event(), "local", workers=1, cpus=1, gpus=0)
    first_pid = int(pool.workers[0].split(" ")[0].split(":")[1])
    partial = Path(task.outputs["jsonl"])

    def kill_mid_source() -> None:
        while not (partial.exists() and partial.read_bytes().count(b"\n") >= 2):
            time.sleep(0.02)
        os.kill(first_pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_mid_source, daemon=True)
    killer.start()
    try:
        [(result, attempts)] = list(pool.results([task]))
    finally:
        pool.close()
    killer.join(timeout=5)
    assert (result.status, attempts) == ("done", 2)
    assert int(result.worker.split(":")[1]) != first_pid
    assert partial.read_bytes() == Path(reference.outputs["jsonl"]).read_bytes()
    assert Path(task.parquet).is_file()


def test_workers_larger_than_this_machine_are_refused_in_one_line(ray_cluster, clips, model_path, tmp_path, capfd):
    job = ["batch", clips[0], *_settings(model_path), "--output-dir", tmp_path / "out", "--ray", "--gpus-per-worker", 1]
    result = run_cli(job, capfd)
    lines = assert_clean_stderr(result, 1)
    assert len(lines) == 1 and lines[0].startswith("ovdet: error: each worker asks for 1 CPU(s) and 1 GPU(s)")
    assert "--gpus-per-worker" in lines[0]
