"""The ``ovdet`` command line.

Exit codes: 0 ok, 1 ovdet error (one line on stderr; traceback with ``--verbose``), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from importlib import import_module

from . import __version__
from .errors import OvdetError

log = logging.getLogger("ovdet")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Each subcommand is a module in ovdet.commands with add_parser(subparsers) and a run(args) -> int it registers.
COMMANDS = ("detect", "embed", "export", "evaluate", "bench")


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and their flags."""
    parser = argparse.ArgumentParser(
        prog="ovdet",
        description="Open-vocabulary object detection: type what to find, get boxes.",
    )
    parser.add_argument("--version", action="version", version=f"ovdet {__version__}")
    parser.add_argument("--verbose", action="store_true", help="log details and show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        import_module(f"ovdet.commands.{name}").add_parser(commands)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"ovdet: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="ovdet: %(levelname)s: %(message)s"
    )
    warnings.showwarning = _show_warning
    for category in (DeprecationWarning, FutureWarning):  # libraries' notes to developers, not to users
        warnings.filterwarnings("ignore", category=category)
    try:
        return args.run(args)
    except OvdetError as exc:
        if args.verbose:
            log.exception("failed")
        print(f"ovdet: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("ovdet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
