"""Source frame numbers for decoded video, from presentation timestamps: gaps stay gaps."""

from __future__ import annotations

from fractions import Fraction

__all__ = ["SourceIndex", "describe", "spans_of"]


class SourceIndex:
    """Numbers a video's frames as they were in the source, from their presentation timestamps (pts).

    While every timestamp lies on the grid of the stream's frame rate (constant frame rate), a frame's number is
    ``round((pts - start_pts) * time_base * fps)``: frames lost to damage leave a gap, listed in ``gaps``. From
    the first timestamp off that grid on (variable frame rate), frames are numbered on from the last number in
    decoding order: there, a frame lost to damage cannot be told from a frame shown for longer.

    Example:
        >>> numbering = SourceIndex(Fraction(25), Fraction(1, 1000), 0)
        >>> [numbering.next(pts) for pts in (0, 40, 200, 240)], numbering.gaps
        ([0, 1, 5, 6], [(2, 4)])
    """

    tolerance = 0.2  # of a frame period; timestamps rounded to the time base stay well within it

    def __init__(self, fps: Fraction | None, time_base: Fraction | None, start_pts: int | None) -> None:
        self.period = 1 / (fps * time_base) if fps and time_base else None
        self.start_pts = start_pts
        self.constant = self.period is not None
        self.last = -1
        self.gaps: list[tuple[int, int]] = []

    def next(self, pts: int | None) -> int:
        """The number of the next decoded frame, whose timestamp is ``pts`` (in time-base units, or ``None``)."""
        index = self.last + 1
        if self.constant and pts is not None:
            if self.start_pts is None or (self.last < 0 and pts < self.start_pts):
                self.start_pts = pts
            slots = (pts - self.start_pts) / self.period
            if abs(slots - round(slots)) <= self.tolerance and round(slots) > self.last:
                index = round(slots)
            else:
                self.constant = False
        if index > self.last + 1:
            self.gaps.append((self.last + 1, index - 1))
        self.last = index
        return index


def describe(spans: list[tuple[int, int]], most: int = 5) -> str:
    """``"frame 7"``, or ``"frames 41–69, 75"``: where frames are, as first–last spans (``most`` shown).

    Example:
        >>> describe([(41, 69), (75, 75)])
        'frames 41–69, 75'
    """
    text = ", ".join(str(first) if first == last else f"{first}–{last}" for first, last in spans[:most])
    more = f" and {len(spans) - most} more" if len(spans) > most else ""
    return f"frame {text}" if len(spans) == 1 and spans[0][0] == spans[0][1] else f"frames {text}{more}"


def spans_of(indices: list[int]) -> list[tuple[int, int]]:
    """Group increasing frame numbers into first–last spans: ``[3, 4, 5, 9]`` → ``[(3, 5), (9, 9)]``."""
    spans: list[tuple[int, int]] = []
    for index in indices:
        if spans and index == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], index)
        else:
            spans.append((index, index))
    return spans
