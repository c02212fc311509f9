"""Numbers on the command line: finite, and within the range a flag allows, refused as one usage line.

``float('nan')`` and ``float('inf')`` parse, so a plain ``type=float`` lets ``--timeout nan`` through to fail (or
hang) far from the flag. The CLI registers :func:`finite_float` for every ``type=float`` flag of every command;
:func:`number_in` adds a range where a flag has one.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["finite_float", "number_in"]


def finite_float(text: str) -> float:
    """A float that is neither NaN nor infinite.

    Example:
        >>> finite_float("0.5")
        0.5
        >>> finite_float("nan")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        argparse.ArgumentTypeError: 'nan' is not a finite number: pass a number such as 0.5
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: pass a number such as 0.5") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number: pass a number such as 0.5")
    return value


def number_in(kind: type, low: float, high: float, *, low_open: bool = False) -> Callable[[str], float | int]:
    """An argparse type: a finite ``kind`` (``int`` or ``float``) from ``low`` (excluded if ``low_open``) to ``high``.

    Example:
        >>> number_in(int, 1, 65535)("8000")
        8000
    """

    def parse(text: str):
        try:
            value = int(text) if kind is int else finite_float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number: pass one such as {int(high)}") from None
        if value < low or (low_open and value == low) or value > high:
            above = f"more than {low:g}" if low_open else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: pass a number {above} and at most {high:g}")
        return value

    parse.__name__ = kind.__name__
    return parse
