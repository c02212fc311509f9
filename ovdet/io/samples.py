"""The sample images Ultralytics ships inside its package (``ultralytics/assets``: a bus, a football coach), found
without importing Ultralytics or torch, for a first run that needs no files of one's own.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..core.errors import UsageError

__all__ = ["SAMPLE_CLASSES", "sample_images_folder"]

SAMPLE_CLASSES = "person,bus"  # what the sample images show


def sample_images_folder() -> Path:
    """The folder of Ultralytics' bundled sample images (``bus.jpg``, ``zidane.jpg``).

    Raises:
        UsageError: Ultralytics is not installed (an ONNX or OpenVINO deployment), so there is no sample.

    Example:
        >>> sample_images_folder().name  # doctest: +SKIP
        'assets'
    """
    spec = importlib.util.find_spec("ultralytics")  # locates the package without running its __init__
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        assets = Path(folder) / "assets"
        if any(assets.glob("*.jpg")):
            return assets
    raise UsageError(
        "no source given and Ultralytics' sample images are not installed: pass an image, folder, video or stream, "
        'e.g. ovdet detect photo.jpg --classes "person"'
    )
