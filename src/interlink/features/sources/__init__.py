"""Sources: pull documents from upstream systems that cannot push (docs/sources.md)."""
