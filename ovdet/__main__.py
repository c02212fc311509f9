"""``python -m ovdet``."""

from ovdet.cli import main

raise SystemExit(main())
