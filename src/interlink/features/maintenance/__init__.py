"""Maintenance windows: announce, hold the system's deliveries while open, release and
report the drain.

- :mod:`.windows`: window, notice, peak-hour and observed-traffic arithmetic, and the
  iCalendar feed; pure functions over plain data.
- :mod:`.service`: :class:`~.service.Maintenance` (create, check, list, cancel; hold, release,
  notify, report the drain) and its hooks.
- :mod:`.tables`, :mod:`.queries`: its tables and SQL; :mod:`.api`, :mod:`.console`,
  :mod:`.cli`: its shells.
"""
