"""Rollout stages per flow: a new link goes live for a pilot first, then for everyone.

- :mod:`.rules`: who is in the pilot (a ``when`` matcher, a stable share of keys by hash),
  where a document goes on each flow, and the promotion gate; pure functions over plain data.
- :mod:`.service`: :class:`~.service.Rollout` (show, set, promote with the gate, release the
  deliveries held ``rollout``) and its hooks (intake's routes).
- :mod:`.tables`, :mod:`.queries`: its table and SQL; :mod:`.api`, :mod:`.console`,
  :mod:`.cli`: its shells.
"""
