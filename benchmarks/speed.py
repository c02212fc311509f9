"""ovdet's speed against Ultralytics, side by side in one run, with sweeps over vocabulary, input size and batch.

Parts (``--only``, comma-separated; default all):

- ``compare``: Ultralytics PyTorch and OpenVINO (its default precision and FP32) and ovdet on each runtime, end
  to end on the same clip, weights and classes, taking turns round after round; frames/s, ms per stage, p50/p95
  latency, peak RSS (each configuration runs in its own process), achieved GFLOP/s against this machine's GEMM
  peak in the same precision, ovdet's overhead over the runtime's forward, and precision agreement.
- ``vocab``, ``imgsz``, ``batch`` (or ``sweeps`` for all three): frames/s of one configuration (``--sweep-config``)
  for K classes (with cold and warm ``set_classes``), input sizes and batch sizes.
- ``memory``: RSS of one process streaming ``--memory-frames`` frames (the clip looped) at 100 frames and at the end.
- ``models``: the model as a dimension: ``--models`` (default yolov8s-worldv2, yoloe-11s, yoloe-26s) side by side
  on ``--model-runtimes`` (default openvino, torch), same clip, imgsz and classes (see ``benchmarks/families.py``).
  ``python benchmarks/speed.py --only models --imgsz 640 --name speed-models``

Writes ``benchmarks/results/<name>.json``, ``<name>.md`` and ``<name>_fps_vs_{k,imgsz,batch}.png``; prints the
tables. The full default run took 22 minutes on a 2-core CPU (load average about 3); a quick check:

    python benchmarks/speed.py --frames 40 --rounds 2 --sweep-frames 16 --memory-frames 200 --name speed-quick
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import harness
from benchmarks.common import RESULTS, SHARED_DATA, ensure_weights, machine, save, use_weights
from benchmarks.configs import default_configs
from benchmarks.families import compare_models, model_file, models_table
from benchmarks.model_files import ModelFiles
from benchmarks.tables import agreement_table, comparison_table, sweep_table
from ovdet.bench import RunConfig

PARTS = ("compare", "vocab", "imgsz", "batch", "memory", "models")
ALIASES = {"baseline": ("compare",), "sweeps": ("vocab", "imgsz", "batch"), "all": PARTS}
PACKAGES = ("ultralytics", "torch", "openvino", "onnxruntime", "open-clip-torch", "supervision", "numpy")
TARGETS = (
    "ovdet default CPU path ≥ 4× Ultralytics PyTorch frames/s and ≥ 1.25× Ultralytics OpenVINO at the same "
    "precision; overhead ≤ 10%; warm set_classes(80) ≤ 5 ms; RSS at 2000 frames within 50 MB of RSS at 100"
)


def main() -> None:
    args = _parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    use_weights(ensure_weights(args.weights))
    # Embeddings and the graphs ovdet converts the .pt into are cached across runs, as on a user's machine.
    os.environ.setdefault("OVDET_CACHE_DIR", str(Path(tempfile.gettempdir()) / "ovdet-bench-cache"))
    configs = _chosen_configs(args.configs)
    sweep_config = _sweep_config(configs, args.sweep_config)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ovdet-speed-") as scratch:
        files = ModelFiles(Path(os.environ["OVDET_WEIGHTS_DIR"]) / "yolov8s-worldv2.pt", args.exports or scratch,
                           imgsz=args.imgsz, calibration=args.calibration or args.clip,
                           calibration_frames=args.calibration_frames)  # fmt: skip
        results = _run_parts(args, configs, sweep_config, files)
    payload = {
        "machine": {**machine(), **_versions(), "ram_gb": _ram_gb(), "load_average_end": list(os.getloadavg())},
        "settings": {key: str(value) for key, value in vars(args).items()},
        "sweep_config": sweep_config.label,
        "minutes": (time.perf_counter() - started) / 60,
        "results": results,
    }
    markdown = _markdown(payload, args)
    print(markdown)
    print(f"saved {save(args.name, payload)}")
    (RESULTS / f"{args.name}.md").write_text(markdown + "\n")
    for path in _plots(results, args.name, f"{sweep_config.label}, {args.clip.name}"):
        print(f"saved {path}")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=SHARED_DATA / "bottle-detection.mp4")
    parser.add_argument("--weights", type=Path, help="weights folder (default: random-init test weights)")
    parser.add_argument("--only", default="all", help=f"parts: {', '.join(PARTS)}, sweeps, baseline, all")
    parser.add_argument("--frames", type=int, default=150, help="timed frames per configuration in compare")
    parser.add_argument("--rounds", type=int, default=3, help="turns each configuration takes in compare")
    parser.add_argument("--sweep-frames", type=int, default=48, help="timed frames per sweep point")
    parser.add_argument("--sweep-rounds", type=int, default=2, help="turns each sweep point takes")
    parser.add_argument("--memory-frames", type=int, default=2000, help="frames of the long run")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--calibration", type=Path, help="INT8 calibration clip of both engines (default: --clip)")
    parser.add_argument("--calibration-frames", type=int, default=32, help="frames spread over the calibration clip")
    parser.add_argument("--classes", default="bottle,person,red backpack")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--max-classes", type=int, default=80, help="class slots of ovdet's changeable exports")
    parser.add_argument("--agreement-frames", type=int, default=20, help="frames compared for precision agreement")
    parser.add_argument("--agreement-conf", default="0.25,0.05", help="confidence thresholds of the agreement")
    parser.add_argument("--configs", help="comma-separated labels of the configurations to compare (default all)")
    parser.add_argument("--sweep-config", help="label of the configuration the sweeps and long run measure")
    parser.add_argument("--k-sizes", default="1,10,80,365,1203")
    parser.add_argument("--imgsz-sizes", default="320,480,640,960,1280")
    parser.add_argument("--batch-sizes", default="1,2,4,8,16")
    parser.add_argument("--exports", type=Path, help="folder for the exports (default: a temporary folder)")
    parser.add_argument("--name", default="speed", help="result file names: benchmarks/results/<name>.*")
    parser.add_argument("--models", default="yolov8s-worldv2,yoloe-11s,yoloe-26s", help="models of the models part")
    parser.add_argument("--model-runtimes", default="openvino,torch", help="runtimes of the models part")
    args = parser.parse_args()
    args.parts = _parts(parser, args.only)
    return args


def _parts(parser: argparse.ArgumentParser, only: str) -> tuple[str, ...]:
    parts: list[str] = []
    for name in (word.strip() for word in only.split(",") if word.strip()):
        if name not in PARTS and name not in ALIASES:
            parser.error(f"--only {name}: choose from {', '.join((*PARTS, *ALIASES))}")
        parts += ALIASES.get(name, (name,))
    return tuple(part for part in PARTS if part in parts)


def _numbers(text: str, kind: type = int) -> list[Any]:
    return [kind(word) for word in text.split(",") if word.strip()]


def _chosen_configs(labels: str | None) -> list[RunConfig]:
    configs = default_configs()
    if labels is None:
        return configs
    wanted = [label.strip() for label in labels.split(",")]
    unknown = sorted(set(wanted) - {config.label for config in configs})
    if unknown:
        raise SystemExit(f"unknown configuration(s) {', '.join(unknown)}; known: "
                         f"{', '.join(config.label for config in configs)}")  # fmt: skip
    return [config for config in configs if config.label in wanted]


def _sweep_config(configs: list[RunConfig], label: str | None) -> RunConfig:
    """The named configuration; by default ``ovdet default`` where it exists, else ovdet's OpenVINO reduced."""
    known = {config.label: config for config in default_configs()}
    label = label or ("ovdet default" if "ovdet default" in known else "ovdet openvino reduced")
    if label not in known or known[label].engine != "ovdet":
        raise SystemExit(f"--sweep-config {label}: choose an ovdet configuration: "
                         f"{', '.join(key for key, c in known.items() if c.engine == 'ovdet')}")  # fmt: skip
    return known[label]


def _run_parts(args: argparse.Namespace, configs: list[RunConfig], sweep: RunConfig, files: ModelFiles) -> dict:
    classes = [name.strip() for name in args.classes.split(",")]
    results: dict[str, Any] = {}
    if "compare" in args.parts:
        results["compare"] = harness.compare(
            configs, files, args.clip, classes, frames=args.frames, rounds=args.rounds, imgsz=args.imgsz,
            conf=args.conf, max_classes=args.max_classes, agreement_frames=args.agreement_frames,
            agreement_confs=_numbers(args.agreement_conf, float),
        )  # fmt: skip
    common = {"frames": args.sweep_frames, "rounds": args.sweep_rounds}
    if "vocab" in args.parts:
        results["vocab"] = harness.sweep_vocabulary(
            sweep, files, args.clip, _numbers(args.k_sizes), imgsz=args.imgsz, **common
        )
    if "imgsz" in args.parts:
        results["imgsz"] = harness.sweep_imgsz(
            sweep, files, args.clip, classes, _numbers(args.imgsz_sizes), max_classes=args.max_classes, **common
        )
    if "batch" in args.parts:
        results["batch"] = harness.sweep_batch(
            sweep, files, args.clip, classes, _numbers(args.batch_sizes), imgsz=args.imgsz,
            max_classes=args.max_classes, **common,
        )  # fmt: skip
    if "memory" in args.parts:
        results["memory"] = harness.long_run_memory(
            sweep, files, args.clip, classes, frames=args.memory_frames, imgsz=args.imgsz, max_classes=args.max_classes
        )
    if "models" in args.parts:
        weights_dir = Path(os.environ["OVDET_WEIGHTS_DIR"])
        models = {name: model_file(name, weights_dir, Path(tempfile.gettempdir()) / "ovdet-bench-yoloe") for name in
                  (word.strip() for word in args.models.split(",") if word.strip())}  # fmt: skip
        results["models"] = compare_models(
            models, args.clip, classes, runtimes=[word.strip() for word in args.model_runtimes.split(",")],
            frames=args.frames, rounds=args.rounds, imgsz=args.imgsz, conf=args.conf,
        )  # fmt: skip
    return results


def _versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _ram_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def _markdown(payload: dict[str, Any], args: argparse.Namespace) -> str:
    results, info = payload["results"], payload["machine"]
    lines = [
        f"# ovdet speed ({info['date']})",
        "",
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gb']:.0f} GB RAM, no GPU in use; Python {info['python']}, "
        f"torch {info['torch']}, ultralytics {info['ultralytics']}, openvino {info['openvino']}, onnxruntime "
        f"{info['onnxruntime']}. Random-init yolov8s-worldv2 (runs exactly as fast as trained weights). "
        f"Clip {args.clip.name}; the run took {payload['minutes']:.1f} min.",
    ]
    if "compare" in results:
        lines += _compare_section(results["compare"], args)
    sections = (("vocab", "Vocabulary size K", _VOCAB_COLUMNS), ("imgsz", "Input size", ()), ("batch", "Batch", ()))
    for part, title, extra in sections:
        if part in results:
            lines += _sweep_section(results[part], f"{title} ({payload['sweep_config']})", extra)
    if "memory" in results:
        lines += _memory_section(results["memory"])
    if "models" in results:
        lines += ["", "## Models side by side", "", *models_table(results["models"])]
    lines += ["", f"Targets: {TARGETS}."]
    return "\n".join(lines)


_VOCAB_COLUMNS = (("cold set_classes ms", "set_classes_first_ms"), ("warm set_classes ms", "set_classes_warm_ms"))


def _load(load: dict[str, list[float]]) -> str:
    return f"load average (1/5/15 min) {'/'.join(f'{v:.2f}' for v in load['before'])} before, " \
           f"{'/'.join(f'{v:.2f}' for v in load['after'])} after"  # fmt: skip


def _compare_section(compare: dict[str, Any], args: argparse.Namespace) -> list[str]:
    rows = compare["rows"]
    frames = next((row["frames"] for row in rows if "frames" in row), 0)
    return [
        "",
        f"## End to end, side by side ({frames} frames each at imgsz {args.imgsz}, classes: {args.classes})",
        "",
        f"Configurations took turns over {args.rounds} rounds, each in its own process; "
        f"{_load(compare['load_average'])}. {_peaks(compare)}",
        "",
        comparison_table(rows),
        "",
        *_ratio_lines(rows),
        "",
        "Ultralytics rows: decode is the wall time minus Ultralytics' own preprocess/inference/postprocess timers; "
        "they write no output (ovdet rows write JSONL). Best turn: frames/s of the configuration's least disturbed "
        "turn. Overhead: the share of wall time outside the runtime's forward. Latency: ovdet, from a frame decoded to "
        "its output written (it decodes ahead, so frames wait in its queue); Ultralytics, the time to yield each "
        "result. PyTorch threads per row: "
        + ", ".join(f"{row['label']} {row.get('torch_threads')}" for row in rows if row.get("runtime") == "torch")
        + ".",
        "",
        "### Precision agreement (boxes matched at IoU ≥ 0.9 with the same class)",
        "",
        agreement_table(compare["agreement"]),
    ]


def _ratio_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Each ovdet row's frames/s over Ultralytics PyTorch and over Ultralytics OpenVINO at the same precision."""
    done = [row for row in rows if "error" not in row]
    baseline = next((row for row in done if row["label"] == "ultralytics torch"), None)
    openvino = {
        row["precision"]: row for row in done if row["engine"] == "ultralytics" and row["runtime"] == "openvino"
    }
    lines = ["| ovdet configuration | × Ultralytics PyTorch | × Ultralytics OpenVINO, same precision |",
             "| --- | --- | --- |"]  # fmt: skip
    for row in (row for row in done if row["engine"] == "ovdet"):
        versus_torch = f"{row['fps'] / baseline['fps']:.2f}" if baseline else "–"
        same = openvino.get(row["precision"])
        versus_openvino = f"{row['fps'] / same['fps']:.2f} ({same['precision']})" if same else "–"
        lines.append(f"| {row['label']} | {versus_torch} | {versus_openvino} |")
    return lines


def _sweep_section(sweep: dict[str, Any], title: str, extra: tuple) -> list[str]:
    table = sweep_table(sweep["rows"], extra)
    return ["", f"## {title}", "", f"{_load(sweep['load_average'])}. {_peaks(sweep)}", "", table]


def _peaks(report: dict[str, Any]) -> str:
    peaks = ", ".join(f"{name} {value:.0f}" for name, value in report["peak_gflops_per_s"].items())
    return (
        f"Machine peak in the same run (GFLOP/s; fastest PyTorch/NumPy/OpenVINO MatMul of 1024² and 2048², "
        f"measured before and after): {peaks}; % of peak is the end-to-end GFLOP/s over the peak of the row's "
        f"precision."
    )


def _memory_section(memory: dict[str, Any]) -> list[str]:
    lines = ["", f"## Long run ({memory['label']}, one process)", "", "| frames | RSS MB | peak RSS MB |",
             "| --- | --- | --- |"]  # fmt: skip
    lines += [f"| {s['frames']} | {s['rss_mb']:.0f} | {s['peak_rss_mb']:.0f} |" for s in memory["samples"]]
    lines += ["", f"RSS growth from the first sample to the last: {memory['growth_mb']:+.1f} MB "
                  f"(peak {memory['peak_growth_mb']:+.1f} MB); {memory['fps']:.1f} frames/s."]  # fmt: skip
    return lines


def _plots(results: dict[str, Any], name: str, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = (("vocab", "k", "classes", "vocabulary size K", True), ("imgsz", "imgsz", "imgsz", "input size", False),
             ("batch", "batch", "batch", "batch size", True))  # fmt: skip
    paths = []
    for part, suffix, key, xlabel, log_x in plots:
        rows = [row for row in results.get(part, {}).get("rows", []) if "error" not in row]
        if not rows:
            continue
        figure, axes = plt.subplots(figsize=(5, 3.5), layout="constrained")
        axes.plot([row[key] for row in rows], [row["fps"] for row in rows], marker="o")
        axes.set(xlabel=xlabel, ylabel="frames/s (end to end)", xscale="log" if log_x else "linear", ylim=(0, None),
                 title=title)  # fmt: skip
        axes.grid(alpha=0.3)
        paths.append(RESULTS / f"{name}_fps_vs_{suffix}.png")
        figure.savefig(paths[-1], dpi=120)
        plt.close(figure)
    return paths


if __name__ == "__main__":
    main()
