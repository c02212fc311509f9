"""``ovdet batch`` under hostile use: list files that name themselves or never end, manifests edited by hand, names
too long for the file system, sources renamed between runs, and two runs on one output folder.

Every refusal is one ``ovdet: error:`` line, before any work, with the inputs (and the manifest) left as they were.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovdet.cli import main
from ovdet.cluster.lock import LOCK_NAME, output_dir_lock
from ovdet.cluster.manifest import Manifest
from ovdet.cluster.plan import (
    MAX_LIST_BYTES,
    MAX_LIST_DEPTH,
    SourceTask,
    expand_sources,
    stamp,
)
from ovdet.core.errors import OutputError, UsageError
from tests.hostile.harness import (
    REPO,
    Result,
    assert_clean_stderr,
    assert_error,
    assert_valid_output,
    run_cli,
    unchanged,
)
from tests.media import small_frames, write_clip

SETTINGS = ["--classes", "bottle,person", "--imgsz", 160, "--conf", 0.01, "--device", "cpu"]


@pytest.fixture(autouse=True)
def shared_embeddings(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run here embeds the same two classes: CLIP loads once, not per run."""
    monkeypatch.setenv("OVDET_CACHE_DIR", str(session_cache))


@pytest.fixture
def stills(tmp_path: Path) -> Path:
    """An image folder of two frames."""
    folder = tmp_path / "stills"
    folder.mkdir()
    for index, frame in enumerate(small_frames(2)):
        cv2.imwrite(str(folder / f"frame-{index}.png"), frame)
    return folder


def _batch(sources: list, out: Path, model_path: Path, capfd, *extra) -> Result:
    return run_cli(["batch", *sources, *SETTINGS, "--model", model_path, "--output-dir", out, *extra], capfd)


# --- list files -------------------------------------------------------------------------------------------------


def _lists(folder: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Case → (sources on the command line, what the one error line mentions), for list files that cannot be used."""
    (folder / "self.txt").write_text(f"@{folder / 'self.txt'}\n")
    (folder / "a.txt").write_text(f"@{folder / 'b.txt'}\n")
    (folder / "b.txt").write_text(f"# back to a\n@{folder / 'a.txt'}\n")
    (folder / "x.txt").write_text(f"@{folder / 'y.txt'}\n")
    (folder / "y.txt").write_text(f"@{folder / 'z.txt'}\n")
    (folder / "z.txt").write_text(f"@{folder / 'x.txt'}\n")
    os.symlink(folder / "self.txt", folder / "link.txt")
    (folder / "sparse.txt").write_bytes(b"")
    os.truncate(folder / "sparse.txt", MAX_LIST_BYTES + 1)
    (folder / "nul.txt").write_bytes(b"video.mp4\x00.txt\n")
    (folder / "latin1.txt").write_bytes("caméra.mp4\n".encode("latin-1"))
    for depth in range(MAX_LIST_DEPTH + 2):
        (folder / f"deep-{depth}.txt").write_text(f"@{folder / f'deep-{depth + 1}.txt'}\n")
    return {
        "names-itself": ([f"@{folder / 'self.txt'}"], ["self.txt", "names itself"]),
        "cycle-of-two": ([f"@{folder / 'a.txt'}"], ["a.txt → ", "b.txt", "names itself"]),
        "cycle-of-three": ([f"@{folder / 'x.txt'}"], ["z.txt", "names itself"]),
        "itself-through-a-link": ([f"@{folder / 'link.txt'}"], ["names itself"]),
        "dev-zero": (["@/dev/zero"], ["/dev/zero", "MiB"]),
        "over-the-size-cap": ([f"@{folder / 'sparse.txt'}"], ["sparse.txt", "16 MiB"]),
        "nul-bytes": ([f"@{folder / 'nul.txt'}"], ["nul.txt", "NUL"]),
        "not-utf8": ([f"@{folder / 'latin1.txt'}"], ["latin1.txt", "could not be read"]),
        "a-folder": ([f"@{folder}"], [str(folder), "could not be read"]),
        "missing": ([f"@{folder / 'nowhere.txt'}"], ["nowhere.txt", "could not be read"]),
        "nested-too-deep": ([f"@{folder / 'deep-0.txt'}"], [f"at most {MAX_LIST_DEPTH}"]),
    }


LIST_CASES = [
    "names-itself", "cycle-of-two", "cycle-of-three", "itself-through-a-link", "dev-zero", "over-the-size-cap",
    "nul-bytes", "not-utf8", "a-folder", "missing", "nested-too-deep",
]  # fmt: skip


@pytest.mark.parametrize("case", LIST_CASES)
def test_a_list_file_that_cannot_be_used_is_one_line(case: str, model_path: Path, tmp_path: Path, capfd) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    sources, mentions = _lists(lists)[case]
    with unchanged(lists):
        result = _batch(sources, tmp_path / "out", model_path, capfd)
    assert_error(result, 2, *mentions)
    assert not list((tmp_path / "out").glob("*.jsonl"))


@st.composite
def _list_graphs(draw) -> list[list[int]]:
    """Up to 6 list files; each names some of the others (or itself) and a video."""
    count = draw(st.integers(1, 6))
    return [draw(st.lists(st.integers(0, count - 1), max_size=3)) for _ in range(count)]


def _reaches_a_cycle(graph: list[list[int]], start: int) -> bool:
    def visit(node: int, path: tuple[int, ...]) -> bool:
        return node in path or any(visit(child, (*path, node)) for child in graph[node])

    return visit(start, ())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=_list_graphs())
def test_any_graph_of_list_files_expands_or_names_the_cycle(graph: list[list[int]], tmp_path: Path) -> None:
    folder = tmp_path / f"graph-{abs(hash(str(graph)))}"
    folder.mkdir(exist_ok=True)
    video = folder / "v.mp4"
    video.write_bytes(b"")
    for index, children in enumerate(graph):
        lines = [f"@{folder / f'{child}.txt'}" for child in children] + [str(video)]
        (folder / f"{index}.txt").write_text("\n".join(lines) + "\n")
    if _reaches_a_cycle(graph, 0):
        with pytest.raises(UsageError, match="names itself"):
            expand_sources([f"@{folder / '0.txt'}"])
    else:
        assert expand_sources([f"@{folder / '0.txt'}"]) == [str(video)]


# --- the manifest, edited by hand -------------------------------------------------------------------------------

WRONG_MANIFESTS = {
    "a-list": [],
    "a-number": 7,
    "null": None,
    "a-string": "done",
    "no-settings": {"sources": {}},
    "settings-a-list": {"settings": [], "sources": {}},
    "sources-a-list": {"settings": {}, "sources": ["a.mp4"]},
    "sources-a-string": {"settings": {}, "sources": "a.mp4"},
    "record-a-list": {"settings": {}, "sources": {"a.mp4": ["done"]}},
    "record-without-status": {"settings": {}, "sources": {"a.mp4": {"outputs": []}}},
    "status-a-number": {"settings": {}, "sources": {"a.mp4": {"status": 1}}},
    "status-a-list": {"settings": {}, "sources": {"a.mp4": {"status": ["done"]}}},
    "outputs-a-string": {"settings": {}, "sources": {"a.mp4": {"status": "done", "outputs": "a.jsonl"}}},
    "outputs-of-numbers": {"settings": {}, "sources": {"a.mp4": {"status": "done", "outputs": [1, 2]}}},
    "sha256-a-dict": {"settings": {}, "sources": {"a.mp4": {"status": "done", "sha256": {}}}},
}


@pytest.fixture(scope="module")
def run_settings(tmp_path_factory: pytest.TempPathFactory, model_path: Path, session_cache: Path) -> dict:
    """The settings a real run of :data:`SETTINGS` records: a hand-edited manifest keeps them."""
    folder = tmp_path_factory.mktemp("settings")
    cv2.imwrite(str(folder / "frame.png"), small_frames(1)[0])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVDET_CACHE_DIR", str(session_cache))
        args = ["batch", folder, *SETTINGS, "--model", model_path, "--output-dir", folder / "out", "--quiet"]
        assert main([str(arg) for arg in args]) == 0
    return json.loads((folder / "out" / "manifest.json").read_text())["settings"]


@pytest.mark.parametrize("case", sorted(WRONG_MANIFESTS))
def test_a_manifest_of_the_wrong_shape_is_one_line(case: str, stills: Path, model_path, run_settings, tmp_path, capfd):
    out = tmp_path / "out"
    out.mkdir()
    stored = WRONG_MANIFESTS[case]
    if isinstance(stored, dict) and stored.get("settings") == {}:
        stored = {**stored, "settings": run_settings}  # only the shape is wrong, not the settings
    (out / "manifest.json").write_text(json.dumps(stored))
    with unchanged(out / "manifest.json", stills):
        result = _batch([stills], out, model_path, capfd)
    assert_error(result, 2, str(out / "manifest.json"), "delete it", "--output-dir")


@pytest.mark.parametrize(
    "content", [b"", b"{", b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000, b'{"settings": {}, "sources": {}'],
    ids=["empty", "cut-short", "not-utf8", "nested-100000-deep", "unclosed"],
)  # fmt: skip
def test_a_manifest_that_is_not_json_is_one_line(content: bytes, stills: Path, model_path, tmp_path, capfd) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_bytes(content)
    with unchanged(out / "manifest.json", stills):
        result = _batch([stills], out, model_path, capfd)
    assert_error(result, 2, str(out / "manifest.json"), "delete it")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
_RECORDS = st.dictionaries(st.sampled_from(["status", "outputs", "sha256", "stamp", "error", "frames"]), _JSON)
_MANIFESTS = _JSON | st.fixed_dictionaries(
    {"settings": _JSON | st.just({}), "sources": _JSON | st.dictionaries(st.just("/in/a.mp4"), _JSON | _RECORDS)}
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=_MANIFESTS)
def test_any_json_manifest_opens_or_is_refused_in_one_usage_error(stored, tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(stored))
    try:
        manifest = Manifest.open(tmp_path, {}, overwrite=False)
    except UsageError as exc:
        assert str(tmp_path) in str(exc) and "--output-dir" in str(exc) and "\n" not in str(exc)
        return
    manifest.is_done(SourceTask("/in/a.mp4", {"jsonl": str(tmp_path / "a.mp4.jsonl")}, str(tmp_path / "a.pq")))
    manifest.counts()
    manifest.save()
    assert json.loads((tmp_path / "manifest.json").read_text())["sources"] == manifest.sources


# --- sources renamed between runs -------------------------------------------------------------------------------


def _sources_in(jsonl: Path) -> set[str]:
    return {json.loads(line)["source"] for line in jsonl.read_text().splitlines()}


def test_an_image_renamed_between_runs_is_processed_again(stills: Path, model_path, tmp_path, capfd) -> None:
    out = tmp_path / "out"
    assert_clean_stderr(_batch([stills], out, model_path, capfd, "--quiet"))
    os.rename(stills / "frame-1.png", stills / "renamed.png")  # mv keeps the size and the times
    again = _batch([stills], out, model_path, capfd)
    assert_clean_stderr(again)
    assert "0 already done" in again.out
    names = {Path(source).name for source in _sources_in(out / "stills.jsonl")}
    assert names == {"frame-0.png", "renamed.png"}


CHANGES = {
    "renamed": lambda folder: os.rename(folder / "frame-1.png", folder / "other.png"),
    "swapped-names": lambda folder: [
        os.rename(folder / a, folder / b)
        for a, b in (("frame-0.png", "t.png"), ("frame-1.png", "frame-0.png"), ("t.png", "frame-1.png"))
    ],
    "removed": lambda folder: (folder / "frame-1.png").unlink(),
    "added": lambda folder: (folder / "frame-2.png").write_bytes((folder / "frame-0.png").read_bytes()),
    "rewritten": lambda folder: (folder / "frame-0.png").write_bytes((folder / "frame-1.png").read_bytes()),
    "renamed-to-a-non-image": lambda folder: os.rename(folder / "frame-1.png", folder / "frame-1.png.bak"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_image_folder_has_another_stamp(change: str, stills: Path) -> None:
    sizes = {path.name: path.stat().st_size for path in stills.iterdir()}
    if change == "swapped-names" and len(set(sizes.values())) == 1:
        pytest.skip("the frames have one size: swapping names changes nothing a stamp could see")
    before = stamp(str(stills))
    CHANGES[change](stills)
    assert stamp(str(stills)) != before


def test_a_folder_touched_but_unchanged_keeps_its_stamp(stills: Path) -> None:
    before = stamp(str(stills))
    os.utime(stills)  # the folder's own time, not its images'
    assert stamp(str(stills)) == before


# --- one output folder, one run ---------------------------------------------------------------------------------


def test_a_second_lock_on_one_folder_is_refused_and_released_after(tmp_path: Path) -> None:
    busy = rf"in use by another ovdet batch run \(pid {os.getpid()}\)"
    with output_dir_lock(tmp_path), pytest.raises(UsageError, match=busy), output_dir_lock(tmp_path):
        pass
    with output_dir_lock(tmp_path):  # released on leaving
        pass


def test_a_lock_file_left_by_a_dead_run_does_not_block(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_NAME).write_text(dead.stdout)
    with output_dir_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_an_output_folder_that_cannot_hold_a_lock_is_one_line(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).mkdir()
    with pytest.raises(OutputError, match="lock file"), output_dir_lock(tmp_path):
        pass


def _start_batch(source: Path, out: Path, model_path: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "ovdet", "batch", source, *map(str, SETTINGS), "--model", model_path,
             "--output-dir", out, "--quiet"],
            stdout=subprocess.DEVNULL, stderr=handle, cwd=REPO,
        )  # fmt: skip


def _wait_for_lines(process: subprocess.Popen, jsonl: Path, log: Path, lines: int = 2) -> None:
    deadline = time.monotonic() + 240
    while not (jsonl.exists() and jsonl.read_bytes().count(b"\n") >= lines):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def _stop(process: subprocess.Popen, sig: int) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout=120)


def test_a_second_run_on_a_busy_output_folder_is_refused_naming_the_first(model_path, tmp_path: Path) -> None:
    long = write_clip(tmp_path / "long.mp4", small_frames(40) * 8)
    out = tmp_path / "out"
    first = _start_batch(long, out, model_path, tmp_path / "first.txt")
    try:
        _wait_for_lines(first, out / "long.mp4.jsonl", tmp_path / "first.txt")
        second = _start_batch(long, out, model_path, tmp_path / "second.txt")
        code = second.wait(timeout=120)
        result = Result(code, "", (tmp_path / "second.txt").read_text())
        assert_error(result, 2, f"--output-dir {out}", "in use by another ovdet batch run", f"pid {first.pid}")
    finally:
        first_code = _stop(first, signal.SIGINT)
    assert_clean_stderr(Result(first_code, "", (tmp_path / "first.txt").read_text()), 130)
    assert_valid_output(out / "long.mp4.jsonl")
    frames = [json.loads(line)["frame"] for line in (out / "long.mp4.jsonl").read_text().splitlines()]
    assert frames == list(range(len(frames))), "one run's frames, each once, in order"


def test_a_run_killed_outright_does_not_block_the_next(model_path, tmp_path: Path, capfd) -> None:
    long = write_clip(tmp_path / "long.mp4", small_frames(40) * 8)
    short = write_clip(tmp_path / "short.mp4", small_frames(2))
    out = tmp_path / "out"
    killed = _start_batch(long, out, model_path, tmp_path / "killed.txt")
    try:
        _wait_for_lines(killed, out / "long.mp4.jsonl", tmp_path / "killed.txt")
    finally:
        assert _stop(killed, signal.SIGKILL) == -signal.SIGKILL
    assert (out / LOCK_NAME).read_text().strip() == str(killed.pid)
    assert_clean_stderr(_batch([short], out, model_path, capfd, "--quiet"))
    assert_valid_output(out / "short.mp4.jsonl")
