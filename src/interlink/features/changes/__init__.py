"""Change notices: a change is weighed and announced before it ships, and everyone it touches
acknowledges it.

- :mod:`.impact`: which flows and systems a change touches, and why (contract impact for a
  proposed schema, the flows that read a field or a code, everything downstream by the
  topology's ``derives``), and whom to tell by role; pure functions over a topology.
- :mod:`.links`: the personal acknowledgement links, signed, bound to one change and one
  recipient, expiring.
- :mod:`.service`: :class:`~.service.Changes` (announce, notify, acknowledge, remind, read).
- :mod:`.tables`, :mod:`.queries`: its tables and SQL; :mod:`.api`, :mod:`.console`,
  :mod:`.cli`: its shells.
"""
