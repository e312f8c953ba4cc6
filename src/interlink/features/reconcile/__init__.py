"""Reconciliation: what Interlink delivered on a flow against what the downstream recorded.

- :mod:`.matching`: the pure matcher (categories, tolerance, currency).
- :mod:`.sources`: CSV, XLSX, NDJSON exports and a paged query endpoint.
- :mod:`.service`: the streaming comparison, stored runs, repush of missing.
- :mod:`.report`: the report as a table, CSV or Markdown.
"""

from __future__ import annotations

from interlink.features.reconcile.matching import CATEGORIES, Item, Ours, Rules, Theirs, match_key

__all__ = ["CATEGORIES", "Item", "Ours", "Rules", "Theirs", "match_key"]
