"""Class-aware against class-agnostic NMS on the shared clips: boxes per frame, cross-class duplicates (pairs of
boxes on the same spot, IoU ≥ 0.7, with different labels — what agnostic NMS removes), and time per frame.

    python benchmarks/nms.py --frames 60
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED_DATA, ensure_weights, machine, save, use_weights

CLIPS = {
    "bottle-detection.mp4": "bottle, plastic bottle, bottle cap, person",
    "one-by-one-person-detection.mp4": "person, man, woman, backpack, chair",
}
DUPLICATE_IOU = 0.7


def cross_class_duplicates(detections) -> int:
    """Pairs of boxes with different labels that overlap at IoU ≥ 0.7."""
    import supervision as sv

    if len(detections) < 2:
        return 0
    overlap = sv.box_iou_batch(detections.xyxy, detections.xyxy)
    different = detections.class_id[:, None] != detections.class_id[None, :]
    return int(np.triu((overlap >= DUPLICATE_IOU) & different, k=1).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="frames per clip")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--weights", type=Path, help="weights folder (default: random-init test weights)")
    args = parser.parse_args()
    use_weights(ensure_weights(args.weights))
    from ovdet import OpenVocabDetector
    from ovdet.io.sources import open_source
    from ovdet.prompts.vocabulary import parse_classes

    detector = OpenVocabDetector("yolov8s-worldv2", device="cpu")
    rows = []
    for clip, classes in CLIPS.items():
        detector.set_classes(parse_classes(classes))
        source = open_source(SHARED_DATA / clip, vid_stride=5)
        frames = [frame.image for frame, _ in zip(source, range(args.frames))]
        for agnostic in (False, True):
            started = time.perf_counter()
            results = [detector.detect(image, conf=args.conf, agnostic_nms=agnostic) for image in frames]
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "clip": clip,
                    "nms": "agnostic" if agnostic else "class-aware",
                    "precision": detector.backend.precision,
                    "boxes_per_frame": float(np.mean([len(r) for r in results])),
                    "cross_class_duplicates_per_frame": float(np.mean([cross_class_duplicates(r) for r in results])),
                    "ms_per_frame": seconds / len(frames) * 1000,
                }
            )
            row = rows[-1]
            print(f"{clip:34s} {row['nms']:12s} {row['boxes_per_frame']:7.1f} boxes/frame  "
                  f"{row['cross_class_duplicates_per_frame']:6.1f} cross-class duplicates/frame  "
                  f"{row['ms_per_frame']:6.1f} ms/frame")  # fmt: skip
    print(f"saved {save('nms', {'machine': machine(), 'conf': args.conf, 'rows': rows})}")


if __name__ == "__main__":
    main()
