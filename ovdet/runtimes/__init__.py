"""Inference runtimes behind one interface; each module is the only place its heavy dependency is imported.

``backend`` holds the interface, ``registry`` the table of runtimes, ``artifact`` and ``exported`` what every
runtime of an ``ovdet export`` folder shares; one module per runtime runs its graphs; ``converted`` keeps the
conversions of a ``.pt`` it is given a function to make. Picking a runtime for a model, and handing ``converted``
the exporter, is :func:`ovdet.models.load_backend`'s job, above this layer.
"""

from __future__ import annotations

from .backend import Backend

__all__ = ["Backend"]
