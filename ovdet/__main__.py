"""``python -m ovdet``."""

from .cli import main

raise SystemExit(main())
