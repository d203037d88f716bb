"""bibnet-ops: a terminal operations console for a national network of public libraries."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
