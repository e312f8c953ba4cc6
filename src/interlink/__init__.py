"""Interlink: a hub that keeps the links between business systems explicit and reliable."""

from __future__ import annotations

__version__ = "0.1.0"
