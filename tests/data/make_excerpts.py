"""Write the excerpts of tests/data from the shared clips, then check every frame against them.

    python -m tests.data.make_excerpts [--shared ../shared/data]

A whole clip is copied byte for byte; an excerpt of pieces is remuxed with PyAV: the packets of each piece (whole
GOPs, each from a keyframe) are copied without re-encoding and their timestamps shifted so that the pieces follow
one another at the clip's frame rate. Each excerpt is then decoded with OpenCV, as the tests read it, and compared
with the same frames of the shared clip: they must be pixel-identical.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import av

from tests.footage import DATA, EXCERPTS, SHARED_DATA, SOURCE_FRAMES, Excerpt, frames_unlike_the_clip

LIMIT_BYTES = 2_000_000  # the footage in the repository, all files of tests/data together


def write(excerpt: Excerpt, shared: Path) -> None:
    source = shared / excerpt.source
    if excerpt.frames == tuple(range(SOURCE_FRAMES[excerpt.source])):
        shutil.copyfile(source, excerpt.path)
    else:
        remux(source, excerpt.path, excerpt.pieces)


def remux(source: Path, target: Path, pieces: tuple[range, ...]) -> None:
    """Copy the packets of ``pieces`` (display indices, whole GOPs) from ``source`` into ``target``."""
    with av.open(str(source)) as reader:
        stream = reader.streams.video[0]
        packets = [packet for packet in reader.demux(stream) if packet.size]
        order = {pts: index for index, pts in enumerate(sorted(packet.pts for packet in packets))}
        step = (max(order) - min(order)) // (len(order) - 1)  # the frame duration, in the stream's time base
        with av.open(str(target), mode="w") as writer:
            output = writer.add_stream_from_template(stream)
            shown = 0
            for piece in pieces:
                chosen = [packet for packet in packets if order[packet.pts] in piece]
                first = min(chosen, key=lambda packet: packet.pts)
                if not (chosen[0] is first and first.is_keyframe and len(chosen) == len(piece)):
                    raise SystemExit(f"{target.name}: piece {piece} is not a whole GOP from a keyframe")
                shift = min(order) + shown * step - first.pts
                for packet in chosen:
                    packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                    packet.stream = output
                    writer.mux(packet)
                shown += len(piece)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED_DATA, help="the folder of the full clips")
    shared = parser.parse_args().shared
    for excerpt in EXCERPTS:
        write(excerpt, shared)
        unlike = frames_unlike_the_clip(excerpt, shared / excerpt.source)
        if unlike:
            raise SystemExit(f"{excerpt.name}: frames {unlike} differ from {excerpt.source} (-1: extra frames)")
        print(f"{excerpt.name}: {len(excerpt.frames)} frames, {excerpt.path.stat().st_size} bytes")
    total = sum(path.stat().st_size for path in DATA.iterdir() if path.is_file())
    print(f"tests/data: {total} bytes in all (limit {LIMIT_BYTES})")
    return 0 if total <= LIMIT_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
