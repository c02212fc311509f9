"""``ovdet serve``: an HTTP API (FastAPI, uvicorn) with dynamic batching, video jobs and a page at ``/``.

Needs ovdet's serve extra (``pip install '.[serve]'``). Only ``ovdet.commands`` and the CLI import this package.
"""

from __future__ import annotations

__all__: list[str] = []
