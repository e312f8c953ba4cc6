"""Every core SQL statement Interlink runs, named once (the procrastinate pattern), one module
per concept.

Functions take a SQLAlchemy ``Connection`` and plain values, and return plain rows or domain
objects from :mod:`interlink.model`. Nothing above the store writes SQL. Import the modules by
name (``from interlink.store.queries import claims``) and call ``claims.claim(...)``.

- ``documents``: identity and revision lookups, intake's insert, reads, sources, payloads
- ``deliveries``: intake's insert and ordering barrier, filters, pages, counts, attempts
- ``holds``: deliveries moved between states, stale holds, revisions waiting behind
- ``claims``: the engine's hot path (claims, probes, leases, outcomes, attempts)
- ``circuits``: circuit state per system, and flow holds
- ``events``: events, and the LISTEN/NOTIFY channel that wakes workers
- ``audit``: the audit trail of manual actions
- ``workers``: the worker registry
- ``retention``: pruning delivered documents
- ``backlog``: the ``/metrics`` backlog gauges' grouped count and the circuits' states
- ``batches``: statements over batches of keys or rows, per dialect (shared by the above)
- ``rows``: rows → domain objects (shared by the above)
"""
