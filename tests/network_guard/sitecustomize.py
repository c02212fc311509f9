"""Installs the tests' no-network guard in every child interpreter the tests start."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.network_guard import install

install()
