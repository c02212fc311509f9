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
from typing import NoReturn

from .commands.numbers import finite_float
from .core import __version__
from .core.errors import ConfigError, OvdetError, UsageError, printable

log = logging.getLogger("ovdet")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Each subcommand is a module in ovdet.commands with add_parser(subparsers) and a run(args) -> int it registers.
COMMANDS = ("detect", "embed", "export", "evaluate", "bench", "batch", "serve")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one ``ovdet: error:`` line naming the command's help, like every other error."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.register("type", float, finite_float)  # every type=float flag: NaN and infinity are usage errors

    def error(self, message: str) -> NoReturn:
        hint = ""
        if message.startswith("unrecognized arguments: -"):  # the source is optional, so argparse cannot say more
            hint = "a source whose name starts with - goes after --, e.g. ovdet detect --classes person -- -x.jpg; "
        self.exit(EXIT_USAGE, f"ovdet: error: {printable(message)} ({hint}see {self.prog} --help)\n")


def _add_global_flags(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--verbose", action="store_true", default=default, help="log details; tracebacks on errors")
    parser.add_argument(
        "--quiet",
        action="store_true",
        default=default,
        help="no progress bar, notes or summary: warnings and errors only",
    )


class _SubcommandParser(_Parser):
    """Every subcommand takes the global flags too, so ``ovdet detect … --verbose`` works like ``ovdet --verbose
    detect …``. They default to "not given" here: a subcommand's default must not undo a flag given before it.
    A subcommand's own flag of the same name replaces the global one."""

    def __init__(self, **kwargs) -> None:
        super().__init__(conflict_handler="resolve", **kwargs)
        _add_global_flags(self, argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and their flags."""
    parser = _Parser(
        prog="ovdet",
        description="Open-vocabulary object detection: type what to find, get boxes.",
    )
    parser.add_argument("--version", action="version", version=f"ovdet {__version__}")
    _add_global_flags(parser, False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_SubcommandParser)
    for name in COMMANDS:
        import_module(f"ovdet.commands.{name}").add_parser(commands)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _to_stderr(f"ovdet: warning: {printable(str(message))}")  # a file name's escape sequences stay text


def _to_stderr(text: str) -> None:
    """A line on stderr above any progress bar, never onto the bar's own line."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


class _LogFormatter(logging.Formatter):
    """``ovdet: <message>`` for information (a conversion, a download), ``ovdet: warning: …`` and up, as Python's
    warnings and the error line read."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = printable(record.message)  # a traceback (--verbose) follows on lines of its own
        if record.levelno <= logging.INFO:
            return f"ovdet: {message}"
        return f"ovdet: {record.levelname.lower()}: {message}"


class _LogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _to_stderr(self.format(record))
        except Exception:
            self.handleError(record)


def _configure_logging(args: argparse.Namespace) -> None:
    """ovdet's notes (a conversion, a download) by default, its details too with --verbose, only warnings and errors
    with --quiet. Other libraries speak from warnings on, or from information with --verbose."""
    handler = _LogHandler()
    handler.setFormatter(_LogFormatter())
    if args.quiet:
        libraries, ours = logging.WARNING, logging.WARNING
    elif args.verbose:
        libraries, ours = logging.INFO, logging.DEBUG
    else:
        libraries, ours = logging.WARNING, logging.INFO
    logging.basicConfig(level=libraries, handlers=[handler], force=True)
    log.setLevel(ours)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    warnings.showwarning = _show_warning
    for category in (DeprecationWarning, FutureWarning):  # libraries' notes to developers, not to users
        warnings.filterwarnings("ignore", category=category)
    try:
        return args.run(args)
    except OvdetError as exc:
        if args.verbose:
            log.exception("failed")
        print(f"ovdet: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, (UsageError, ConfigError)) else EXIT_ERROR
    except KeyboardInterrupt:
        print("ovdet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("ovdet: error: out of memory: use a smaller --imgsz or --batch, or close other programs", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug in ovdet or a library: still one line; the traceback is for --verbose
        if args.verbose:
            log.exception("failed")
        reason = printable(str(exc).splitlines()[0]) if str(exc).strip() else ""
        print(
            f"ovdet: error: unexpected {type(exc).__name__}{': ' + reason if reason else ''} "
            f"(run again with --verbose for the details, and report it)",
            file=sys.stderr,
        )
        return EXIT_ERROR
