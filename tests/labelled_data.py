"""A small labelled dataset the tests make themselves: crops of a real bottle and a real person pasted at known
boxes onto views of the empty room at the start of the people clip (tests/data), written in COCO and in YOLO format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tests.conftest import BOTTLES, PEOPLE, read_frames

CLASSES = ("bottle", "person")
FRAME_SIZE = (320, 180)  # width, height
BACKGROUND_SCALE = (480, 270)  # the empty room, resized; each image is a window of it
# A bottle in the first frame of the bottle clip, the person in frame 150 of the people clip (x1, y1, x2, y2).
BOTTLE_REGION = (284, 105, 348, 318)
PERSON_REGION = (400, 30, 550, 400)
PERSON_FRAME = 150


@dataclass(frozen=True)
class LabelledSet:
    """Images with their boxes: per image a file name, BGR pixels and ``(class index, x, y, width, height)`` boxes."""

    names: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    boxes: tuple[tuple[tuple[int, float, float, float, float], ...], ...]

    @property
    def objects(self) -> int:
        return sum(len(boxes) for boxes in self.boxes)


def make_labelled_set(count: int = 8, seed: int = 0) -> LabelledSet:
    """``count`` views of the empty room with 1 to 3 pasted objects each, the last view with none."""
    rng = np.random.default_rng(seed)
    people_frames = read_frames(PEOPLE, PERSON_FRAME + 1)
    objects = (_crop(read_frames(BOTTLES, 1)[0], BOTTLE_REGION), _crop(people_frames[PERSON_FRAME], PERSON_REGION))
    room = cv2.resize(people_frames[0], BACKGROUND_SCALE)
    images, boxes = [], []
    for index in range(count):
        image = _window(room, rng)
        boxes.append(_paste_objects(image, objects, rng, 0 if index == count - 1 else int(rng.integers(1, 4))))
        images.append(image)
    names = tuple(f"frame_{index:02d}.jpg" for index in range(count))
    return LabelledSet(names, tuple(images), tuple(boxes))


def _window(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    width, height = FRAME_SIZE
    x, y = int(rng.integers(0, image.shape[1] - width)), int(rng.integers(0, image.shape[0] - height))
    return image[y : y + height, x : x + width].copy()


def _crop(frame: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    x1, y1, x2, y2 = region
    return frame[y1:y2, x1:x2].copy()


def _paste_objects(
    canvas: np.ndarray, objects: tuple[np.ndarray, ...], rng: np.random.Generator, count: int
) -> tuple[tuple[int, float, float, float, float], ...]:
    """Paste ``count`` objects side by side at random heights and sizes; returns their boxes."""
    width, height = FRAME_SIZE
    boxes = []
    slot = width // 3
    for position in range(count):
        class_index = int(rng.integers(0, len(objects)))
        source = objects[class_index]
        box_height = int(rng.integers(60, height - 20))
        box_width = min(slot - 8, max(12, round(source.shape[1] * box_height / source.shape[0])))
        x = position * slot + int(rng.integers(0, slot - box_width))
        y = int(rng.integers(0, height - box_height))
        canvas[y : y + box_height, x : x + box_width] = cv2.resize(source, (box_width, box_height))
        boxes.append((class_index, float(x), float(y), float(box_width), float(box_height)))
    return tuple(boxes)


def write_images(labelled: LabelledSet, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in zip(labelled.names, labelled.images):
        cv2.imwrite(str(folder / name), image)
    return folder


def coco_ground_truth(labelled: LabelledSet, prefix: str = "images/") -> dict:
    """The COCO dictionary of the set: image ids and category ids from 1, in order."""
    width, height = FRAME_SIZE
    images = [
        {"id": i, "file_name": prefix + name, "width": width, "height": height}
        for i, name in enumerate(labelled.names, start=1)
    ]
    annotations = []
    for image_id, boxes in enumerate(labelled.boxes, start=1):
        for class_index, x, y, w, h in boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": class_index + 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i, "name": name} for i, name in enumerate(CLASSES, start=1)]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_coco(labelled: LabelledSet, folder: Path) -> Path:
    """``folder/images/*.jpg`` and ``folder/annotations.json`` (``file_name`` relative to the json)."""
    write_images(labelled, folder / "images")
    path = folder / "annotations.json"
    path.write_text(json.dumps(coco_ground_truth(labelled)))
    return path


def write_yolo(labelled: LabelledSet, folder: Path) -> Path:
    """``folder/images/*.jpg``, ``folder/labels/*.txt`` (normalised centre and size) and ``folder/data.yaml``."""
    write_images(labelled, folder / "images")
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    width, height = FRAME_SIZE
    for name, boxes in zip(labelled.names, labelled.boxes):
        if not boxes:
            continue  # YOLO's convention for an image without objects: no label file
        lines = [
            f"{c} {(x + w / 2) / width!r} {(y + h / 2) / height!r} {w / width!r} {h / height!r}"
            for c, x, y, w, h in boxes
        ]
        (folder / "labels" / name).with_suffix(".txt").write_text("\n".join(lines) + "\n")
    (folder / "data.yaml").write_text("names:\n" + "".join(f"  {i}: {name}\n" for i, name in enumerate(CLASSES)))
    return folder
