"""The weights table's model families: the names and URLs Ultralytics 8.4.190 itself downloads, by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

from ovdet import WeightsError
from ovdet.core import weights

ULTRALYTICS_RELEASE = "https://github.com/ultralytics/assets/releases/download/v8.4.0"  # attempt_download_asset's


def _open_vocabulary_assets() -> set[str]:
    """Ultralytics' YOLO-World and YOLOE assets and its text encoders, prompt-free (-pf) checkpoints left out."""
    return {
        name
        for name in GITHUB_ASSETS_NAMES
        if ("-world" in name or name.startswith(("yoloe-", "mobileclip"))) and not name.endswith("-pf.pt")
    }


def test_the_table_holds_exactly_ultralytics_open_vocabulary_assets_at_its_release() -> None:
    rows = [spec for spec in weights.WEIGHTS.values() if spec.kind != "clip"]
    assert {Path(spec.filename).name for spec in rows} == _open_vocabulary_assets()
    for spec in rows:
        assert spec.url == f"{ULTRALYTICS_RELEASE}/{Path(spec.filename).name}"


@pytest.mark.parametrize(
    ("name", "kind", "space"),
    [
        ("yolov8s-world", "yolo-world", "clip:ViT-B/32"),
        ("yolov8x-worldv2", "yolo-world", "clip:ViT-B/32"),
        ("yoloe-v8l-seg", "yoloe", "mobileclip:blt"),
        ("yoloe-11s-seg", "yoloe", "mobileclip:blt"),
        ("yoloe-26n-seg", "yoloe", "mobileclip2:b"),
        ("mobileclip-blt", "mobileclip", "mobileclip:blt"),
        ("mobileclip2-b", "mobileclip", "mobileclip2:b"),
    ],
)
def test_each_family_has_its_kind_and_space(name: str, kind: str, space: str) -> None:
    spec = weights.lookup(name)
    assert (spec.kind, spec.space) == (kind, space)


def test_a_yoloe_name_resolves_like_yolo_world_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVDET_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / "yoloe-11s-seg.pt").write_bytes(b"checkpoint")
    assert weights.resolve_weights("yoloe-11s-seg") == tmp_path / "yoloe-11s-seg.pt"
    assert weights.resolve_weights("yoloe-11s-seg.pt") == tmp_path / "yoloe-11s-seg.pt"
    with pytest.raises(WeightsError, match=r"yoloe-26x-seg\.pt is not in .* download https://github\.com/.*/v8\.4\.0/"):
        weights.resolve_weights("yoloe-26x-seg")


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("yoloe-11s", "publishes 'yoloe-11s' only with masks: use --model yoloe-11s-seg"),
        ("yoloe-26n-seg-pf", "prompt-free YOLOE checkpoint, which ovdet does not run: use 'yoloe-26n-seg'"),
        ("yoloe-12s-seg", "unknown model 'yoloe-12s-seg'"),
    ],
)
def test_unpublished_names_say_what_to_use(name: str, says: str) -> None:
    with pytest.raises(WeightsError) as raised:
        weights.resolve_weights(name)
    assert says in str(raised.value) and "\n" not in str(raised.value)
