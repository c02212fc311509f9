"""The foundation every layer stands on: errors, settings, precision names, weights files and safe checkpoints,
atomic files, plain YAML, the libraries' environment, stage timers. Imports nothing of ovdet above it."""

__version__ = "0.1.0"
